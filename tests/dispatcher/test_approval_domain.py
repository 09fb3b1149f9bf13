"""Unit tests of the dispatcher's approval transitions: preview, gates, decisions, expiry."""

from __future__ import annotations

from typing import Any

import msgspec

from orra_dispatcher.domain import (
    ORCHESTRATION_TIMER,
    Orchestration,
    Policy,
    Services,
    Timer,
    apply,
    timers_of,
)
from orra_events import (
    OrchestrationAborted,
    OrchestrationApproved,
    OrchestrationAwaitingApproval,
    OrchestrationCompensating,
    OrchestrationDone,
    OrchestrationRejected,
    Plan,
    PlanTask,
    TaskApprovalRequested,
    TaskCompleted,
    TaskDispatched,
    ids,
)
from tests.dispatcher.conftest import plan_created, seed_plan

OID = "o_appr"
POLICY = Policy(task_timeout_s=30.0, approval_timeout_s=600.0)


def completed(task_id: str, output: dict[str, Any]) -> TaskCompleted:
    return TaskCompleted(
        event_id=ids.result_id(OID, task_id, 1),
        orchestration_id=OID,
        task_id=task_id,
        service="Svc",
        output=output,
        attempt=1,
        idempotency_key=ids.idempotency_key(OID, task_id),
        started_at=0.0,
        duration_ms=1.0,
    )


def approved(task_id: str | None = None, by: str = "key_1") -> OrchestrationApproved:
    return OrchestrationApproved(
        event_id=ids.decision_id(OID, task_id), orchestration_id=OID, task_id=task_id, by=by
    )


def rejected(task_id: str | None = None, reason: str = "too much") -> OrchestrationRejected:
    return OrchestrationRejected(
        event_id=ids.decision_id(OID, task_id),
        orchestration_id=OID,
        task_id=task_id,
        by="key_2",
        reason=reason,
    )


def gated_plan(gate: str = "amount > 1000") -> Plan:
    return Plan(
        tasks=[
            PlanTask(id="payment", service="PaymentService", input={"amount": 50}),
            PlanTask(id="refund", service="RefundService", input={"amount": 1500}, gate=gate),
            PlanTask(id="notify", service="NotificationService", input={"x": "$refund.ok"}),
        ],
        parallel_groups=[["payment", "refund"], ["notify"]],
    )


def dispatched(outcome_emit: list[Any]) -> list[str]:
    return [e.task_id for e in outcome_emit if isinstance(e, TaskDispatched)]


def preview(now: float = 100.0) -> Orchestration:
    out = apply(None, plan_created(seed_plan(), OID, execute=False), POLICY, now)
    assert out.state is not None
    return out.state


def test_a_plan_to_preview_waits_and_dispatches_nothing() -> None:
    out = apply(None, plan_created(seed_plan(), OID, execute=False), POLICY, 100.0)
    assert out.state is not None
    assert out.state.status == "awaiting_approval"
    assert not out.state.terminal
    assert dispatched(out.emit) == []
    (event,) = out.emit
    assert isinstance(event, OrchestrationAwaitingApproval)
    assert event.expires_at == 700.0
    assert event.event_id == ids.awaiting_approval_id(OID)
    assert [(t.kind, t.task_id, t.due_at) for t in out.timers] == [
        ("approval", ORCHESTRATION_TIMER, 700.0)
    ]
    assert [(t.kind, t.due_at) for t in timers_of(out.state)] == [("approval", 700.0)]


def test_approval_runs_the_plan_and_a_second_decision_is_a_no_op() -> None:
    state = preview()
    out = apply(state, approved(), POLICY, 120.0)
    assert out.state is not None
    assert out.state.status == "running"
    assert dispatched(out.emit) == ["payment", "inventory"]
    assert out.state.approval_expires_at is None
    again = apply(out.state, approved(), POLICY, 121.0)
    assert not again.changed
    late_reject = apply(out.state, rejected(), POLICY, 122.0)
    assert not late_reject.changed


def test_rejection_aborts_the_plan_and_runs_nothing() -> None:
    out = apply(preview(), rejected(reason="wrong customer"), POLICY, 120.0)
    assert out.state is not None
    assert out.state.status == "aborted"
    assert dispatched(out.emit) == []
    (end,) = out.emit
    assert isinstance(end, OrchestrationAborted)
    assert end.reason == "plan rejected by key_2: wrong customer"


def test_expiry_rejects_the_plan_and_records_it() -> None:
    state = preview()
    timer = Timer(
        orchestration_id=OID, task_id=ORCHESTRATION_TIMER, kind="approval", attempt=0, due_at=700
    )
    assert not apply(state, timer, POLICY, 699.0).changed
    out = apply(state, timer, POLICY, 700.0)
    assert out.state is not None
    assert out.state.status == "aborted"
    rejection, end = out.emit
    assert isinstance(rejection, OrchestrationRejected)
    assert rejection.expired
    assert rejection.by == "expiry"
    assert rejection.event_id == ids.decision_id(OID)
    assert isinstance(end, OrchestrationAborted)
    assert "approval expired" in end.reason


def test_a_user_abort_of_a_plan_awaiting_approval_ends_it() -> None:
    abort = OrchestrationAborted(event_id=ids.end_id(OID), orchestration_id=OID, reason="no")
    out = apply(preview(), abort, POLICY, 120.0)
    assert out.state is not None
    assert out.state.status == "aborted"


def test_a_gated_task_is_held_while_the_rest_of_its_group_runs() -> None:
    out = apply(None, plan_created(gated_plan(), OID), POLICY, 100.0)
    state = out.state
    assert state is not None
    assert dispatched(out.emit) == ["payment"]
    requests = [e for e in out.emit if isinstance(e, TaskApprovalRequested)]
    assert [(r.task_id, r.service, r.input, r.expires_at) for r in requests] == [
        ("refund", "RefundService", {"amount": 1500}, 700.0)
    ]
    assert state.tasks["refund"].status == "awaiting_approval"
    assert {(t.task_id, t.kind) for t in out.timers} == {
        ("payment", "timeout"),
        ("refund", "approval"),
    }
    # The group does not complete while the task waits.
    after = apply(state, completed("payment", {"ok": True}), POLICY, 101.0)
    assert after.state is not None
    assert dispatched(after.emit) == []
    # Approved: dispatched now, its timeout counted from now.
    go = apply(after.state, approved("refund"), POLICY, 500.0)
    assert go.state is not None
    assert dispatched(go.emit) == ["refund"]
    assert go.state.tasks["refund"].deadline == 530.0
    assert go.state.approved == ["refund"]
    assert not apply(go.state, approved("refund"), POLICY, 501.0).changed
    done = apply(go.state, completed("refund", {"ok": True}), POLICY, 502.0)
    assert done.state is not None
    assert dispatched(done.emit) == ["notify"]
    end = apply(done.state, completed("notify", {"n": 1}), POLICY, 503.0)
    assert isinstance(end.emit[-1], OrchestrationDone)


def test_a_gate_that_does_not_hold_lets_the_task_run() -> None:
    plan = gated_plan("amount > 5000")
    out = apply(None, plan_created(plan, OID), POLICY, 100.0)
    assert dispatched(out.emit) == ["payment", "refund"]
    assert not any(isinstance(e, TaskApprovalRequested) for e in out.emit)


def test_a_gate_that_cannot_be_evaluated_holds_the_task() -> None:
    out = apply(None, plan_created(gated_plan("missing > 3"), OID), POLICY, 100.0)
    (request,) = [e for e in out.emit if isinstance(e, TaskApprovalRequested)]
    assert "could not be evaluated" in request.reason


def test_rejecting_a_held_task_fails_it_and_compensates_what_completed() -> None:
    out = apply(None, plan_created(gated_plan(), OID), POLICY, 100.0)
    assert out.state is not None
    after = apply(out.state, completed("payment", {"ok": True}), POLICY, 101.0)
    assert after.state is not None
    services = Services(revertible=frozenset({"PaymentService"}))
    no = apply(after.state, rejected("refund", reason="fraud"), POLICY, 102.0, services)
    assert no.state is not None
    assert no.state.status == "compensating"
    assert no.state.tasks["refund"].status == "failed"
    (comp,) = [e for e in no.emit if isinstance(e, OrchestrationCompensating)]
    assert comp.tasks == ["payment"]
    assert "rejected by key_2: fraud" in comp.reason


def test_a_held_task_expires_into_a_non_retryable_failure() -> None:
    out = apply(None, plan_created(gated_plan(), OID), POLICY, 100.0)
    assert out.state is not None
    (timer,) = [t for t in out.timers if t.kind == "approval"]
    expired = apply(out.state, timer, POLICY, timer.due_at)
    assert expired.state is not None
    assert expired.state.tasks["refund"].status == "failed"
    rejection = expired.emit[0]
    assert isinstance(rejection, OrchestrationRejected)
    assert rejection.expired
    assert rejection.task_id == "refund"


def test_snapshots_keep_what_waits() -> None:
    out = apply(None, plan_created(gated_plan(), OID), POLICY, 100.0)
    assert out.state is not None
    raw = msgspec.json.encode(out.state)
    back = msgspec.json.decode(raw, type=Orchestration)
    assert back == out.state
    assert {(t.task_id, t.kind) for t in timers_of(back)} == {
        ("payment", "timeout"),
        ("refund", "approval"),
    }


def test_the_actions_approval_timeout_overrides_the_policys() -> None:
    out = apply(
        None, plan_created(seed_plan(), OID, execute=False, approval_timeout_s=5.0), POLICY, 100.0
    )
    assert out.state is not None
    (event,) = out.emit
    assert isinstance(event, OrchestrationAwaitingApproval)
    assert event.expires_at == 105.0
    gated = apply(None, plan_created(gated_plan(), OID, approval_timeout_s=7.0), POLICY, 100.0)
    (request,) = [e for e in gated.emit if isinstance(e, TaskApprovalRequested)]
    assert request.expires_at == 107.0
