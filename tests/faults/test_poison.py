"""Poison messages on every subject a service consumes: parked, and the service goes on.

For each consumed subject family (``action.submitted.*`` → planner; ``plan.*``, ``task.*``,
``orchestration.aborted.*`` → dispatcher; ``orchestration.done|failed|aborted.*`` →
notifier; ``work.<service>`` → SDK; ``service.registered|heartbeat.*`` → the registry
followers of the planner and the dispatcher) the test appends malformed bytes, an event of
an unknown type, an event of the wrong type for the subject and an event for an
orchestration that does not exist. Each must end on ``dlq.<original subject>`` (within
the namespace) with ``Orra-Dead-Letter-Reason`` and ``Orra-Original-Subject``, except the
events for unknown orchestrations that a service handles on purpose (see ``EXPECTED``). A
normal orchestration submitted after the poison completes and its webhook is delivered.
Registry messages are read by ordered consumers (no acknowledgement): both followers see
each one, and it is parked once.
"""

from __future__ import annotations

import asyncio
import json
import random

import pytest

from orra_events import (
    Bus,
    OrchestrationDone,
    PlanCreated,
    ServiceRegistered,
    TaskCompleted,
    TaskDispatched,
)
from orra_events.bus import HDR_ORIGINAL_SUBJECT, HDR_REASON
from orra_events.events import Plan, PlanTask
from tests.faults.checker import check
from tests.faults.harness import (
    Stack,
    read_log,
    read_messages,
    receipts_of,
    submit_load,
    wait_terminal,
    wait_until,
    wait_webhooks,
)
from tests.notifier.receiver import Receiver

pytestmark = pytest.mark.e2e

MALFORMED = b"\x00\xff not json {"
UNKNOWN_TYPE = json.dumps({"type": "bogus.happened", "v": 1, "event_id": "x"}).encode()


def completed(orch: str, task: str = "t") -> TaskCompleted:
    return TaskCompleted(
        event_id=f"r:{orch}:{task}:1",
        orchestration_id=orch,
        task_id=task,
        service="PaymentService",
        output={},
        attempt=1,
        idempotency_key=f"{orch}:{task}",
        started_at=0.0,
        duration_ms=1.0,
    )


async def test_poison_messages_are_parked_with_their_reason_and_the_services_go_on(
    bus: Bus, stack: Stack, receiver: Receiver, rng: random.Random
) -> None:
    # Park an event for an unknown orchestration after 3 deliveries, not the default 20.
    await asyncio.to_thread(stack.start_many, "planner", "notifier", "examples")
    await stack.astart("dispatcher", ORRA_DISPATCHER_MAX_DELIVER="3")
    topo = bus.topology
    ghost = "o_doesnotexist0001"
    plan = Plan(tasks=[PlanTask(id="t", service="PaymentService")], parallel_groups=[["t"]])
    # (subject without namespace, payload): every one of these must be parked.
    poison: list[tuple[str, bytes]] = []
    for family in (
        "action.submitted",
        "plan.created",
        "plan.failed",
        "task.completed",
        "task.failed",
        "orchestration.aborted",
        "orchestration.done",
        "orchestration.failed",
    ):
        poison.append((f"{family}.o_poison_malformed", MALFORMED))
        poison.append((f"{family}.o_poison_unknown", UNKNOWN_TYPE))
    # The wrong event type for the subject.
    wrong = completed("o_poison_wrong")
    poison.append(("action.submitted.o_poison_wrong", _encode(wrong)))
    poison.append(("plan.created.o_poison_wrong", _encode(wrong)))
    # An event whose orchestration id is not the subject's.
    poison.append(("task.completed.o_poison_mismatch", _encode(completed("o_other"))))
    # Results for an orchestration that never started (retried, then parked).
    poison.append((f"task.completed.{ghost}", _encode(completed(ghost))))
    # Work for a service: undecodable, unknown type, another service's task.
    for service in ("PaymentService", "InventoryService"):
        poison.append((f"work.{service}", MALFORMED))
        poison.append((f"work.{service}", UNKNOWN_TYPE))
    poison.append(
        (
            "work.PaymentService",
            _encode(
                TaskDispatched(
                    event_id="d:o_poison_svc:t:1",
                    orchestration_id="o_poison_svc",
                    task_id="t",
                    service="InventoryService",
                    input={},
                    attempt=1,
                    idempotency_key="o_poison_svc:t",
                    timeout_s=5.0,
                )
            ),
        )
    )
    # The service registry: undecodable, unknown type, not a service event, and a
    # registration on another service's subject (none of them names a running service).
    poison.append(("service.registered.PoisonMalformed", MALFORMED))
    poison.append(("service.heartbeat.PoisonUnknown", UNKNOWN_TYPE))
    poison.append(("service.registered.PoisonWrong", _encode(wrong)))
    poison.append(
        (
            "service.registered.PoisonMismatch",
            _encode(
                ServiceRegistered(
                    event_id="reg:PoisonOther:1",
                    service="PoisonOther",
                    description="registered on another service's subject",
                    input_schema={},
                    output_schema={},
                )
            ),
        )
    )
    for subject, payload in poison:
        await bus.js.publish(f"{topo.namespace}.{subject}", payload)
    # Handled on purpose, not parked: a plan for an orchestration nobody submitted runs
    # (the dispatcher starts orchestrations from plans), a terminal event without a
    # webhook is acknowledged by the notifier.
    lone = "o_poison_lone_plan"
    await bus.publish(
        PlanCreated(event_id=f"p:{lone}", orchestration_id=lone, plan=plan, planner="test")
    )
    await bus.publish(
        OrchestrationDone(
            event_id="end:o_poison_end", orchestration_id="o_poison_end", results={}, outputs={}
        )
    )

    # The services keep going: a normal load submitted after the poison completes.
    orchs = await submit_load(bus, 6, rng, spread_s=0.5, webhook=receiver.url())
    ended = await wait_terminal(bus, [*orchs, lone], timeout_s=40)
    assert set(orchs) | {lone} <= ended
    await wait_webhooks(receiver, orchs, timeout_s=20)
    report = check(orchs, (await read_log(bus)).events, receipts=receipts_of(receiver))
    assert report.ok, report.summary()
    assert report.counts["completed"] == len(orchs)

    expected = {f"{topo.namespace}.{s}" for s, _ in poison}

    async def parked() -> set[str]:
        msgs = await read_messages(bus, topo.dlq_stream)
        found = set()
        for m in msgs:
            headers = m.headers or {}
            original = headers.get(HDR_ORIGINAL_SUBJECT)
            assert headers.get(HDR_REASON), headers
            assert m.subject == topo.dead_letter(original), (m.subject, original)
            found.add(original)
        return found

    async def all_parked() -> bool:
        return expected <= await parked()

    await wait_until(all_parked, 30, 0.5)
    missing = expected - await parked()
    assert not missing, f"not parked: {sorted(missing)}"
    by_subject: dict[str, list[str]] = {}
    for m in await read_messages(bus, topo.dlq_stream):
        by_subject.setdefault(m.headers[HDR_ORIGINAL_SUBJECT], []).append(m.headers[HDR_REASON])
    for subject in sorted(by_subject):
        print(f"{topo.strip(subject)}: {by_subject[subject][0][:100]}")
    ghost_reason = by_subject[f"{topo.namespace}.task.completed.{ghost}"][0]
    assert "unknown orchestration" in ghost_reason, ghost_reason
    # Seen by the planner's and the dispatcher's followers, parked once each.
    for subject in sorted(s for s in expected if topo.strip(s).startswith("service.")):
        assert len(by_subject[subject]) == 1, (subject, by_subject[subject])
    for name in ("planner", "dispatcher", "notifier", "examples"):
        assert stack.procs[name].alive


def _encode(event: object) -> bytes:
    from orra_events import encode

    return encode(event)  # type: ignore[arg-type]
