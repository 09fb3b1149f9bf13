"""A task that may have taken effect is never run again: it is left for an operator."""

from __future__ import annotations

from orra_dispatcher.domain import Services, apply, timers_of
from orra_events import (
    OrchestrationCompensating,
    OrchestrationFailed,
    TaskCompensationAbandoned,
    TaskFailed,
    TaskRetrying,
    TaskTimedOut,
)
from orra_events.projection import compensation_failures, fold
from tests.dispatcher.conftest import plan_created, seed_plan
from tests.dispatcher.test_domain import OID, POLICY, completed, started

NO_RETRY = Services(no_timeout_retry=frozenset({"PaymentService"}))


def test_a_timeout_of_a_service_that_must_not_run_twice_is_left_for_an_operator() -> None:
    state = started(task_timeout_s=5.0)
    timer = next(t for t in timers_of(state) if t.task_id == "payment")
    outcome = apply(state, timer, POLICY, 105.0, NO_RETRY)
    kinds = [type(e) for e in outcome.emit]
    assert kinds == [TaskTimedOut, TaskCompensationAbandoned, OrchestrationFailed]
    left = outcome.emit[1]
    assert isinstance(left, TaskCompensationAbandoned)
    assert left.event_id == f"uk:{OID}:payment"
    assert left.input == {"orderId": "ORD123", "amount": "299.99"}
    assert left.error == (
        "timed out after 5s (its service is registered with retry_on_timeout=False); "
        "not retried, its outcome is unknown"
    )
    failed = outcome.emit[2]
    assert isinstance(failed, OrchestrationFailed)
    assert failed.task_id == "payment"
    assert failed.error.startswith(
        "task 'payment' (PaymentService) timed out after 5s (its service is registered with "
        "retry_on_timeout=False) on attempt 1 and is not run again: whether it took effect is "
        "unknown; an operator must check PaymentService"
    )


def test_other_services_still_retry_their_timeouts() -> None:
    state = started(task_timeout_s=5.0)
    timer = next(t for t in timers_of(state) if t.task_id == "inventory")
    outcome = apply(state, timer, POLICY, 105.0, NO_RETRY)
    assert [type(e) for e in outcome.emit] == [TaskTimedOut, TaskRetrying]


def test_a_failure_with_an_unknown_outcome_is_left_for_an_operator_after_compensation() -> None:
    services = Services(revertible=frozenset({"InventoryService"}))
    state = started()
    state = apply(state, completed("inventory", {"inStock": True}), POLICY, 101.0, services).state
    assert state is not None
    lost = TaskFailed(
        event_id=f"r:{OID}:payment:1",
        orchestration_id=OID,
        task_id="payment",
        service="PaymentService",
        error="OutcomeUnknown: the bank hung up",
        attempt=1,
        idempotency_key=f"{OID}:payment",
        started_at=0.0,
        duration_ms=1.0,
        retryable=False,
        outcome_unknown=True,
    )
    outcome = apply(state, lost, POLICY, 102.0, services)
    kinds = [type(e) for e in outcome.emit]
    assert kinds[:2] == [TaskCompensationAbandoned, OrchestrationCompensating]
    assert not any(isinstance(e, TaskRetrying) for e in outcome.emit)


def test_the_operator_list_shows_the_task_with_the_failure_as_reason() -> None:
    state = started(task_timeout_s=5.0)
    timer = next(t for t in timers_of(state) if t.task_id == "payment")
    outcome = apply(state, timer, POLICY, 105.0, NO_RETRY)
    view = fold([plan_created(seed_plan(), OID, task_timeout_s=5.0), *outcome.emit])[OID]
    (item,) = compensation_failures(view)
    assert item.id == f"{OID}:payment"
    assert item.status == "failed"
    assert item.reason.startswith("task 'payment' (PaymentService) timed out after 5s")
    assert "outcome is unknown" in (item.error or "")
