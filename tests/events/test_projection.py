"""The read-model projection: a pure fold of events into orchestration views."""

from __future__ import annotations

from typing import Any

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from orra_events import (
    ActionSubmitted,
    DataField,
    Event,
    OrchestrationAborted,
    OrchestrationCompensating,
    OrchestrationDone,
    OrchestrationFailed,
    OrchestrationPaused,
    OrchestrationResumed,
    Plan,
    PlanCreated,
    PlanFailed,
    PlanTask,
    ServiceHeartbeat,
    TaskCompleted,
    TaskDispatched,
    TaskFailed,
    TaskRetrying,
    TaskTimedOut,
    UncoveredPart,
    WebhookAttempt,
    WebhookDelivered,
    WebhookFailed,
    decode,
)
from orra_events.projection import (
    LISTING_EVENT_TYPES,
    ListingState,
    OrchestrationView,
    advance_listing,
    apply,
    fold,
    is_terminal,
    summarize,
    to_builtins,
)

OID = "o_1"
PLAN = Plan(
    tasks=[
        PlanTask(id="payment", service="PaymentService", input={"orderId": "ORD123"}),
        PlanTask(id="inventory", service="InventoryService", input={"productId": "P1"}),
        PlanTask(
            id="delivery",
            service="DeliveryAgent",
            input={"inStock": "$inventory.inStock", "nested": {"paid": ["$payment.status"]}},
        ),
    ],
    parallel_groups=[["payment", "inventory"], ["delivery"]],
)


def submitted(**kw: Any) -> ActionSubmitted:
    fields: dict[str, Any] = {
        "event_id": f"a:{OID}",
        "orchestration_id": OID,
        "action": "Process order",
        "data": [DataField("orderId", "ORD123")],
        "project": "acme",
        "webhook": "https://example.com/h",
        "at": 100.0,
    }
    fields.update(kw)
    return ActionSubmitted(**fields)


def planned() -> PlanCreated:
    return PlanCreated(
        event_id=f"p:{OID}",
        orchestration_id=OID,
        plan=PLAN,
        planner="llm",
        model="gpt",
        cache_hit=True,
        attempts=2,
        latency_ms=42.0,
        usage={"total_tokens": 10},
        project="acme",
        at=101.0,
    )


def dispatched(task: str, attempt: int = 1, at: float = 102.0) -> TaskDispatched:
    return TaskDispatched(
        event_id=f"d:{OID}:{task}:{attempt}",
        orchestration_id=OID,
        task_id=task,
        service="S",
        input={"resolved": True},
        attempt=attempt,
        idempotency_key=f"{OID}:{task}",
        timeout_s=30,
        at=at,
    )


def completed(task: str, attempt: int = 1, output: dict[str, Any] | None = None) -> TaskCompleted:
    return TaskCompleted(
        event_id=f"r:{OID}:{task}:{attempt}",
        orchestration_id=OID,
        task_id=task,
        service="S",
        output=output or {"status": "ok"},
        attempt=attempt,
        idempotency_key=f"{OID}:{task}",
        started_at=102.5,
        duration_ms=1200.0,
        at=103.7,
    )


def failed(task: str, attempt: int = 1) -> TaskFailed:
    return TaskFailed(
        event_id=f"r:{OID}:{task}:{attempt}",
        orchestration_id=OID,
        task_id=task,
        service="S",
        error="boom",
        attempt=attempt,
        idempotency_key=f"{OID}:{task}",
        started_at=102.0,
        duration_ms=500.0,
    )


def view_of(*events: Event) -> OrchestrationView:
    view = fold(events)[OID]
    assert view is not None
    return view


def test_action_submitted_starts_planning() -> None:
    view = view_of(submitted(idempotency_key="k1", mode="eager"))
    assert view.status == "planning"
    assert view.project == "acme"
    assert view.action == "Process order"
    assert view.data == [DataField("orderId", "ORD123")]
    assert view.created_at == 100.0
    assert view.idempotency_key == "k1"
    assert view.mode == "eager"
    assert view.tasks == []
    assert not view.terminal


def test_plan_created_lists_tasks_with_groups_and_dependencies() -> None:
    view = view_of(submitted(), planned())
    assert view.status == "running"
    assert view.parallel_groups == [["payment", "inventory"], ["delivery"]]
    assert [(t.id, t.group, t.status, t.attempts) for t in view.tasks] == [
        ("payment", 0, "pending", 0),
        ("inventory", 0, "pending", 0),
        ("delivery", 1, "pending", 0),
    ]
    assert view.tasks[2].depends_on == ["inventory", "payment"]
    assert view.tasks[0].depends_on == []
    assert view.plan is not None
    assert (view.plan.planner, view.plan.model, view.plan.cache_hit) == ("llm", "gpt", True)
    assert (view.plan.attempts, view.plan.latency_ms) == (2, 42.0)
    assert view.plan.usage == {"total_tokens": 10}


def test_task_lifecycle_and_completion() -> None:
    view = view_of(
        submitted(),
        planned(),
        dispatched("payment"),
        completed("payment", output={"status": "confirmed"}),
        dispatched("inventory"),
    )
    payment = view.task("payment")
    assert payment is not None
    assert payment.status == "completed"
    assert payment.output == {"status": "confirmed"}
    assert payment.input == {"resolved": True}
    assert payment.started_at == 102.5
    assert payment.duration_ms == 1200.0
    assert payment.finished_at == 103.7
    inventory = view.task("inventory")
    assert inventory is not None
    assert inventory.status == "running"
    assert inventory.attempts == 1


def test_retries_timeouts_and_stale_attempts() -> None:
    view = view_of(submitted(), planned(), dispatched("payment"), failed("payment"))
    task = view.task("payment")
    assert task is not None
    assert (task.status, task.error, task.attempts) == ("failed", "boom", 1)

    apply(
        view,
        TaskRetrying(
            event_id="rt",
            orchestration_id=OID,
            task_id="payment",
            next_attempt=2,
            delay_s=1,
            reason="boom",
        ),
    )
    assert task.status == "retrying"
    apply(view, dispatched("payment", attempt=2, at=110.0))
    assert (task.status, task.attempts) == ("running", 2)
    apply(view, failed("payment", attempt=1))  # a late event of the older attempt
    assert task.status == "running"
    apply(
        view,
        TaskTimedOut(
            event_id="to",
            orchestration_id=OID,
            task_id="payment",
            attempt=2,
            timeout_s=30,
            at=140.0,
        ),
    )
    assert task.status == "failed"
    assert task.error is not None
    assert "timed out" in task.error
    assert task.duration_ms == 30_000.0
    apply(view, completed("payment", attempt=2))
    assert task.status == "completed"
    apply(view, failed("payment", attempt=3))
    assert task.status == "completed"  # completed is final


def test_done_sets_results_and_the_first_terminal_event_wins() -> None:
    view = view_of(
        submitted(),
        planned(),
        OrchestrationDone(
            event_id=f"end:{OID}",
            orchestration_id=OID,
            results={"status": "confirmed"},
            outputs={"payment": {"status": "confirmed"}},
            at=200.0,
        ),
        OrchestrationFailed(event_id=f"end:{OID}", orchestration_id=OID, error="late", at=201.0),
    )
    assert view.status == "completed"
    assert view.finished_at == 200.0
    assert view.results == {"status": "confirmed"}
    assert view.error is None
    payment = view.task("payment")
    assert payment is not None
    assert payment.output == {"status": "confirmed"}
    assert is_terminal(view.status)


def test_failed_and_aborted() -> None:
    failed_view = view_of(
        submitted(),
        planned(),
        OrchestrationFailed(event_id="end", orchestration_id=OID, error="payment failed"),
    )
    assert (failed_view.status, failed_view.error) == ("failed", "payment failed")
    aborted = view_of(
        submitted(),
        OrchestrationAborted(
            event_id="end", orchestration_id=OID, reason="user", payload={"why": "x"}, at=150.0
        ),
    )
    assert (aborted.status, aborted.error, aborted.results) == ("aborted", "user", {"why": "x"})
    assert aborted.finished_at == 150.0


def test_plan_failed_is_not_actionable_or_failed() -> None:
    def plan_failed(status: Any) -> PlanFailed:
        return PlanFailed(
            event_id=f"p:{OID}",
            orchestration_id=OID,
            status=status,
            reasons=["r1", "r2"],
            planner="offline",
        )

    view = view_of(
        submitted(),
        plan_failed("not_actionable"),
        OrchestrationFailed(event_id="end", orchestration_id=OID, error="planning failed"),
    )
    assert view.status == "not_actionable"
    assert view.reasons == ["r1", "r2"]
    assert view.error == "r1; r2"
    assert view.plan is not None
    assert view.plan.planner == "offline"
    assert view_of(submitted(), plan_failed("invalid")).status == "failed"


def test_webhook_deliveries_keep_the_last_outcome_per_url() -> None:
    view = view_of(
        submitted(),
        WebhookFailed(
            event_id="w1",
            orchestration_id=OID,
            url="https://a",
            attempts=5,
            status_code=500,
            error="server error",
            webhook_id="msg_1",
        ),
        WebhookDelivered(
            event_id="w2",
            orchestration_id=OID,
            url="https://b",
            attempt=1,
            status_code=200,
            webhook_id="msg_1",
        ),
        WebhookDelivered(
            event_id="w3",
            orchestration_id=OID,
            url="https://a",
            attempt=6,
            status_code=204,
            webhook_id="msg_1",
        ),
    )
    assert [(w.url, w.status, w.attempts, w.status_code) for w in view.webhooks] == [
        ("https://b", "delivered", 1, 200),
        ("https://a", "delivered", 6, 204),
    ]


def test_webhook_deliveries_show_each_attempt() -> None:
    log = [
        WebhookAttempt(n=1, at=10.0, status_code=503, duration_ms=12.5),
        WebhookAttempt(n=2, at=15.0, error="timeout: no response within 10s", duration_ms=1e4),
        WebhookAttempt(n=3, at=40.0, status_code=200, duration_ms=8.0),
    ]
    view = view_of(
        submitted(),
        WebhookDelivered(
            event_id="w1",
            orchestration_id=OID,
            url="https://a",
            attempt=3,
            status_code=200,
            webhook_id="msg_1",
            attempt_log=log,
        ),
    )
    [delivery] = view.webhooks
    assert delivery.status_codes == [503, None, 200]
    assert [(a.n, a.status_code, a.error) for a in delivery.attempt_log] == [
        (1, 503, None),
        (2, None, "timeout: no response within 10s"),
        (3, 200, None),
    ]
    body = msgspec.json.decode(msgspec.json.encode(view))["webhooks"][0]
    assert body["statusCodes"] == [503, None, 200]
    assert body["attemptLog"][1] == {
        "n": 2,
        "at": 15.0,
        "statusCode": None,
        "error": "timeout: no response within 10s",
        "durationMs": 1e4,
    }


def test_webhook_events_written_before_the_attempt_log_still_decode() -> None:
    old = (
        b'{"type":"webhook.failed","event_id":"w1","at":1.0,"v":1,"orchestration_id":"o_1",'
        b'"url":"https://a","attempts":2,"status_code":400,"error":"HTTP 400",'
        b'"webhook_id":"msg_1"}'
    )
    event = decode(old)
    assert isinstance(event, WebhookFailed)
    assert event.attempt_log == []
    [delivery] = view_of(submitted(), event).webhooks
    assert (delivery.status_codes, delivery.attempt_log) == ([], [])


def test_fold_separates_orchestrations_and_skips_service_events() -> None:
    other = ActionSubmitted(event_id="a:o_2", orchestration_id="o_2", action="other")
    heartbeat = ServiceHeartbeat(event_id="h", service="S", instance_id="i", interval_s=5)
    views = fold([submitted(), other, heartbeat, planned()])
    assert set(views) == {OID, "o_2"}
    assert views["o_2"].status == "planning"
    assert views[OID].event_count == 2
    assert apply(None, heartbeat) is None


def test_events_before_the_action_still_make_a_view() -> None:
    view = view_of(completed("payment"))
    assert view.id == OID
    assert [t.id for t in view.tasks] == ["payment"]


def test_json_uses_camel_case_and_parallel_groups() -> None:
    view = view_of(submitted(), planned(), dispatched("payment"), completed("payment"))
    data = msgspec.json.decode(msgspec.json.encode(view))
    assert data["parallel_groups"] == [["payment", "inventory"], ["delivery"]]
    assert {"createdAt", "finishedAt", "tasks", "results", "plan", "webhooks"} <= set(data)
    assert {"startedAt", "finishedAt", "durationMs", "dependsOn", "attempts"} <= set(
        data["tasks"][0]
    )
    assert data["plan"]["cacheHit"] is True
    assert to_builtins(view) == data
    summary = to_builtins(summarize(view))
    assert summary == {
        "id": OID,
        "action": "Process order",
        "status": "running",
        "taskCount": 3,
        "createdAt": 100.0,
        "finishedAt": None,
        "expired": False,
    }


# --- list lines without full views -------------------------------------------------------------


def _listing_events() -> dict[str, Any]:
    """Builders of every event type that can change a list line, at a given time."""
    return {
        "plan": lambda at: msgspec.structs.replace(planned(), at=at),
        "plan_failed": lambda at: PlanFailed(
            event_id=f"p:{OID}",
            orchestration_id=OID,
            status="not_actionable",
            reasons=["no service"],
            planner="llm",
            at=at,
        ),
        "plan_error": lambda at: PlanFailed(
            event_id=f"p:{OID}",
            orchestration_id=OID,
            status="error",
            reasons=["timeout"],
            planner="llm",
            at=at,
        ),
        "done": lambda at: OrchestrationDone(
            event_id=f"end:{OID}", orchestration_id=OID, results={}, outputs={}, at=at
        ),
        "failed": lambda at: OrchestrationFailed(
            event_id=f"end:{OID}", orchestration_id=OID, error="x", at=at
        ),
        "aborted": lambda at: OrchestrationAborted(
            event_id=f"end:{OID}", orchestration_id=OID, reason="stop", at=at
        ),
        "paused": lambda at: OrchestrationPaused(
            event_id=f"pause:{OID}:{at}",
            orchestration_id=OID,
            services=["S"],
            tasks=["payment"],
            grace_s=60.0,
            fail_at=at + 60.0,
            at=at,
        ),
        "resumed": lambda at: OrchestrationResumed(
            event_id=f"resume:{OID}:{at}",
            orchestration_id=OID,
            services=["S"],
            paused_s=1.0,
            at=at,
        ),
        "compensating": lambda at: OrchestrationCompensating(
            event_id=f"comp:{OID}",
            orchestration_id=OID,
            cause="failed",
            reason="x",
            tasks=["payment"],
            at=at,
        ),
        "dispatched": lambda at: dispatched("payment", at=at),
        "webhook": lambda at: WebhookDelivered(
            event_id=f"wh:{OID}:{at}",
            orchestration_id=OID,
            url="https://example.com/h",
            attempt=1,
            status_code=200,
            webhook_id="msg_1",
            at=at,
        ),
    }


def _listing_of(*events: Event) -> ListingState:
    state = ListingState()
    for event in events:
        advance_listing(state, event)
    return state


def test_listing_state_follows_the_status_rules() -> None:
    builders = _listing_events()
    state = ListingState()
    assert advance_listing(state, builders["plan"](101.0))
    assert (state.status, state.task_count) == ("running", 3)
    assert advance_listing(state, builders["paused"](110.0))
    assert state.status == "paused"
    # the end of an earlier pause does not resume this one
    assert not advance_listing(state, builders["resumed"](105.0))
    assert state.status == "paused"
    assert advance_listing(state, builders["resumed"](111.0))
    assert state.status == "running"
    assert not advance_listing(state, builders["webhook"](112.0))
    assert advance_listing(state, builders["done"](120.0))
    assert (state.status, state.finished_at, state.terminal) == ("completed", 120.0, True)
    # the first terminal event wins, and an ended line never changes again
    assert not advance_listing(state, builders["failed"](121.0))
    assert not advance_listing(state, builders["plan"](122.0))
    assert state.status == "completed"


def test_listing_state_of_planning_failures_and_aborts_before_the_plan() -> None:
    builders = _listing_events()
    assert _listing_of(builders["plan_failed"](101.0)).status == "not_actionable"
    assert _listing_of(builders["plan_error"](101.0)).status == "failed"
    aborted = _listing_of(builders["aborted"](101.0), builders["plan"](102.0))
    assert (aborted.status, aborted.task_count, aborted.finished_at) == ("aborted", 0, 101.0)
    compensating = _listing_of(builders["plan"](101.0), builders["compensating"](102.0))
    assert compensating.status == "compensating"
    assert _listing_of(
        builders["plan"](101.0), builders["compensating"](102.0), builders["failed"](103.0)
    ).status == ("failed")


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(sorted(_listing_events())), st.floats(100.0, 200.0)),
        max_size=12,
    )
)
def test_listing_state_agrees_with_the_full_view(steps: list[tuple[str, float]]) -> None:
    builders = _listing_events()
    events: list[Event] = [submitted()]
    events.extend(builders[name](at) for name, at in steps)
    view = view_of(*events)
    state = ListingState()
    planned_before_end = False
    for event in events:
        was_terminal = state.terminal
        changed = advance_listing(state, event)
        if type(event).TYPE not in LISTING_EVENT_TYPES:
            assert not changed
        if isinstance(event, PlanCreated) and not was_terminal:
            planned_before_end = True
    summary = summarize(view)
    assert state.status == summary.status
    assert state.finished_at == summary.finished_at
    assert state.error == view.error  # what an expired orchestration's summary keeps
    assert state.terminal == view.terminal
    assert state.task_count == (len(PLAN.tasks) if planned_before_end else 0)
    if not view.terminal:  # the plan's tasks (a view also shows tasks only events named)
        assert state.task_count == sum(1 for t in view.tasks if t.group is not None)


def test_coverage_is_folded_from_the_action_and_the_plan() -> None:
    gap = UncoveredPart(part="gift-wrap it", reason="nothing registered can gift-wrap")
    plan = msgspec.structs.replace(
        PLAN,
        tasks=[msgspec.structs.replace(t, serves="Process order") for t in PLAN.tasks],
        parts=["Process order", "gift-wrap it"],
        uncovered=[gap],
    )
    view = view_of(submitted(allow_partial=True), msgspec.structs.replace(planned(), plan=plan))
    assert view.allow_partial is True
    assert view.parts == ["Process order", "gift-wrap it"]
    assert view.uncovered == [gap]
    assert {t.serves for t in view.tasks} == {"Process order"}
    body = msgspec.json.decode(msgspec.json.encode(view))
    assert body["uncovered"] == [{"part": "gift-wrap it", "reason": gap.reason}]
    assert body["allowPartial"] is True
    refused = PlanFailed(
        event_id=f"p:{OID}",
        orchestration_id=OID,
        status="not_actionable",
        reasons=[gap.reason],
        planner="offline",
        uncovered=[gap],
    )
    assert view_of(submitted(), refused).uncovered == [gap]
