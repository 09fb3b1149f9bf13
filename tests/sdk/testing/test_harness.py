# ruff: noqa: N815 - field names are camelCase wire names
"""orra_sdk.testing.Orra: services, the real dispatcher and planner over a real nats-server."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from pydantic import BaseModel

from orra_events import PlanTask, TaskCompensated, TaskDispatched, TaskFailed
from orra_sdk import AbortOrchestration, NonRetryableError, RevertTask, Service, Task
from orra_sdk.testing import HarnessError, OrchestrationTimeout, Orra


class Order(BaseModel):
    orderId: str


class Charged(BaseModel):
    paymentStatus: str


class Notice(BaseModel):
    orderId: str
    paymentStatus: str


class Sent(BaseModel):
    sent: bool


def services(fail: dict[str, BaseException] | None = None) -> tuple[Any, Any, list[str]]:
    """A revertible payment and a notification service; ``fail`` makes one raise."""
    fail = fail or {}
    reverted: list[str] = []
    payment = Service(
        name="PaymentService",
        description="Charge the customer for an order",
        input=Order,
        output=Charged,
        revertible=True,
    )
    notify = Service(
        name="NotificationService",
        description="Notify the customer about the order",
        input=Notice,
        output=Sent,
    )

    @payment.handler
    async def pay(task: Task[Order]) -> Charged:
        await task.progress({"step": "charging"})
        if "pay" in fail:
            raise fail["pay"]
        return Charged(paymentStatus="confirmed")

    @payment.revert
    async def refund(task: RevertTask[Order, Charged]) -> None:
        reverted.append(f"{task.input.orderId}: {task.reason}")

    @notify.handler
    async def send(task: Task[Notice]) -> Sent:
        if "notify" in fail:
            raise fail["notify"]
        return Sent(sent=task.input.paymentStatus == "confirmed")

    return payment, notify, reverted


PLAN = {
    "payment": ("PaymentService", {"orderId": "O1"}),
    "notify": ("NotificationService", {"orderId": "O1", "paymentStatus": "$payment.paymentStatus"}),
}


async def test_a_plan_runs_to_its_results_with_data_passed_between_tasks(orra: Orra) -> None:
    payment, notify, _ = services()
    await orra.serve(payment, notify)

    outcome = await orra.run(PLAN)

    assert outcome.status == "done", outcome
    assert outcome.outputs == {"payment": {"paymentStatus": "confirmed"}, "notify": {"sent": True}}
    assert outcome.results == {"paymentStatus": "confirmed", "sent": True}
    assert outcome.progress("payment") == [{"step": "charging"}]
    assert outcome.plan is not None
    assert outcome.plan.parallel_groups == [["payment"], ["notify"]]
    dispatched = outcome.of(TaskDispatched)
    assert [e.task_id for e in dispatched] == ["payment", "notify"]


async def test_plan_tasks_and_services_by_object_are_accepted(orra: Orra) -> None:
    payment, notify, _ = services()
    await orra.serve(payment)
    by_object = await orra.run({"pay": (payment, {"orderId": "O2"})})
    await orra.serve(notify)  # after the dispatcher started: it is restarted to know it
    by_task = await orra.run(
        [
            PlanTask(
                id="n",
                service="NotificationService",
                input=Notice(orderId="O2", paymentStatus="x").model_dump(),
            )
        ]
    )
    assert by_object.outputs == {"pay": {"paymentStatus": "confirmed"}}
    assert by_task.outputs == {"n": {"sent": False}}


async def test_a_failure_compensates_the_completed_revertible_tasks(orra: Orra) -> None:
    payment, notify, reverted = services({"notify": NonRetryableError("mailbox full")})
    await orra.serve(payment, notify)

    outcome = await orra.run(PLAN)

    assert outcome.status == "failed"
    assert outcome.task_id == "notify"
    assert outcome.error is not None
    assert "mailbox full" in outcome.error
    assert outcome.compensation is not None
    assert outcome.compensation.compensated == ["payment"]
    assert len(outcome.of(TaskCompensated)) == 1
    assert reverted == [f"O1: {outcome.error}"]
    assert [e.retryable for e in outcome.of(TaskFailed)] == [False]


async def test_a_retryable_failure_is_retried_by_the_dispatcher(orra: Orra) -> None:
    attempts: list[int] = []
    flaky = Service(name="Flaky", description="Sometimes fails", input=Order, output=Charged)

    @flaky.handler
    async def run(task: Task[Order]) -> Charged:
        attempts.append(task.attempt)
        if task.attempt < 3:
            raise RuntimeError("try again")
        return Charged(paymentStatus="ok")

    await orra.serve(flaky)
    outcome = await orra.run({"f": (flaky, {"orderId": "O1"})})
    assert outcome.status == "done"
    assert attempts == [1, 2, 3]


async def test_an_abort_ends_the_orchestration_with_its_payload(orra: Orra) -> None:
    payment, _, reverted = services({"pay": AbortOrchestration("fraud", {"orderId": "O1"})})
    await orra.serve(payment)
    outcome = await orra.run({"payment": (payment, {"orderId": "O1"})})
    assert (outcome.status, outcome.error, outcome.results) == (
        "aborted",
        "aborted by PaymentService (task 'payment'): fraud",
        {"orderId": "O1"},
    )
    assert reverted == []


async def test_an_invalid_plan_is_refused_before_it_is_sent(orra: Orra) -> None:
    with pytest.raises(HarnessError, match=r"invalid plan: .*ghost"):
        await orra.run({"a": ("Svc", {"x": "$ghost.field"})})


async def test_an_orchestration_that_does_not_end_in_time_names_what_it_saw(orra: Orra) -> None:
    slow = Service(name="Slow", description="Takes its time", input=Order, output=Charged)

    @slow.handler
    async def wait(task: Task[Order]) -> Charged:
        await asyncio.sleep(5)
        return Charged(paymentStatus="late")

    await orra.serve(slow)
    with pytest.raises(OrchestrationTimeout, match=r"within 0.5s; events seen: .*task.dispatched"):
        await orra.run({"s": (slow, {"orderId": "O1"})}, timeout_s=0.5)


async def test_an_action_is_planned_by_the_offline_planner_and_run(orra: Orra) -> None:
    payment, notify, _ = services()
    await orra.serve(payment, notify)

    outcome = await orra.submit(
        "Charge the customer for the order and notify the customer", {"orderId": "O7"}
    )

    assert outcome.status == "done", outcome.error
    assert outcome.results == {"paymentStatus": "confirmed", "sent": True}
    refused = await orra.submit("Launch a rocket to the moon")
    assert refused.status == "plan_failed"
    assert refused.error
