"""Subjects, streams and namespacing."""

from __future__ import annotations

import pytest
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType

from orra_events import (
    InvalidName,
    PlanCreated,
    ServiceHeartbeat,
    TaskDispatched,
    Topology,
    check_name,
)
from orra_events.events import Plan
from tests.factories import task_completed


def _dispatched(orchestration_id: str = "o_8f2c1a") -> TaskDispatched:
    return TaskDispatched(
        event_id="d:o:t:1",
        orchestration_id=orchestration_id,
        task_id="payment",
        service="PaymentService",
        input={},
        attempt=1,
        idempotency_key="o:payment",
        timeout_s=30.0,
    )


def test_production_subjects_are_exactly_the_design() -> None:
    t = Topology()
    assert t.subject("task.completed", "o_8f2c1a") == "task.completed.o_8f2c1a"
    assert t.subject_for(task_completed(orchestration_id="o_8f2c1a")) == "task.completed.o_8f2c1a"
    plan = PlanCreated(
        event_id="p:o_1",
        orchestration_id="o_1",
        plan=Plan(tasks=[], parallel_groups=[]),
        planner="offline",
    )
    assert t.subject_for(plan) == "plan.created.o_1"
    assert t.subject_for(_dispatched()) == "task.dispatched.o_8f2c1a"
    beat = ServiceHeartbeat(
        event_id="hb", service="PaymentService", instance_id="i1", interval_s=5.0
    )
    assert t.subject_for(beat) == "service.heartbeat.PaymentService"
    assert t.work("PaymentService") == "work.PaymentService"
    assert t.all_of("task.completed") == "task.completed.*"
    assert t.history_of("o_8f2c1a") == "*.*.o_8f2c1a"
    assert t.dead_letter("task.completed.o_1") == "dlq.task.completed.o_1"
    assert t.events_filter == ["action.>", "plan.>", "task.>", "orchestration.>", "webhook.>"]
    assert t.bucket("idempotency") == "orra_idempotency"
    assert t.strip("task.completed.o_1") == "task.completed.o_1"  # noqa: B005


def test_namespace_prefixes_everything() -> None:
    t = Topology(namespace="t1")
    assert t.subject_for(task_completed(orchestration_id="o_x")) == "t1.task.completed.o_x"
    assert t.work("PaymentService") == "t1.work.PaymentService"
    assert t.all_of("task.completed") == "t1.task.completed.*"
    assert t.history_of("o_x") == "t1.*.*.o_x"
    assert t.dead_letter("t1.work.PaymentService") == "t1.dlq.work.PaymentService"
    assert t.strip("t1.task.completed.o_x") == "task.completed.o_x"  # noqa: B005
    assert t.events_stream == "T1_ORRA_EVENTS"
    assert t.services_stream == "T1_ORRA_SERVICES"
    assert t.heartbeats_stream == "T1_ORRA_HEARTBEATS"
    assert t.work_stream == "T1_ORRA_WORK"
    assert t.dlq_stream == "T1_ORRA_DLQ"
    assert t.bucket("kv") == "T1_orra_kv"
    assert all(s.startswith("t1.") for c in t.stream_configs() for s in c.subjects or [])


def test_stream_definitions() -> None:
    t = Topology(replicas=3)
    configs = {c.name: c for c in t.stream_configs()}
    assert set(configs) == {
        "ORRA_EVENTS",
        "ORRA_SERVICES",
        "ORRA_HEARTBEATS",
        "ORRA_WORK",
        "ORRA_WEBHOOKS",
        "ORRA_DLQ",
    }
    events = configs["ORRA_EVENTS"]
    assert events.storage is StorageType.FILE
    assert events.duplicate_window == 600.0
    assert events.retention is RetentionPolicy.LIMITS
    assert configs["ORRA_WORK"].retention is RetentionPolicy.WORK_QUEUE
    assert configs["ORRA_WORK"].subjects == ["work.>"]
    registrations = configs["ORRA_SERVICES"]
    assert registrations.subjects == ["service.registered.>"]
    # one registration per subject, never replaced: the broker refuses a second one
    assert registrations.max_msgs_per_subject == 1
    assert registrations.discard is DiscardPolicy.NEW
    assert registrations.discard_new_per_subject is True
    assert registrations.max_age in (None, 0, 0.0)
    heartbeats = configs["ORRA_HEARTBEATS"]
    assert heartbeats.subjects == ["service.heartbeat.>"]
    assert heartbeats.max_msgs_per_subject == 1
    assert heartbeats.discard in (None, DiscardPolicy.OLD)
    assert configs["ORRA_DLQ"].subjects == ["dlq.>"]
    assert configs["ORRA_WEBHOOKS"].retention is RetentionPolicy.WORK_QUEUE
    assert configs["ORRA_WEBHOOKS"].subjects == ["notifier.>"]
    assert all(c.num_replicas == 3 for c in configs.values())
    subjects = [s for c in configs.values() for s in c.subjects or []]
    assert len(subjects) == len(set(subjects))  # no two streams claim a subject


@pytest.mark.parametrize("name", ["PaymentService", "o_8f2c1a", "a-b_C9", "x" * 128])
def test_check_name_accepts_subject_tokens(name: str) -> None:
    assert check_name("service", name) == name


@pytest.mark.parametrize("name", ["", "a.b", "a b", "*", ">", "x" * 129, "naïve", "a\nb"])
def test_check_name_refuses_what_is_not_one_token(name: str) -> None:
    with pytest.raises(InvalidName, match=r"service .* is not a valid name"):
        check_name("service", name)


def test_invalid_name_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="namespace"):
        Topology(namespace="a.b")


@pytest.mark.parametrize("bad", ["", "o.1", "o 1", "*", ">"])
def test_an_event_with_a_bad_key_has_no_subject(bad: str) -> None:
    t = Topology()
    with pytest.raises(InvalidName, match="orchestration id"):
        t.subject_for(task_completed(orchestration_id=bad))
    with pytest.raises(InvalidName, match="orchestration id"):
        t.subject_for(_dispatched(orchestration_id=bad))  # never falls back to the service


def test_work_and_subject_accept_wildcards_but_not_dots() -> None:
    t = Topology()
    assert t.work("*") == "work.*"
    assert t.subject("task.completed", ">") == "task.completed.>"
    with pytest.raises(InvalidName):
        t.work("Payment.Service")
    with pytest.raises(InvalidName):
        t.subject("task.completed", "o.1")


def test_consumer_names_are_checked() -> None:
    assert Topology().consumer("planner") == "planner"
    with pytest.raises(InvalidName):
        Topology().consumer("bad name")
