# ruff: noqa: N815 - field names are camelCase wire names
"""orra_sdk.testing.call / call_revert: a handler run as the worker runs it, no broker."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest
from pydantic import BaseModel

from orra_sdk import (
    AbortOrchestration,
    InvalidData,
    JsonObject,
    NonRetryableError,
    RevertTask,
    Service,
    ServiceDefinitionError,
    Task,
)
from orra_sdk.testing import call, call_revert


class PayIn(BaseModel):
    orderId: str
    amount: float


class PayOut(BaseModel):
    paymentStatus: str
    transactionId: str


def payment_service(**behaviour: Any) -> tuple[Service[PayIn, PayOut], list[RevertTask[Any, Any]]]:
    """A revertible payment service; ``behaviour`` picks what its handler does."""
    service = Service(
        name="PaymentService",
        description="Charge the payment of an order",
        input=PayIn,
        output=PayOut,
        revertible=True,
    )
    reverted: list[RevertTask[Any, Any]] = []

    @service.handler
    async def pay(task: Task[PayIn]) -> PayOut | dict[str, Any]:
        await task.progress({"step": "charging", "attempt": task.attempt})
        await task.progress(PayOut(paymentStatus="pending", transactionId="-"), wait=False)
        if "raise_" in behaviour:
            raise behaviour["raise_"]
        if "returns" in behaviour:
            return dict(behaviour["returns"])
        return PayOut(paymentStatus="confirmed", transactionId=f"TX-{task.idempotency_key}")

    @service.revert
    async def refund(task: RevertTask[PayIn, PayOut]) -> None:
        if "revert_raises" in behaviour:
            raise behaviour["revert_raises"]
        reverted.append(task)

    return service, reverted


async def test_a_call_gives_the_recorded_output_the_model_and_the_progress() -> None:
    service, _ = payment_service()
    called = await call(service, {"orderId": "O1", "amount": "10.5"}, attempt=2)

    assert called.output == {"paymentStatus": "confirmed", "transactionId": "TX-o_test:task"}
    assert called.value == PayOut(paymentStatus="confirmed", transactionId="TX-o_test:task")
    assert called.progress == [
        {"step": "charging", "attempt": 2},
        {"paymentStatus": "pending", "transactionId": "-"},
    ]
    assert called.task.input == PayIn(orderId="O1", amount=10.5)
    assert (called.task.attempt, called.task.service) == (2, "PaymentService")


async def test_the_task_fields_are_the_dispatchers() -> None:
    service, _ = payment_service()
    called = await call(
        service,
        PayIn(orderId="O1", amount=1),
        orchestration_id="o_1",
        task_id="pay",
        deliveries=3,
        timeout_s=5.0,
    )
    assert called.task.idempotency_key == "o_1:pay"
    assert (called.task.deliveries, called.task.timeout_s) == (3, 5.0)
    explicit = await call(service, {"orderId": "O1", "amount": 1}, idempotency_key="k1")
    assert explicit.output["transactionId"] == "TX-k1"


async def test_an_input_that_misses_the_schema_is_refused_naming_the_field() -> None:
    service, _ = payment_service()
    with pytest.raises(InvalidData, match=r"invalid input for PaymentService: amount: Input"):
        await call(service, {"orderId": "O1", "amount": "lots"})


async def test_an_output_that_misses_the_schema_is_refused_naming_the_field() -> None:
    service, _ = payment_service(returns={"paymentStatus": "confirmed"})
    with pytest.raises(
        InvalidData, match=r"invalid output from PaymentService: transactionId: Field required"
    ):
        await call(service, {"orderId": "O1", "amount": 1})


@pytest.mark.parametrize(
    "error",
    [NonRetryableError("card expired"), AbortOrchestration("fraud", {"orderId": "O1"}), KeyError],
)
async def test_the_handlers_exceptions_are_raised_unchanged(error: BaseException) -> None:
    service, _ = payment_service(raise_=error)
    with pytest.raises(type(error) if isinstance(error, BaseException) else error) as caught:
        await call(service, {"orderId": "O1", "amount": 1})
    if isinstance(error, BaseException):
        assert caught.value is error


async def test_a_progress_update_that_is_not_json_is_refused_as_the_worker_would() -> None:
    service = Service.from_json_schema(
        name="Odd", description="d", input_schema={"type": "object"}, output_schema={}
    )

    @service.handler
    async def odd(task: Task[JsonObject]) -> JsonObject:
        await task.progress({"when": object()})
        return {}

    with pytest.raises(TypeError):
        await call(service, {})


async def test_a_service_without_a_handler_says_so() -> None:
    service = Service(name="Bare", description="d", input=PayIn, output=PayOut)
    with pytest.raises(ServiceDefinitionError, match="no handler"):
        await call(service, {"orderId": "O1", "amount": 1})


async def test_json_schema_services_are_checked_against_their_schemas() -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    service = Service.from_json_schema(
        name="Double", description="d", input_schema=schema, output_schema=schema
    )

    @service.handler
    async def double(task: Task[JsonObject]) -> JsonObject:
        return {"n": task.input["n"] * 2} if task.input["n"] < 10 else {"n": "big"}

    assert (await call(service, {"n": 2})).output == {"n": 4}
    with pytest.raises(InvalidData, match="invalid input for Double: n: 'x' is not of type"):
        await call(service, {"n": "x"})
    with pytest.raises(InvalidData, match="invalid output from Double: n: 'big' is not of type"):
        await call(service, {"n": 11})


async def test_a_revert_gets_the_input_the_recorded_output_and_the_reason() -> None:
    service, reverted = payment_service()
    done = await call(service, {"orderId": "O1", "amount": 3})

    task = await call_revert(
        service, {"orderId": "O1", "amount": 3}, done.output, reason="delivery failed"
    )

    assert reverted == [task]
    assert task.output == PayOut(paymentStatus="confirmed", transactionId="TX-o_test:task")
    assert (task.reason, task.idempotency_key) == ("delivery failed", "o_test:task:revert")


async def test_a_revert_refuses_data_that_no_longer_matches_and_raises_the_handlers_errors() -> (
    None
):
    service, _ = payment_service(revert_raises=NonRetryableError("already refunded"))
    with pytest.raises(InvalidData, match=r"cannot revert: .*transactionId: Field required"):
        await call_revert(service, {"orderId": "O1", "amount": 3}, {"paymentStatus": "x"})
    with pytest.raises(NonRetryableError, match="already refunded"):
        await call_revert(
            service,
            {"orderId": "O1", "amount": 3},
            PayOut(paymentStatus="confirmed", transactionId="T"),
        )


async def test_a_revert_without_a_revert_handler_says_so() -> None:
    service = Service(name="NoUndo", description="d", input=PayIn, output=PayOut, revertible=True)
    with pytest.raises(ServiceDefinitionError, match="no revert handler"):
        await call_revert(
            service, {"orderId": "O1", "amount": 1}, {"paymentStatus": "a", "transactionId": "b"}
        )


def test_the_sdk_and_call_need_none_of_the_testing_extra() -> None:
    code = (
        "import sys, orra_sdk, orra_sdk.testing\n"
        "extra = {'orra_dispatcher', 'orra_planner', 'pytest', 'pytest_asyncio'}\n"
        "print(sorted(extra & set(sys.modules)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "[]"
