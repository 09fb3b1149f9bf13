"""Unit tests of the pure failure-handling rules: compensation, abort, pause/resume/grace."""

from __future__ import annotations

from typing import Any

from orra_dispatcher.domain import (
    ORCHESTRATION_TIMER,
    Orchestration,
    Outcome,
    Policy,
    Services,
    Timer,
    apply,
    compensation_order,
    is_unhealthy,
    timers_of,
)
from orra_events import (
    Event,
    OrchestrationAborted,
    OrchestrationCompensated,
    OrchestrationCompensating,
    OrchestrationDone,
    OrchestrationFailed,
    OrchestrationPaused,
    OrchestrationResumed,
    Plan,
    PlanTask,
    TaskAborted,
    TaskCompensated,
    TaskCompensating,
    TaskCompensationAbandoned,
    TaskCompensationFailed,
    TaskCompleted,
    TaskDispatched,
    TaskFailed,
)
from tests.dispatcher.conftest import plan_created

OID = "o_fail"
POLICY = Policy(
    max_attempts=2, retry_base_s=1.0, retry_max_s=8.0, task_timeout_s=30.0, comp_max_attempts=2
)
# a, b in parallel; c after both; d after c. a and c are revertible, b is not.
PLAN = Plan(
    tasks=[
        PlanTask(id="a", service="A", input={"x": 1}),
        PlanTask(id="b", service="B", input={"y": 2}),
        PlanTask(id="c", service="C", input={"a": "$a.v"}),
        PlanTask(id="d", service="D", input={"c": "$c.v"}),
    ],
    parallel_groups=[["a", "b"], ["c"], ["d"]],
)
SERVICES = Services(revertible={"A", "C", "D"})
SERVICE_OF = {"a": "A", "b": "B", "c": "C", "d": "D"}


def done(task_id: str, output: dict[str, Any] | None = None, attempt: int = 1) -> TaskCompleted:
    return TaskCompleted(
        event_id=f"r:{OID}:{task_id}:{attempt}",
        orchestration_id=OID,
        task_id=task_id,
        service=SERVICE_OF[task_id],
        output=output if output is not None else {"v": task_id},
        attempt=attempt,
        idempotency_key=f"{OID}:{task_id}",
        started_at=0.0,
        duration_ms=1.0,
    )


def fail(task_id: str, attempt: int = 1, *, retryable: bool = False) -> TaskFailed:
    return TaskFailed(
        event_id=f"r:{OID}:{task_id}:{attempt}",
        orchestration_id=OID,
        task_id=task_id,
        service=SERVICE_OF[task_id],
        error="boom",
        attempt=attempt,
        idempotency_key=f"{OID}:{task_id}",
        started_at=0.0,
        duration_ms=1.0,
        retryable=retryable,
    )


def reverted(task_id: str, attempt: int = 1) -> TaskCompensated:
    return TaskCompensated(
        event_id=f"cr:{OID}:{task_id}:{attempt}",
        orchestration_id=OID,
        task_id=task_id,
        service=SERVICE_OF[task_id],
        attempt=attempt,
    )


def revert_failed(
    task_id: str, attempt: int = 1, *, retryable: bool = True
) -> TaskCompensationFailed:
    return TaskCompensationFailed(
        event_id=f"cr:{OID}:{task_id}:{attempt}",
        orchestration_id=OID,
        task_id=task_id,
        service=SERVICE_OF[task_id],
        attempt=attempt,
        error="cannot undo",
        retryable=retryable,
    )


def step(
    state: Orchestration | None, item: Any, now: float = 100.0, services: Services = SERVICES
) -> Outcome:
    outcome = apply(state, item, POLICY, now, services)
    assert outcome.changed, outcome.note
    return outcome


def of(outcome: Outcome, cls: type[Event]) -> list[Any]:
    return [e for e in outcome.emit if isinstance(e, cls)]


def run_until_d(services: Services = SERVICES) -> Orchestration:
    """a and b complete (b first), then c completes: d is running."""
    out = step(None, plan_created(PLAN, OID), services=services)
    out = step(out.state, done("b"), services=services)
    out = step(out.state, done("a"), services=services)
    out = step(out.state, done("c"), services=services)
    assert out.state is not None
    assert out.state.completed == ["b", "a", "c"]
    return out.state


# --- compensation ---------------------------------------------------------------------------


def test_compensation_order_is_reverse_completion_of_revertible_tasks() -> None:
    order, skipped = compensation_order(["b", "a", "c"], SERVICE_OF, {"A", "C"})
    assert order == ["c", "a"]
    assert skipped == ["b"]


def test_failure_compensates_in_reverse_order_then_fails_with_the_summary() -> None:
    state = run_until_d()
    out = step(state, fail("d"))
    assert out.state is not None
    assert out.state.status == "compensating"
    assert not of(out, OrchestrationFailed)  # the terminal event waits for compensation
    (started,) = of(out, OrchestrationCompensating)
    assert started.tasks == ["c", "a"]
    assert started.skipped == ["b"]
    assert started.cause == "failed"
    (first,) = of(out, TaskCompensating)
    assert (first.task_id, first.attempt) == ("c", 1)
    assert first.input == {"a": "a"}
    assert first.output == {"v": "c"}
    assert first.idempotency_key == f"{OID}:c:revert"
    assert "boom" in first.reason
    # one at a time: a is compensated only once c is
    out = step(out.state, reverted("c"))
    (second,) = of(out, TaskCompensating)
    assert second.task_id == "a"
    out = step(out.state, reverted("a"))
    (summary,) = of(out, OrchestrationCompensated)
    assert summary.compensation.compensated == ["c", "a"]
    assert summary.compensation.failed == []
    (end,) = of(out, OrchestrationFailed)
    assert end.event_id == f"end:{OID}"
    assert end.task_id == "d"
    assert end.compensation is not None
    assert end.compensation.compensated == ["c", "a"]
    assert "compensation failed" not in end.error
    assert out.state is not None
    assert out.state.terminal
    assert out.state.status == "failed"


def test_compensation_retries_then_is_abandoned_and_the_next_one_runs() -> None:
    state = run_until_d()
    out = step(state, fail("d"), now=100.0)
    out = step(out.state, revert_failed("c", 1), now=101.0)
    assert out.state is not None
    assert out.state.comps["c"].status == "retry_wait"
    assert not of(out, TaskCompensating)
    (timer,) = out.timers
    assert timer.kind == "comp_retry"
    assert timer.attempt == 2
    assert timer.due_at == 102.0
    out = step(out.state, timer, now=102.0)
    (again,) = of(out, TaskCompensating)
    assert again.attempt == 2
    assert again.previous_error == "cannot undo"
    out = step(out.state, revert_failed("c", 2), now=103.0)  # the last attempt
    (abandoned,) = of(out, TaskCompensationAbandoned)
    assert abandoned.task_id == "c"
    assert abandoned.attempts == 2
    assert abandoned.output == {"v": "c"}
    (nxt,) = of(out, TaskCompensating)
    assert nxt.task_id == "a"
    out = step(out.state, reverted("a"))
    (end,) = of(out, OrchestrationFailed)
    assert end.compensation is not None
    assert end.compensation.failed == ["c"]
    assert end.compensation.compensated == ["a"]
    assert "compensation failed for c (C)" in end.error


def test_a_non_retryable_compensation_failure_is_abandoned_at_once() -> None:
    out = step(run_until_d(), fail("d"))
    out = step(out.state, revert_failed("c", 1, retryable=False))
    assert of(out, TaskCompensationAbandoned)


def test_compensation_timeout_counts_as_a_failed_attempt() -> None:
    out = step(run_until_d(), fail("d"), now=100.0)
    (timer,) = [t for t in out.timers if t.kind == "comp_timeout"]
    assert timer.task_id == "c"
    assert timer.due_at == 130.0
    out = step(out.state, timer, now=130.0)
    assert out.state is not None
    assert out.state.comps["c"].status == "retry_wait"
    assert "timed out" in (out.state.comps["c"].error or "")


def test_nothing_to_compensate_fails_at_once() -> None:
    out = step(None, plan_created(PLAN, OID), services=Services())
    out = step(out.state, fail("a"), services=Services())
    (end,) = of(out, OrchestrationFailed)
    assert end.compensation is None
    assert not of(out, OrchestrationCompensating)
    assert out.state is not None
    assert out.state.status == "failed"


def test_stale_and_duplicate_compensation_results_are_no_ops() -> None:
    out = step(run_until_d(), fail("d"))
    state = out.state
    assert apply(state, reverted("a"), POLICY, 100.0, SERVICES).stale  # a's turn has not come
    out = step(state, reverted("c"))
    assert not apply(out.state, reverted("c"), POLICY, 100.0, SERVICES).changed


def test_a_task_completing_during_compensation_is_compensated_next() -> None:
    out = step(None, plan_created(PLAN, OID))
    out = step(out.state, done("b"))
    out = step(out.state, done("a"))
    out = step(out.state, fail("c"))  # c fails for good: a is compensated
    assert out.state is not None
    assert out.state.comp_order == ["a"]
    # c's side effect happened after all (a success of the same idempotency key arrives late)
    late = step(out.state, done("c"))
    assert late.state is not None
    assert late.state.comp_order == ["a", "c"]
    out = step(late.state, reverted("a"))
    (nxt,) = of(out, TaskCompensating)
    assert nxt.task_id == "c"


# --- abort ----------------------------------------------------------------------------------


def test_abort_raised_by_a_service_compensates_then_aborts_with_the_payload() -> None:
    state = run_until_d()
    aborted = TaskAborted(
        event_id=f"r:{OID}:d:1",
        orchestration_id=OID,
        task_id="d",
        service="D",
        attempt=1,
        idempotency_key=f"{OID}:d",
        reason="customer cancelled",
        payload={"orderId": "ORD1"},
    )
    out = step(state, aborted)
    (started,) = of(out, OrchestrationCompensating)
    assert started.cause == "aborted"
    assert not of(out, TaskDispatched)
    out = step(out.state, reverted("c"))
    out = step(out.state, reverted("a"))
    (end,) = of(out, OrchestrationAborted)
    assert end.payload == {"orderId": "ORD1"}
    assert end.task_id == "d"
    assert "customer cancelled" in end.reason
    assert end.event_id == f"end:{OID}"
    assert out.state is not None
    assert out.state.status == "aborted"


def test_user_abort_compensates_without_a_second_terminal_event() -> None:
    out = step(None, plan_created(PLAN, OID))
    out = step(out.state, done("a"))
    abort = OrchestrationAborted(event_id=f"end:{OID}", orchestration_id=OID, reason="stop")
    out = step(out.state, abort)
    assert out.state is not None
    assert out.state.status == "compensating"
    (comp,) = of(out, TaskCompensating)
    assert comp.task_id == "a"
    assert comp.reason == "stop"
    # the still-running b fails or completes: nothing more is dispatched
    later = apply(out.state, fail("b"), POLICY, 100.0, SERVICES)
    assert not later.changed
    out = step(out.state, reverted("a"))
    assert of(out, OrchestrationCompensated)
    assert not of(out, OrchestrationAborted)  # the gateway's event is the terminal one
    assert out.state is not None
    assert out.state.status == "aborted"


def test_user_abort_with_nothing_completed_ends_at_once() -> None:
    out = step(None, plan_created(PLAN, OID))
    abort = OrchestrationAborted(event_id=f"end:{OID}", orchestration_id=OID, reason="stop")
    out = step(out.state, abort)
    assert out.emit == []
    assert out.state is not None
    assert out.state.status == "aborted"


def test_user_abort_during_compensation_keeps_compensating() -> None:
    out = step(run_until_d(), fail("d"))
    abort = OrchestrationAborted(event_id=f"end:{OID}", orchestration_id=OID, reason="stop")
    out = step(out.state, abort)
    assert out.state is not None
    assert out.state.ending is not None
    assert out.state.ending.emitted
    out = step(out.state, reverted("c"))
    out = step(out.state, reverted("a"))
    assert not of(out, OrchestrationFailed)
    assert of(out, OrchestrationCompensated)


# --- pause / resume / grace -------------------------------------------------------------------


def test_health_rule() -> None:
    assert not is_unhealthy(100.0, 1.0, 103.0)
    assert is_unhealthy(100.0, 1.0, 103.1)
    assert is_unhealthy(100.0, 5.0, 116.0)


def test_unhealthy_service_pauses_its_task_then_resumes() -> None:
    down = Services(unhealthy={"B"})
    out = step(None, plan_created(PLAN, OID), now=100.0, services=down)
    (dispatched,) = of(out, TaskDispatched)
    assert dispatched.task_id == "a"
    (paused,) = of(out, OrchestrationPaused)
    assert paused.services == ["B"]
    assert paused.tasks == ["b"]
    assert paused.grace_s == 300.0
    assert paused.fail_at == 400.0
    assert out.state is not None
    assert out.state.tasks["b"].status == "paused"
    assert out.state.paused_since == 100.0
    (grace,) = [t for t in out.timers if t.kind == "grace"]
    assert grace.task_id == ORCHESTRATION_TIMER
    assert grace.due_at == 400.0
    # a completes while b waits: c is not released (groups mode)
    out = step(out.state, done("a"), now=110.0, services=down)
    assert not of(out, TaskDispatched)
    # a health input while B is still down does nothing
    poke = Timer(
        orchestration_id=OID, task_id=ORCHESTRATION_TIMER, kind="health", attempt=0, due_at=120.0
    )
    assert not apply(out.state, poke, POLICY, 120.0, down).changed
    # B is back
    out = step(out.state, poke, now=130.0, services=SERVICES)
    (dispatched,) = of(out, TaskDispatched)
    assert (dispatched.task_id, dispatched.attempt) == ("b", 1)
    assert dispatched.input == {"y": 2}
    (resumed,) = of(out, OrchestrationResumed)
    assert resumed.services == ["B"]
    assert resumed.paused_s == 30.0
    assert out.state is not None
    assert out.state.paused_since is None
    assert [t for t in timers_of(out.state) if t.kind == "grace"] == []
    # it carries on
    out = step(out.state, done("b"), now=131.0)
    assert [e.task_id for e in of(out, TaskDispatched)] == ["c"]


def test_retry_of_an_unhealthy_service_waits_as_paused() -> None:
    out = step(None, plan_created(PLAN, OID), now=100.0)
    out = step(out.state, fail("b", 1, retryable=True), now=101.0)
    (retry,) = [t for t in out.timers if t.kind == "retry"]
    out = step(out.state, retry, now=102.0, services=Services(unhealthy={"B"}, revertible={"A"}))
    assert of(out, OrchestrationPaused)
    assert out.state is not None
    assert out.state.tasks["b"].status == "paused"
    poke = Timer(
        orchestration_id=OID, task_id=ORCHESTRATION_TIMER, kind="health", attempt=0, due_at=0
    )
    out = step(out.state, poke, now=103.0)
    (dispatched,) = of(out, TaskDispatched)
    assert dispatched.attempt == 2  # the retry, not a new first attempt


def test_grace_period_fails_the_orchestration_and_compensates() -> None:
    down = Services(unhealthy={"B"}, revertible={"A"})
    created = plan_created(PLAN, OID, pause_grace_s=5.0)
    out = step(None, created, now=100.0, services=down)
    out = step(out.state, done("a"), now=101.0, services=down)
    (grace,) = [t for t in timers_of(out.state) if t.kind == "grace"]  # type: ignore[arg-type]
    assert grace.due_at == 105.0
    out = step(out.state, grace, now=105.0, services=down)
    (comp,) = of(out, TaskCompensating)
    assert comp.task_id == "a"
    assert "paused for more than 5s" in comp.reason
    assert "B unhealthy" in comp.reason
    out = step(out.state, reverted("a"), now=106.0, services=down)
    (end,) = of(out, OrchestrationFailed)
    assert "paused for more than 5s" in end.error


def test_grace_timer_of_an_ended_pause_is_a_no_op() -> None:
    down = Services(unhealthy={"B"})
    out = step(None, plan_created(PLAN, OID, pause_grace_s=5.0), now=100.0, services=down)
    (grace,) = [t for t in out.timers if t.kind == "grace"]
    poke = Timer(
        orchestration_id=OID, task_id=ORCHESTRATION_TIMER, kind="health", attempt=0, due_at=0
    )
    out = step(out.state, poke, now=101.0, services=Services())
    assert not apply(out.state, grace, POLICY, 105.0, Services()).changed


def test_the_happy_path_is_unchanged_with_the_registry() -> None:
    out = step(None, plan_created(PLAN, OID))
    for task_id in ("a", "b", "c", "d"):
        out = step(out.state, done(task_id))
    (end,) = of(out, OrchestrationDone)
    assert end.event_id == f"end:{OID}"
    assert not of(out, OrchestrationPaused)


# --- versions --------------------------------------------------------------------------------


def test_tasks_and_their_compensations_carry_the_version_they_were_planned_against() -> None:
    """A rolling upgrade changes nothing planned: the version goes with the task."""
    versioned = Plan(
        tasks=[
            PlanTask(id="a", service="A", input={"x": 1}, version="1"),
            PlanTask(id="b", service="B", input={"y": 2}),
        ],
        parallel_groups=[["a", "b"]],
    )
    out = step(None, plan_created(versioned, OID))
    dispatched = {e.task_id: e.version for e in of(out, TaskDispatched)}
    assert dispatched == {"a": "1", "b": None}
    out = step(out.state, done("a"))
    out = step(out.state, fail("b"))
    (undo,) = of(out, TaskCompensating)
    assert (undo.task_id, undo.version) == ("a", "1")
