from __future__ import annotations

import time

from orra_cli.render import (
    format_duration,
    inspect_text,
    parse_time,
    ps_text,
    relative_time,
    task_notes,
)

from .samples import seed_orchestration

SEED = """\
┌─ Orchestration Details
│ ID: order123
│ Status: completed
│ Action: Process order and arrange delivery
│ Created: 2m ago

┌─ Tasks
│ ID       SERVICE          STATUS       DURATION
│ payment  PaymentSvc      completed    1.2s
│ stock    InventorySvc    completed    1.1s      # Ran parallel with payment
│ delivery DeliveryAgent   completed    2.3s      # Started after payment & stock
│ notify   NotifySvc       completed    0.8s      # Ran parallel with delivery"""


def test_inspect_draws_the_seed_exactly() -> None:
    now = time.time()
    assert inspect_text(seed_orchestration(now), now=now).plain == SEED


def test_detailed_inspect_starts_like_the_seed_then_adds_details() -> None:
    now = time.time()
    text = inspect_text(seed_orchestration(now), detailed=True, now=now).plain
    assert text.startswith(SEED.split("\n\n", maxsplit=1)[0])
    assert SEED.split("\n\n")[1] in text
    for expected in (
        "┌─ Task payment (PaymentSvc)",
        '│ Input: {"orderId": "ORD123"}',
        '│ Output: {"paymentStatus": "ok"}',
        "│ Attempts: 1",
        "┌─ Plan",
        "│ Planner: offline",
        "│ Cache hit: yes",
        "│ Latency: 12ms",
        "┌─ Webhooks",
        "│ http://localhost:3000/hook  delivered  1",
        '│ {"deliveryTracking": "DLV987"}',
    ):
        assert expected in text, expected


def test_notes_use_depends_on_in_eager_mode_and_tense() -> None:
    orch = {
        "mode": "eager",
        "parallel_groups": [["a", "b"], ["c"]],
        "tasks": [
            {"id": "a", "status": "running", "startedAt": 10.0},
            {"id": "b", "status": "pending"},
            {"id": "c", "status": "pending", "dependsOn": ["b"]},
        ],
    }
    assert task_notes(orch) == {"b": "Runs parallel with a", "c": "Waits for b"}


def test_notes_name_the_whole_previous_group_in_groups_mode() -> None:
    # groups mode (the default): delivery waits for payment & stock, not only its input's source
    orch = {
        "parallel_groups": [["payment", "stock"], ["delivery"]],
        "tasks": [
            {"id": "payment", "status": "completed", "startedAt": 1.0, "finishedAt": 2.0},
            {"id": "stock", "status": "completed", "startedAt": 1.0, "finishedAt": 1.5},
            {
                "id": "delivery",
                "status": "completed",
                "startedAt": 2.1,
                "finishedAt": 3.0,
                "dependsOn": ["stock"],
            },
        ],
    }
    notes = task_notes(orch)
    assert notes["delivery"] == "Started after payment & stock"
    assert task_notes({**orch, "mode": "eager"})["delivery"] == "Started after stock"
    # no mode recorded, but the times show it was released before payment ended: eager
    early = {**orch, "tasks": [*orch["tasks"][:2], {**orch["tasks"][2], "startedAt": 1.6}]}
    assert task_notes(early)["delivery"] == "Started after stock"


def test_same_group_tasks_that_did_not_overlap_are_not_called_parallel() -> None:
    orch = {
        "parallel_groups": [["a", "b"]],
        "tasks": [
            {"id": "a", "status": "completed", "startedAt": 1.0, "finishedAt": 2.0},
            {"id": "b", "status": "completed", "startedAt": 5.0, "finishedAt": 6.0},
        ],
    }
    assert task_notes(orch) == {}


def test_failed_orchestration_shows_its_error_and_reasons() -> None:
    orch = {
        "id": "o_1",
        "status": "not_actionable",
        "action": "x",
        "error": "cannot plan",
        "reasons": ["no service can pay"],
    }
    text = inspect_text(orch).plain
    assert "│ Error: cannot plan" in text
    assert "│   - no service can pay" in text


def test_times_and_durations() -> None:
    assert parse_time("2024-11-10T10:00:00Z") == parse_time(1731232800.0)
    assert parse_time(1731232800000) == 1731232800.0
    assert relative_time(100.0, now=220.0) == "2m ago"
    assert relative_time(None) == "-"
    assert format_duration(1200) == "1.2s"
    assert format_duration(45) == "45ms"
    assert format_duration(65_000) == "1m05s"
    assert format_duration(None) == "-"


def test_ps_table() -> None:
    now = time.time()
    items = [
        {
            "id": "o_1",
            "action": "Process order " * 10,
            "status": "running",
            "taskCount": 4,
            "createdAt": now - 130,
        },
    ]
    lines = ps_text(items, now=now).plain.splitlines()
    assert lines[0].split() == ["ID", "ACTION", "STATUS", "TASKS", "CREATED"]
    assert lines[1].startswith("o_1  Process order")
    assert "…" in lines[1]
    assert lines[1].endswith("running  4      2m ago")


def test_plan_token_usage_is_summed_up_and_odd_shapes_still_show() -> None:
    def tokens(usage: object) -> list[str]:
        orch: dict[str, object] = {
            "id": "o_1",
            "status": "completed",
            "plan": {"planner": "llm", "usage": usage},
        }
        text = inspect_text(orch, detailed=True).plain
        return [line for line in text.splitlines() if line.startswith("│ Tokens")]

    assert tokens({"prompt_tokens": 812, "completion_tokens": 140, "total_tokens": 952}) == [
        "│ Tokens: 952 (812 prompt, 140 completion)"
    ]
    assert tokens({"prompt_tokens": 10, "completion_tokens": 2}) == [
        "│ Tokens: 10 prompt, 2 completion"
    ]
    assert tokens({"total_tokens": 7, "cached_tokens": 3}) == ["│ Tokens: 7 (3 cached_tokens)"]
    assert tokens(None) == []


def test_detailed_inspect_lists_the_attempts_of_a_retried_webhook() -> None:
    now = time.time()
    orch = seed_orchestration(now)
    retried = {
        "url": "http://localhost:3000/retry",
        "status": "delivered",
        "attempts": 4,
        "statusCode": 200,
        "attemptLog": [
            {"n": 2, "at": now, "statusCode": 503, "durationMs": 12.4},
            {"n": 3, "at": now, "error": "timeout", "durationMs": 10000.0},
            {"n": 4, "at": now, "statusCode": 200, "durationMs": 8.0},
        ],
    }
    once = {
        "url": "http://localhost:3000/once",
        "status": "delivered",
        "attempts": 1,
        "statusCode": 200,
        "attemptLog": [{"n": 1, "at": now, "statusCode": 200, "durationMs": 5.0}],
    }
    orch["webhooks"] = [retried, once]
    text = inspect_text(orch, detailed=True, now=now).plain
    assert (
        "│   http://localhost:3000/retry: (+1 earlier) #2 503 12ms · #3 timeout 10000ms · "
        "#4 200 8ms"
    ) in text
    assert "http://localhost:3000/once:" not in text  # a first-attempt success adds nothing


EXPIRED = """\
┌─ Orchestration Details
│ ID: o_gone
│ Status: failed
│ Action: Refund order ORD9
│ Created: 9d ago
│ Error: PaymentService failed: card declined
│ Expired: events removed 2d ago by the event log's retention; this summary is what is kept

┌─ Tasks
│ (4 tasks; their details expired)"""


def test_an_expired_orchestration_shows_its_summary_and_says_the_details_expired() -> None:
    now = time.time()
    view = {
        "id": "o_gone",
        "status": "failed",
        "action": "Refund order ORD9",
        "createdAt": now - 9 * 86400,
        "finishedAt": now - 9 * 86400 + 3,
        "error": "PaymentService failed: card declined",
        "tasks": [],
        "expired": True,
        "expiredAt": now - 2 * 86400,
        "taskCount": 4,
    }
    assert inspect_text(view, now=now).plain == EXPIRED
    # -d has no details to add: they expired with the events.
    assert inspect_text(view, detailed=True, now=now).plain == EXPIRED


def test_ps_marks_expired_orchestrations() -> None:
    now = time.time()
    items = [
        {"id": "o_new", "action": "a", "status": "running", "taskCount": 2, "createdAt": now},
        {
            "id": "o_old",
            "action": "b",
            "status": "completed",
            "taskCount": 4,
            "createdAt": now - 86400 * 9,
            "expired": True,
        },
    ]
    lines = ps_text(items, now=now).plain.splitlines()
    assert "completed (expired)" in lines[2]
    assert "(expired)" not in lines[1]
