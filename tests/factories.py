"""Small factories for events used across the tests."""

from __future__ import annotations

from typing import Any

import pytest

from orra_events import TaskCompleted, new_event_id


def task_completed(**overrides: Any) -> TaskCompleted:
    fields: dict[str, Any] = {
        "event_id": new_event_id(),
        "orchestration_id": "o_test",
        "task_id": "payment",
        "service": "PaymentService",
        "output": {"paymentStatus": "confirmed"},
        "attempt": 1,
        "idempotency_key": "o_test:payment",
        "started_at": 1.0,
        "duration_ms": 5.0,
    }
    fields.update(overrides)
    return TaskCompleted(**fields)


@pytest.fixture
def make_task_completed() -> Any:
    return task_completed
