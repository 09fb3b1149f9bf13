"""Unit tests of the pure dispatcher logic: release rule, references, merge, transitions."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from orra_dispatcher.domain import (
    Orchestration,
    Outcome,
    Policy,
    Timer,
    apply,
    dependencies,
    merge_results,
    releasable,
    resolve,
    timers_of,
    validate_plan,
)
from orra_dispatcher.errors import InvalidPlan, UnresolvedReference
from orra_events import (
    OrchestrationAborted,
    OrchestrationDone,
    OrchestrationFailed,
    Plan,
    PlanFailed,
    PlanTask,
    TaskCompleted,
    TaskDispatched,
    TaskFailed,
    TaskRetrying,
    TaskTimedOut,
    UncoveredPart,
)
from tests.dispatcher.conftest import plan_created, seed_plan

OID = "o_test"
POLICY = Policy(max_attempts=3, retry_base_s=1.0, retry_max_s=8.0, task_timeout_s=30.0)
SEED_GROUPS = seed_plan()


def completed(task_id: str, output: dict[str, Any], attempt: int = 1) -> TaskCompleted:
    return TaskCompleted(
        event_id=f"r:{OID}:{task_id}:{attempt}",
        orchestration_id=OID,
        task_id=task_id,
        service="Svc",
        output=output,
        attempt=attempt,
        idempotency_key=f"{OID}:{task_id}",
        started_at=0.0,
        duration_ms=1.0,
    )


def failed(task_id: str, attempt: int = 1, *, retryable: bool = True) -> TaskFailed:
    return TaskFailed(
        event_id=f"r:{OID}:{task_id}:{attempt}",
        orchestration_id=OID,
        task_id=task_id,
        service="Svc",
        error="card declined",
        attempt=attempt,
        idempotency_key=f"{OID}:{task_id}",
        started_at=0.0,
        duration_ms=1.0,
        retryable=retryable,
    )


def started(plan: Plan | None = None, now: float = 100.0, **kw: Any) -> Orchestration:
    outcome = apply(None, plan_created(plan or seed_plan(), OID, **kw), POLICY, now)
    assert outcome.state is not None
    return outcome.state


def payment_timer(state: Orchestration) -> Timer:
    return next(t for t in timers_of(state) if t.task_id == "payment")


def ids(outcome: Outcome) -> list[str]:
    return [e.event_id for e in outcome.emit]


def step(state: Orchestration, *items: Any, now: float = 101.0) -> Outcome:
    outcome = Outcome(state, changed=False)
    for item in items:
        assert outcome.state is not None
        outcome = apply(outcome.state, item, POLICY, now)
    return outcome


# --- release rule ------------------------------------------------------------------------


def statuses(**kw: str) -> dict[str, Any]:
    base = {
        "payment": "pending",
        "inventory": "pending",
        "delivery": "pending",
        "notify": "pending",
    }
    base.update(kw)
    return base


class TestReleasableGroups:
    def test_first_group_at_start(self) -> None:
        assert releasable(SEED_GROUPS, statuses(), "groups") == ["payment", "inventory"]

    def test_running_tasks_are_not_released_again(self) -> None:
        s = statuses(payment="running", inventory="running")
        assert releasable(SEED_GROUPS, s, "groups") == []

    def test_next_group_waits_for_every_task_of_the_group(self) -> None:
        s = statuses(payment="completed", inventory="running")
        assert releasable(SEED_GROUPS, s, "groups") == []
        s = statuses(payment="completed", inventory="retry_wait")
        assert releasable(SEED_GROUPS, s, "groups") == []

    def test_next_group_once_all_completed(self) -> None:
        s = statuses(payment="completed", inventory="completed")
        assert releasable(SEED_GROUPS, s, "groups") == ["delivery", "notify"]

    def test_nothing_when_all_completed(self) -> None:
        s: dict[str, Any] = dict.fromkeys(statuses(), "completed")
        assert releasable(SEED_GROUPS, s, "groups") == []

    def test_partially_dispatched_group_releases_the_rest(self) -> None:
        s = statuses(payment="completed", inventory="completed", delivery="running")
        assert releasable(SEED_GROUPS, s, "groups") == ["notify"]

    def test_three_groups_never_skip_ahead(self) -> None:
        plan = Plan(
            tasks=[PlanTask(id=i, service="S") for i in "abc"],
            parallel_groups=[["a"], ["b"], ["c"]],
        )
        assert releasable(plan, {"a": "completed", "b": "running", "c": "pending"}, "groups") == []
        assert releasable(plan, {"a": "completed", "b": "completed", "c": "pending"}, "groups") == [
            "c"
        ]


class TestReleasableEager:
    def test_tasks_without_references_start_at_once(self) -> None:
        assert releasable(SEED_GROUPS, statuses(), "eager") == ["payment", "inventory"]

    def test_task_released_when_its_own_dependencies_completed(self) -> None:
        s = statuses(payment="completed", inventory="running")
        assert releasable(SEED_GROUPS, s, "eager") == ["notify"]
        s = statuses(payment="running", inventory="completed")
        assert releasable(SEED_GROUPS, s, "eager") == ["delivery"]

    def test_failed_or_waiting_dependency_blocks(self) -> None:
        s = statuses(payment="retry_wait", inventory="running")
        assert releasable(SEED_GROUPS, s, "eager") == []

    def test_precomputed_dependencies_are_used(self) -> None:
        deps = {"payment": [], "inventory": [], "delivery": ["payment"], "notify": ["payment"]}
        s = statuses(payment="completed", inventory="running")
        assert releasable(SEED_GROUPS, s, "eager", deps) == ["delivery", "notify"]

    def test_dependency_on_several_tasks(self) -> None:
        plan = Plan(
            tasks=[
                PlanTask(id="a", service="S"),
                PlanTask(id="b", service="S"),
                PlanTask(id="c", service="S", input={"x": ["$a.v", {"y": "$b.w"}]}),
            ],
            parallel_groups=[["a", "b"], ["c"]],
        )
        assert releasable(plan, {"a": "completed", "b": "running", "c": "pending"}, "eager") == []
        assert releasable(plan, {"a": "completed", "b": "completed", "c": "pending"}, "eager") == [
            "c"
        ]


# --- references --------------------------------------------------------------------------


class TestReferences:
    outputs: dict[str, Any] = {
        "payment": {"status": "confirmed", "detail": {"items": [{"id": "P1"}, {"id": "P2"}]}},
        "inventory": {"inStock": False},
        "delivery": None,
    }

    def test_whole_value_is_replaced_with_its_type(self) -> None:
        assert resolve({"inStock": "$inventory.inStock"}, self.outputs) == {"inStock": False}

    def test_nested_in_lists_and_objects(self) -> None:
        value = {"a": ["$payment.status", {"b": "$inventory.inStock"}], "c": 3}
        assert resolve(value, self.outputs) == {"a": ["confirmed", {"b": False}], "c": 3}

    def test_paths_and_list_indexes(self) -> None:
        assert resolve("$payment.detail.items.1.id", self.outputs) == "P2"
        assert resolve("$payment.detail", self.outputs) == {"items": [{"id": "P1"}, {"id": "P2"}]}

    @pytest.mark.parametrize(
        "literal", ["$5.00", "$ 10", "plain", "price $payment.status", "$payment"]
    )
    def test_literals_stay(self, literal: str) -> None:
        assert resolve(literal, self.outputs) == literal

    def test_escaped_literal_loses_its_escape(self) -> None:
        assert resolve({"x": ["$$payment.status"]}, self.outputs) == {"x": ["$payment.status"]}

    def test_reference_to_a_task_not_in_the_plan_is_an_error(self) -> None:
        with pytest.raises(UnresolvedReference, match="no task 'unknown'"):
            resolve("$unknown.field", self.outputs)

    def test_missing_field_is_an_error(self) -> None:
        with pytest.raises(UnresolvedReference, match="status2"):
            resolve({"x": "$payment.status2"}, self.outputs)
        with pytest.raises(UnresolvedReference):
            resolve("$payment.detail.items.7.id", self.outputs)

    def test_reference_to_uncompleted_task_is_an_error(self) -> None:
        with pytest.raises(UnresolvedReference, match="not completed"):
            resolve("$delivery.tracking", self.outputs)

    def test_dependencies_in_plan_order(self) -> None:
        assert dependencies(SEED_GROUPS) == {
            "payment": [],
            "inventory": [],
            "delivery": ["inventory"],
            "notify": ["payment"],
        }


# --- plan validation ---------------------------------------------------------------------


class TestValidatePlan:
    def test_seed_plan_is_valid(self) -> None:
        assert validate_plan(SEED_GROUPS)["delivery"] == ["inventory"]

    @pytest.mark.parametrize(
        ("tasks", "groups", "message"),
        [
            (["a", "a"], [["a"]], "duplicate"),
            (["a"], [["a", "b"]], "unknown task 'b'"),
            (["a", "b"], [["a"]], "no parallel group: b"),
            (["a"], [["a"], ["a"]], "more than one parallel group"),
        ],
    )
    def test_structural_errors(
        self, tasks: list[str], groups: list[list[str]], message: str
    ) -> None:
        plan = Plan(tasks=[PlanTask(id=t, service="S") for t in tasks], parallel_groups=groups)
        with pytest.raises(InvalidPlan, match=message):
            validate_plan(plan)

    def test_coarser_groups_than_the_levels_run(self) -> None:
        plan = Plan(
            tasks=[PlanTask(id="a", service="S"), PlanTask(id="b", service="S")],
            parallel_groups=[["a"], ["b"]],
        )
        assert validate_plan(plan) == {"a": [], "b": []}

    @pytest.mark.parametrize(
        ("value", "kind"),
        [
            ("$b.y", "self_reference"),
            ("$ghost.y", "unknown_reference"),
            ("$a.items[0].id", "malformed_reference"),
        ],
    )
    def test_reference_issues(self, value: str, kind: str) -> None:
        plan = Plan(
            tasks=[
                PlanTask(id="a", service="S"),
                PlanTask(id="b", service="S", input={"x": value}),
            ],
            parallel_groups=[["a"], ["b"]],
        )
        with pytest.raises(InvalidPlan, match=f"{kind}: task 'b': input 'x'"):
            validate_plan(plan)

    def test_reference_to_same_or_later_group(self) -> None:
        plan = Plan(
            tasks=[
                PlanTask(id="a", service="S", input={"x": "$b.y"}),
                PlanTask(id="b", service="S"),
            ],
            parallel_groups=[["a", "b"]],
        )
        with pytest.raises(InvalidPlan, match=r"forward_reference: .* not in an earlier parallel"):
            validate_plan(plan)


# --- results merge -----------------------------------------------------------------------


class TestMergeResults:
    def test_distinct_fields_are_merged(self) -> None:
        assert merge_results({"a": {"x": 1}, "b": {"y": 2}}) == {"x": 1, "y": 2}

    def test_equal_values_are_kept_once(self) -> None:
        assert merge_results({"a": {"x": 1}, "b": {"x": 1, "y": 2}}) == {"x": 1, "y": 2}

    def test_clash_keeps_each_value_under_its_task(self) -> None:
        merged = merge_results(
            {"payment": {"status": "confirmed", "p": 1}, "delivery": {"status": "scheduled"}}
        )
        assert merged == {
            "p": 1,
            "payment": {"status": "confirmed"},
            "delivery": {"status": "scheduled"},
        }

    def test_top_level_field_named_like_a_namespace_is_moved(self) -> None:
        merged = merge_results({"a": {"s": 1}, "b": {"s": 2}, "c": {"a": "field-named-a", "t": 3}})
        assert merged == {"t": 3, "a": {"s": 1}, "b": {"s": 2}, "c": {"a": "field-named-a"}}

    def test_empty(self) -> None:
        assert merge_results({}) == {}
        assert merge_results({"a": {}}) == {}


# --- transitions -------------------------------------------------------------------------


class TestHappyPath:
    def test_plan_dispatches_first_group(self) -> None:
        outcome = apply(None, plan_created(seed_plan(), OID), POLICY, 100.0)
        assert ids(outcome) == [f"d:{OID}:payment:1", f"d:{OID}:inventory:1"]
        first = outcome.emit[0]
        assert isinstance(first, TaskDispatched)
        assert first.idempotency_key == f"{OID}:payment"
        assert first.input == {"orderId": "ORD123", "amount": "299.99"}
        assert first.timeout_s == 30.0
        assert [(t.task_id, t.kind, t.attempt, t.due_at) for t in outcome.timers] == [
            ("payment", "timeout", 1, 130.0),
            ("inventory", "timeout", 1, 130.0),
        ]

    def test_full_run_resolves_references_and_merges_results(self) -> None:
        state = started()
        outcome = step(state, completed("payment", {"status": "confirmed"}))
        assert outcome.emit == []
        outcome = step(outcome.state, completed("inventory", {"inStock": True, "status": "ok"}))  # type: ignore[arg-type]
        assert ids(outcome) == [f"d:{OID}:delivery:1", f"d:{OID}:notify:1"]
        delivery, notify = outcome.emit
        assert isinstance(delivery, TaskDispatched)
        assert isinstance(notify, TaskDispatched)
        assert delivery.input == {"orderId": "ORD123", "inStock": True}
        assert notify.input == {"customerId": "CUST1", "paymentStatus": "confirmed"}
        assert outcome.touched == ("inventory", "delivery", "notify")
        outcome = step(
            outcome.state,  # type: ignore[arg-type]
            completed("delivery", {"deliveryTracking": "DLV987"}),
            completed("notify", {"notified": True}),
        )
        assert ids(outcome) == [f"end:{OID}"]
        done = outcome.emit[0]
        assert isinstance(done, OrchestrationDone)
        assert done.results == {
            "inStock": True,
            "deliveryTracking": "DLV987",
            "notified": True,
            "payment": {"status": "confirmed"},
            "inventory": {"status": "ok"},
        }
        assert list(done.outputs) == ["payment", "inventory", "delivery", "notify"]
        assert outcome.state is not None
        assert outcome.state.status == "done"
        assert outcome.state.terminal
        assert timers_of(outcome.state) == []

    def test_webhook_project_mode_and_timeout_come_from_the_plan(self) -> None:
        state = started(webhook="http://hook", project="p1", mode="eager", task_timeout_s=2.5)
        assert (state.webhook, state.project, state.mode, state.task_timeout_s) == (
            "http://hook",
            "p1",
            "eager",
            2.5,
        )
        assert state.tasks["payment"].deadline == 102.5

    def test_transitions_are_deterministic(self) -> None:
        state = started()
        a = step(
            state, completed("payment", {"status": "x"}), completed("inventory", {"inStock": 1})
        )
        b = step(
            state, completed("payment", {"status": "x"}), completed("inventory", {"inStock": 1})
        )
        assert a.emit == b.emit
        assert a.state == b.state

    def test_eager_mode_releases_a_task_whose_dependencies_completed(self) -> None:
        state = started(mode="eager")
        outcome = step(state, completed("payment", {"status": "confirmed"}))
        assert ids(outcome) == [f"d:{OID}:notify:1"]

    def test_empty_plan_is_done_at_once(self) -> None:
        outcome = apply(None, plan_created(Plan(tasks=[], parallel_groups=[]), OID), POLICY, 1.0)
        assert ids(outcome) == [f"end:{OID}"]
        assert isinstance(outcome.emit[0], OrchestrationDone)


class TestIdempotency:
    def test_duplicate_plan_is_a_noop(self) -> None:
        state = started()
        outcome = apply(state, plan_created(seed_plan(), OID), POLICY, 200.0)
        assert not outcome.changed
        assert outcome.emit == []

    def test_duplicate_completion_is_a_noop(self) -> None:
        state = started()
        first = step(state, completed("payment", {"status": "a"}))
        again = step(first.state, completed("payment", {"status": "b"}))  # type: ignore[arg-type]
        assert not again.changed
        assert again.emit == []
        assert again.state is first.state

    def test_result_ahead_of_the_state_is_stale(self) -> None:
        state = started()
        outcome = step(state, completed("delivery", {"x": 1}))
        assert outcome.stale
        assert not outcome.changed
        outcome = step(state, completed("payment", {"x": 1}, attempt=2))
        assert outcome.stale

    def test_result_of_unknown_task_is_a_noop(self) -> None:
        outcome = step(started(), completed("nope", {}))
        assert not outcome.changed
        assert not outcome.stale

    def test_anything_after_the_end_is_a_noop(self) -> None:
        state = started()
        aborted = step(
            state, OrchestrationAborted(event_id=f"end:{OID}", orchestration_id=OID, reason="user")
        )
        assert aborted.changed
        assert aborted.emit == []
        assert aborted.state is not None
        assert aborted.state.status == "aborted"
        for item in (
            completed("payment", {"status": "a"}),
            failed("inventory"),
            Timer(orchestration_id=OID, task_id="payment", kind="timeout", attempt=1, due_at=0),
        ):
            outcome = step(aborted.state, item)
            assert not outcome.changed
            assert outcome.emit == []

    def test_no_state_means_noop_for_results(self) -> None:
        outcome = apply(None, completed("payment", {}), POLICY, 1.0)
        assert outcome.state is None
        assert not outcome.changed


class TestRetries:
    def test_retryable_failure_schedules_the_next_attempt(self) -> None:
        outcome = step(started(), failed("payment"), now=110.0)
        assert ids(outcome) == [f"rt:{OID}:payment:2"]
        retrying = outcome.emit[0]
        assert isinstance(retrying, TaskRetrying)
        assert (retrying.next_attempt, retrying.delay_s, retrying.reason) == (
            2,
            1.0,
            "card declined",
        )
        assert outcome.timers == [
            Timer(orchestration_id=OID, task_id="payment", kind="retry", attempt=2, due_at=111.0)
        ]
        assert outcome.state is not None
        assert outcome.state.tasks["payment"].status == "retry_wait"

    def test_retry_timer_dispatches_the_same_input_with_the_same_key(self) -> None:
        waiting = step(started(), failed("payment"))
        assert waiting.state is not None
        timer = payment_timer(waiting.state)
        assert (timer.task_id, timer.kind) == ("payment", "retry")
        outcome = step(waiting.state, timer)
        assert ids(outcome) == [f"d:{OID}:payment:2"]
        dispatched = outcome.emit[0]
        assert isinstance(dispatched, TaskDispatched)
        assert dispatched.idempotency_key == f"{OID}:payment"
        assert dispatched.input == {"orderId": "ORD123", "amount": "299.99"}
        assert step(outcome.state, timer).changed is False  # type: ignore[arg-type]

    def test_exponential_backoff_is_bounded(self) -> None:
        policy = Policy(retry_base_s=0.5, retry_max_s=3.0)
        assert [policy.backoff(n) for n in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]

    def test_jitter_is_deterministic_and_only_shortens(self) -> None:
        policy = Policy(retry_base_s=1.0, retry_max_s=10.0, retry_jitter=0.5)
        delays = [policy.backoff(1, f"o:{i}") for i in range(20)]
        assert all(0.5 <= d <= 1.0 for d in delays)
        assert len(set(delays)) > 1
        assert delays == [policy.backoff(1, f"o:{i}") for i in range(20)]

    def _run_attempts(self, n: int) -> Outcome:
        outcome = step(started(), failed("payment", 1))
        for attempt in range(2, n + 1):
            assert outcome.state is not None
            retry = next(t for t in timers_of(outcome.state) if t.task_id == "payment")
            outcome = step(outcome.state, retry, failed("payment", attempt))
        return outcome

    def test_exhaustion_fails_the_orchestration_naming_the_task(self) -> None:
        outcome = self._run_attempts(3)
        assert ids(outcome) == [f"end:{OID}"]
        failure = outcome.emit[0]
        assert isinstance(failure, OrchestrationFailed)
        assert failure.task_id == "payment"
        assert "payment" in failure.error
        assert "3 attempts" in failure.error
        assert "card declined" in failure.error
        assert outcome.state is not None
        assert outcome.state.status == "failed"

    def test_non_retryable_failure_fails_at_once(self) -> None:
        outcome = step(started(webhook="http://h"), failed("inventory", retryable=False))
        assert ids(outcome) == [f"end:{OID}"]
        failure = outcome.emit[0]
        assert isinstance(failure, OrchestrationFailed)
        assert failure.task_id == "inventory"
        assert "non-retryable" in failure.error
        assert failure.webhook == "http://h"

    def test_max_attempts_one_means_no_retry(self) -> None:
        outcome = apply(started(), failed("payment"), Policy(max_attempts=1), 1.0)
        assert isinstance(outcome.emit[0], OrchestrationFailed)

    def test_late_failure_of_an_older_attempt_is_a_noop(self) -> None:
        waiting = step(started(), failed("payment", 1))
        assert waiting.state is not None
        retry = payment_timer(waiting.state)
        running2 = step(waiting.state, retry)
        assert not step(running2.state, failed("payment", 1)).changed  # type: ignore[arg-type]
        # and a duplicate of the failure already handled
        assert not step(waiting.state, failed("payment", 1)).changed

    def test_late_success_of_an_earlier_attempt_is_a_success(self) -> None:
        waiting = step(started(), failed("payment", 1))
        assert waiting.state is not None
        running2 = step(waiting.state, payment_timer(waiting.state))
        outcome = step(running2.state, completed("payment", {"status": "late"}, attempt=1))  # type: ignore[arg-type]
        assert outcome.changed
        assert outcome.state is not None
        assert outcome.state.tasks["payment"].status == "completed"
        # the newer attempt's result afterwards changes nothing
        assert not step(outcome.state, completed("payment", {"status": "x"}, attempt=2)).changed

    def test_success_while_waiting_for_the_retry(self) -> None:
        waiting = step(started(), failed("payment", 1))
        outcome = step(waiting.state, completed("payment", {"status": "ok"}))  # type: ignore[arg-type]
        assert outcome.state is not None
        assert outcome.state.tasks["payment"].status == "completed"
        assert "payment" in outcome.touched
        assert not any(t.task_id == "payment" for t in timers_of(outcome.state))


class TestTimeouts:
    def test_timeout_emits_timed_out_then_retries(self) -> None:
        state = started(task_timeout_s=5.0)
        timer = timers_of(state)[0]
        assert (timer.kind, timer.attempt, timer.due_at) == ("timeout", 1, 105.0)
        outcome = step(state, timer, now=105.0)
        assert ids(outcome) == [f"to:{OID}:payment:1", f"rt:{OID}:payment:2"]
        timed_out = outcome.emit[0]
        assert isinstance(timed_out, TaskTimedOut)
        assert timed_out.timeout_s == 5.0

    def test_timeout_of_a_finished_attempt_is_a_noop(self) -> None:
        state = started()
        timer = timers_of(state)[0]
        done = step(state, completed("payment", {"status": "ok"}))
        assert not step(done.state, timer).changed  # type: ignore[arg-type]

    def test_repeated_timeouts_exhaust_the_attempts(self) -> None:
        outcome = Outcome(started(task_timeout_s=1.0), changed=False)
        for _ in range(3):
            assert outcome.state is not None
            timer = next(t for t in timers_of(outcome.state) if t.task_id == "inventory")
            if timer.kind == "retry":
                outcome = step(outcome.state, timer)
                assert outcome.state is not None
                timer = next(t for t in timers_of(outcome.state) if t.task_id == "inventory")
            assert outcome.state is not None
            outcome = step(outcome.state, timer)
        failure = outcome.emit[-1]
        assert isinstance(failure, OrchestrationFailed)
        assert "timed out" in failure.error
        assert failure.task_id == "inventory"


class TestFailuresOfThePlan:
    def test_plan_failed_becomes_orchestration_failed(self) -> None:
        event = PlanFailed(
            event_id=f"p:{OID}",
            orchestration_id=OID,
            status="not_actionable",
            reasons=["no service can do that", "really"],
            planner="offline",
            webhook="http://h",
            project="p",
        )
        outcome = apply(None, event, POLICY, 1.0)
        failure = outcome.emit[0]
        assert isinstance(failure, OrchestrationFailed)
        assert failure.event_id == f"end:{OID}"
        assert failure.error == "planning failed (not_actionable): no service can do that; really"
        assert (failure.webhook, failure.project) == ("http://h", "p")

    def test_invalid_plan_fails(self) -> None:
        plan = Plan(tasks=[PlanTask(id="a", service="S")], parallel_groups=[["b"]])
        outcome = apply(None, plan_created(plan, OID), POLICY, 1.0)
        failure = outcome.emit[0]
        assert isinstance(failure, OrchestrationFailed)
        assert failure.error.startswith("invalid plan:")
        assert outcome.state is not None
        assert outcome.state.terminal

    def test_unresolvable_reference_fails_naming_the_task(self) -> None:
        outcome = step(
            started(), completed("payment", {"noStatus": 1}), completed("inventory", {"inStock": 1})
        )
        failure = outcome.emit[-1]
        assert isinstance(failure, OrchestrationFailed)
        assert failure.task_id == "notify"
        assert "$payment.status" in failure.error


def test_terminal_events_carry_what_a_partial_plan_left_out() -> None:
    gap = UncoveredPart(part="gift-wrap it", reason="nothing registered can gift-wrap")
    partial = Plan(tasks=[], parallel_groups=[], uncovered=[gap])
    [done] = apply(None, plan_created(partial, OID), POLICY, 1.0).emit
    assert isinstance(done, OrchestrationDone)
    assert done.uncovered == [gap]
    state = started(msgspec.structs.replace(seed_plan(), uncovered=[gap]))
    ended = [
        e
        for e in step(state, failed("payment", 1, retryable=False)).emit
        if isinstance(e, OrchestrationFailed)
    ]
    assert [e.uncovered for e in ended] == [[gap]]
