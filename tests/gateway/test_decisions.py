"""The gateway's rule for approvals and rejections (`orra_gateway.domain.decision_problem`)."""

from __future__ import annotations

import pytest

from orra_events.projection import ApprovalView, OrchestrationView, TaskView
from orra_gateway.domain import decision_problem
from orra_gateway.errors import NotFound


def view(**kw: object) -> OrchestrationView:
    base: dict[str, object] = {
        "id": "o_1",
        "status": "awaiting_approval",
        "approval": ApprovalView(requested_at=1.0, expires_at=100.0),
        "tasks": [TaskView(id="pay", service="PaymentService")],
    }
    base.update(kw)
    return OrchestrationView(**base)  # type: ignore[arg-type]


def test_a_waiting_plan_may_be_decided_until_it_expires() -> None:
    assert decision_problem(view(), None, 50.0) is None
    assert "expired" in (decision_problem(view(), None, 100.0) or "")


def test_what_does_not_wait_is_a_conflict_that_says_why() -> None:
    running = view(status="running", approval=None)
    assert "not submitted to preview" in (decision_problem(running, None, 1.0) or "")
    decided = view(approval=ApprovalView(status="approved", decided_by="k_1"))
    assert decision_problem(decided, None, 1.0) == (
        "orchestration o_1 was already approved by k_1 (an approval is decided once)"
    )
    ended = view(status="aborted", error="customer cancelled")
    assert "already ended (aborted: customer cancelled)" in (decision_problem(ended, None, 1) or "")
    held = TaskView(
        id="refund",
        service="Refunds",
        status="awaiting_approval",
        approval=ApprovalView(condition="amount > 1"),
    )
    compensating = view(status="compensating", approval=None, tasks=[held])
    assert "being compensated" in (decision_problem(compensating, "refund", 1.0) or "")
    pay = TaskView(id="pay", service="PaymentService", status="completed")
    plain = view(status="running", approval=None, tasks=[pay, held])
    assert "tasks waiting for approval: refund" in (decision_problem(plain, None, 1.0) or "")
    assert decision_problem(plain, "refund", 1.0) is None
    assert "does not wait" in (decision_problem(plain, "pay", 1.0) or "")


def test_an_unknown_task_is_not_found() -> None:
    with pytest.raises(NotFound, match="no task 'nosuch'"):
        decision_problem(view(), "nosuch", 1.0)
