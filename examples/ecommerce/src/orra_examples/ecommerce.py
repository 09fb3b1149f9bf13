# ruff: noqa: N815 - field names are the camelCase wire names of the seed (orderId, inStock)
"""Example e-commerce services: payment, inventory, delivery, notification, fraud, refund.

Each is an ordinary :class:`orra_sdk.Service`; together they let the offline planner plan
the seed's actions. Each declares a few example phrases (``examples=[...]``): words its
users use for it, which teach the planner its synonyms. They are version 2: version 1 had
no examples, and one name and version has one definition (a data directory of an older
``orra up`` keeps version 1, which version 2 replaces for new plans). Field names are
chosen so that outputs wire into inputs by name: InventoryService's ``inStock`` feeds
DeliveryAgent, PaymentService's ``paymentStatus`` feeds NotificationService, FraudCheck's
``fraudCleared`` feeds RefundService.

Environment (read at each task, so tests can change it):

* ``ORRA_EXAMPLES_LATENCY_SCALE``: multiplies the simulated latencies (hundreds of ms);
  ``0`` makes every handler instant. Default ``1``.
* ``ORRA_EXAMPLES_FAIL``: ``Service:N[,Service:N]`` fails the first ``N`` attempts of
  every task of that service with a retryable error.
* ``ORRA_EXAMPLES_EFFECTS_FILE``: append one JSON line per executed handler (service,
  idempotency_key, attempt, pid, outcome, started_at, finished_at), to count side effects.
* ``ORRA_EXAMPLES_ACK_WAIT_S``: the SDK's ack wait (30 s by default); a killed process's
  tasks are redelivered after it, and its idempotency claims expire after twice that.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import hashlib
import json
import os
import random
import time
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from pydantic import BaseModel, Field, model_validator

from orra_sdk import AbortOrchestration, NonRetryableError, RevertTask, Service, Task
from orra_sdk import run as run_services

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

__all__ = [
    "SERVICES",
    "DeliveryAgent",
    "FraudCheck",
    "InventoryService",
    "NotificationService",
    "PaymentService",
    "RefundService",
    "main",
    "run",
]

InT = TypeVar("InT", bound=BaseModel)
OutT = TypeVar("OutT", bound=BaseModel)


# --- simulation helpers --------------------------------------------------------------------


def latency_scale() -> float:
    """``ORRA_EXAMPLES_LATENCY_SCALE`` (1 by default, 0 for instant handlers)."""
    raw = os.environ.get("ORRA_EXAMPLES_LATENCY_SCALE", "")
    return float(raw) if raw else 1.0


def failures_for(service: str) -> int:
    """How many first attempts of ``service`` tasks ``ORRA_EXAMPLES_FAIL`` makes fail."""
    for item in os.environ.get("ORRA_EXAMPLES_FAIL", "").split(","):
        name, _, count = item.strip().partition(":")
        if name == service:
            return int(count or "1")
    return 0


def revert_failures_for(service: str) -> float:
    """How many first revert attempts ``ORRA_EXAMPLES_FAIL_REVERT`` makes fail (inf: all)."""
    for item in os.environ.get("ORRA_EXAMPLES_FAIL_REVERT", "").split(","):
        name, _, count = item.strip().partition(":")
        if name == service:
            return float("inf") if count == "always" else float(int(count or "1"))
    return 0.0


def aborts(service: str) -> bool:
    """Whether ``ORRA_EXAMPLES_ABORT`` makes ``service`` abort its orchestrations."""
    return service in {s.strip() for s in os.environ.get("ORRA_EXAMPLES_ABORT", "").split(",")}


def _record_effect(
    task: Task[Any] | RevertTask[Any, Any],
    outcome: str,
    started_at: float,
    extra: dict[str, Any] | None = None,
) -> None:
    path = os.environ.get("ORRA_EXAMPLES_EFFECTS_FILE")
    if not path:
        return
    line = {
        "service": task.service,
        "idempotency_key": task.idempotency_key,
        "orchestration_id": task.orchestration_id,
        "task_id": task.task_id,
        "attempt": task.attempt,
        "pid": os.getpid(),
        "outcome": outcome,
        "started_at": started_at,
        "finished_at": time.time(),
        **(extra or {}),
    }
    # One write of one line to a file opened for appending is atomic across processes.
    with open(path, "a", encoding="utf-8") as f:  # noqa: PTH123
        f.write(json.dumps(line) + "\n")


def simulated(
    base_ms: float,
) -> Callable[[Callable[[Task[InT]], OutT]], Callable[[Task[InT]], Awaitable[OutT]]]:
    """Wrap a pure handler with latency, failure injection and side-effect recording."""

    def wrap(fn: Callable[[Task[InT]], OutT]) -> Callable[[Task[InT]], Awaitable[OutT]]:
        async def handler(task: Task[InT]) -> OutT:
            started_at = time.time()
            scale = latency_scale()
            if scale > 0:
                await asyncio.sleep(base_ms / 1000.0 * scale * random.uniform(0.8, 1.2))
            if task.attempt <= failures_for(task.service):
                _record_effect(task, "failed", started_at)
                raise RuntimeError(
                    f"{task.service} is temporarily unavailable (injected failure, "
                    f"attempt {task.attempt})"
                )
            if aborts(task.service):
                _record_effect(task, "aborted", started_at)
                raise AbortOrchestration(
                    f"{task.service} refused the order (injected abort)",
                    {"orderId": getattr(task.input, "orderId", None), "by": task.service},
                )
            result = fn(task)
            _record_effect(task, "completed", started_at)
            return result

        handler.__name__ = fn.__name__
        handler.__doc__ = fn.__doc__
        return handler

    return wrap


def simulated_revert(
    base_ms: float,
) -> Callable[
    [Callable[[RevertTask[InT, OutT]], None]], Callable[[RevertTask[InT, OutT]], Awaitable[None]]
]:
    """Wrap a pure revert function with latency, failure injection and effect recording."""

    def wrap(
        fn: Callable[[RevertTask[InT, OutT]], None],
    ) -> Callable[[RevertTask[InT, OutT]], Awaitable[None]]:
        async def handler(task: RevertTask[InT, OutT]) -> None:
            started_at = time.time()
            scale = latency_scale()
            if scale > 0:
                await asyncio.sleep(base_ms / 1000.0 * scale * random.uniform(0.8, 1.2))
            if task.attempt <= revert_failures_for(task.service):
                _record_effect(task, "revert_failed", started_at)
                raise RuntimeError(
                    f"{task.service} cannot revert right now (injected failure, "
                    f"attempt {task.attempt})"
                )
            fn(task)
            _record_effect(task, "reverted", started_at, {"reason": task.reason})

        handler.__name__ = fn.__name__
        handler.__doc__ = fn.__doc__
        return handler

    return wrap


def _stable(*parts: str) -> int:
    return int(hashlib.sha256("|".join(parts).encode()).hexdigest()[:8], 16)


def _price(product_id: str) -> float:
    return round(5 + _stable("price", product_id) % 20000 / 100, 2)


# --- schemas -------------------------------------------------------------------------------


class OrderItem(BaseModel):
    """One line of an order."""

    id: str
    quantity: int = Field(default=1, ge=1)


class PaymentInput(BaseModel):
    """Charge an order: the amount, or the items to price."""

    orderId: str
    amount: float | None = Field(default=None, gt=0)
    items: list[OrderItem] | None = None
    customerId: str | None = None

    @model_validator(mode="after")
    def _amount_or_items(self) -> PaymentInput:
        if self.amount is None and not self.items:
            raise ValueError("give the amount, or the items to charge for")
        return self


class PaymentOutput(BaseModel):
    """The result of a payment."""

    paymentStatus: Literal["confirmed", "declined"]
    transactionId: str
    amountCharged: float


class InventoryInput(BaseModel):
    """Products to check and reserve: one productId, or the order's items."""

    productId: str | None = None
    quantity: int = Field(default=1, ge=1)
    items: list[OrderItem] | None = None
    orderId: str | None = None

    @model_validator(mode="after")
    def _product_or_items(self) -> InventoryInput:
        if self.productId is None and not self.items:
            raise ValueError("give a productId or the order's items")
        return self


class InventoryOutput(BaseModel):
    """Stock of the products and what was reserved."""

    inStock: bool
    inventoryStatus: Literal["reserved", "out_of_stock"]
    reservedItems: int


class DeliveryInput(BaseModel):
    """An order to deliver; ``inStock`` comes from the inventory check when known."""

    orderId: str
    inStock: bool | None = None
    address: str | None = None


class DeliveryOutput(BaseModel):
    """The arranged delivery."""

    deliveryTracking: str
    estimatedDelivery: str
    deliveryStatus: Literal["scheduled", "backordered"]
    carrier: str


class NotificationInput(BaseModel):
    """Who to notify, and about what."""

    customerId: str
    orderId: str | None = None
    paymentStatus: str | None = None


class NotificationOutput(BaseModel):
    """The notification sent."""

    notificationStatus: Literal["sent"]
    notificationId: str
    orderStatus: str


class FraudInput(BaseModel):
    """The order or refund to assess."""

    orderId: str
    customerId: str | None = None
    amount: float | None = None


class FraudOutput(BaseModel):
    """Fraud assessment."""

    fraudRisk: Literal["low", "medium", "high"]
    fraudScore: float
    fraudCleared: bool


class RefundInput(BaseModel):
    """A refund request, cleared (or not) by the fraud check."""

    orderId: str
    fraudCleared: bool
    amount: float | None = None


class RefundOutput(BaseModel):
    """The refund's result."""

    refundStatus: Literal["refunded", "rejected"]
    refundId: str | None
    refundAmount: float


# --- services ------------------------------------------------------------------------------

PaymentService = Service(
    name="PaymentService",
    description=(
        "Process order payment: charge the customer for a new order (amount or items) "
        "and return the payment status and transaction id."
    ),
    input=PaymentInput,
    output=PaymentOutput,
    revertible=True,
    version="2",
    examples=[
        "charge the customer",
        "take payment for the order",
        "bill the card",
    ],
)


@PaymentService.handler
@simulated(300)
def pay(task: Task[PaymentInput]) -> PaymentOutput:
    data = task.input
    amount = data.amount
    if amount is None:
        amount = sum(_price(i.id) * i.quantity for i in data.items or [])
    if amount > 100_000:
        raise NonRetryableError(f"amount {amount:.2f} exceeds the card limit")
    return PaymentOutput(
        paymentStatus="confirmed",
        transactionId=f"TXN{_stable('txn', task.idempotency_key) % 1_000_000:06d}",
        amountCharged=round(amount, 2),
    )


@PaymentService.revert
@simulated_revert(200)
def refund_payment(task: RevertTask[PaymentInput, PaymentOutput]) -> None:
    """Refund the charge (a real service would call its payment provider with the id)."""
    assert task.output.transactionId


InventoryService = Service(
    name="InventoryService",
    description=(
        "Update inventory for a new order: check product stock and reserve the ordered "
        "items in the warehouse."
    ),
    input=InventoryInput,
    output=InventoryOutput,
    revertible=True,
    version="2",
    examples=[
        "reserve the ordered items",
        "is the product in stock",
        "hold the stock for an order",
    ],
)


@InventoryService.handler
@simulated(250)
def reserve(task: Task[InventoryInput]) -> InventoryOutput:
    data = task.input
    lines = [(i.id, i.quantity) for i in data.items or []]
    if data.productId is not None:
        lines.append((data.productId, data.quantity))
    in_stock = all(not product.upper().startswith("OOS") for product, _ in lines)
    return InventoryOutput(
        inStock=in_stock,
        inventoryStatus="reserved" if in_stock else "out_of_stock",
        reservedItems=sum(q for _, q in lines) if in_stock else 0,
    )


@InventoryService.revert
@simulated_revert(150)
def release_reservation(task: RevertTask[InventoryInput, InventoryOutput]) -> None:
    """Put the reserved items back on the shelf."""


DeliveryAgent = Service(
    name="DeliveryAgent",
    description=(
        "Estimate order delivery and arrange the optimal delivery: choose the carrier, "
        "schedule shipping, return the delivery tracking number and estimated delivery date."
    ),
    input=DeliveryInput,
    output=DeliveryOutput,
    revertible=True,
    version="2",
    examples=[
        "ship the order",
        "when will the order arrive",
        "book a courier",
    ],
    kind="agent",
)


@DeliveryAgent.handler
async def deliver(task: Task[DeliveryInput]) -> DeliveryOutput:
    """Report progress while choosing a carrier, then schedule the delivery."""
    await task.progress({"step": "choosing carrier"}, wait=False)
    return await _schedule_delivery(task)


@DeliveryAgent.revert
@simulated_revert(200)
def cancel_delivery(task: RevertTask[DeliveryInput, DeliveryOutput]) -> None:
    """Cancel the scheduled shipment."""


@simulated(400)
def _schedule_delivery(task: Task[DeliveryInput]) -> DeliveryOutput:
    data = task.input
    backordered = data.inStock is False
    days = (2 + _stable("days", data.orderId) % 3) + (7 if backordered else 0)
    eta = dt.datetime.now(dt.UTC).date() + dt.timedelta(days=days)
    return DeliveryOutput(
        deliveryTracking=f"DLV{_stable('dlv', data.orderId) % 1000:03d}",
        estimatedDelivery=eta.isoformat(),
        deliveryStatus="backordered" if backordered else "scheduled",
        carrier=("FastShip", "ParcelGo", "EcoPost")[_stable("carrier", data.orderId) % 3],
    )


NotificationService = Service(
    name="NotificationService",
    description=(
        "Notify the customer about their new order: send an email / SMS notification with "
        "the order and payment status."
    ),
    input=NotificationInput,
    output=NotificationOutput,
    version="2",
    examples=[
        "email the customer",
        "text the customer an update",
        "let the customer know",
        "confirm a new order to the customer",
    ],
)


@NotificationService.handler
@simulated(150)
def notify(task: Task[NotificationInput]) -> NotificationOutput:
    data = task.input
    declined = data.paymentStatus is not None and data.paymentStatus != "confirmed"
    return NotificationOutput(
        notificationStatus="sent",
        notificationId=f"NTF{_stable('ntf', task.idempotency_key) % 100_000:05d}",
        orderStatus="payment_failed" if declined else "processed",
    )


FraudCheck = Service(
    name="FraudCheck",
    description=(
        "Fraud check: assess whether an order or refund request is fraudulent and return "
        "its fraud risk score."
    ),
    input=FraudInput,
    output=FraudOutput,
    version="2",
    examples=[
        "is this order legit",
        "screen the order for fraud",
        "assess the fraud risk",
    ],
    kind="agent",
)


@FraudCheck.handler
@simulated(350)
def assess(task: Task[FraudInput]) -> FraudOutput:
    data = task.input
    if data.orderId.upper().startswith("FRAUD"):
        score = 0.93
    else:
        score = round((_stable("fraud", data.orderId) % 200) / 1000, 3)
    risk: Literal["low", "medium", "high"] = (
        "high" if score >= 0.7 else "medium" if score >= 0.4 else "low"
    )
    return FraudOutput(fraudRisk=risk, fraudScore=score, fraudCleared=risk == "low")


RefundService = Service(
    name="RefundService",
    description=(
        "Process refund request: refund an order's payment once the fraud check cleared it."
    ),
    input=RefundInput,
    output=RefundOutput,
    revertible=False,
    version="2",
    examples=[
        "give the customer their money back",
        "reimburse the order",
    ],
)


@RefundService.handler
@simulated(300)
def refund(task: Task[RefundInput]) -> RefundOutput:
    data = task.input
    amount = data.amount if data.amount is not None else _price(data.orderId)
    if not data.fraudCleared:
        return RefundOutput(refundStatus="rejected", refundId=None, refundAmount=0.0)
    return RefundOutput(
        refundStatus="refunded",
        refundId=f"RFD{_stable('rfd', task.idempotency_key) % 100_000:05d}",
        refundAmount=round(amount, 2),
    )


SERVICES: dict[str, Service[Any, Any]] = {
    s.name: s
    for s in (
        PaymentService,
        InventoryService,
        DeliveryAgent,
        NotificationService,
        FraudCheck,
        RefundService,
    )
}
"""Every example service by name."""


# --- entry point ---------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    """``orra-examples [--only NAME ...]``: serve the example services until SIGTERM."""
    parser = argparse.ArgumentParser(
        prog="orra-examples",
        description="Run Orra's example e-commerce services against ORRA_NATS_URL.",
    )
    parser.add_argument(
        "--only",
        action="append",
        choices=sorted(SERVICES),
        metavar="NAME",
        help=f"run only this service (repeatable); one of {', '.join(sorted(SERVICES))}",
    )
    parser.add_argument("--nats-url", help="broker URL (default: ORRA_NATS_URL)")
    parser.add_argument("--namespace", help="Orra namespace (default: ORRA_NAMESPACE)")
    parser.add_argument("--concurrency", type=int, default=64, help="tasks at once per service")
    args = parser.parse_args(argv)
    names = args.only or list(SERVICES)
    options: dict[str, Any] = {"concurrency": args.concurrency}
    if os.environ.get("ORRA_EXAMPLES_ACK_WAIT_S"):
        options["ack_wait_s"] = float(os.environ["ORRA_EXAMPLES_ACK_WAIT_S"])
    if args.nats_url:
        options["nats_url"] = args.nats_url
    if args.namespace is not None:
        options["namespace"] = args.namespace
    run_services(*(SERVICES[n] for n in names), **options)


def run() -> None:
    """Serve every example service in this process (the ``orra-examples`` command)."""
    main()
