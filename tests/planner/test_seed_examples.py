"""The offline planner on the seed's actions, with the real example services' schemas."""

from __future__ import annotations

from typing import Any

import pytest

import orra_examples.ecommerce as ecommerce
from orra_events import DataField
from orra_planner.offline import OfflinePlanner
from orra_planner.registry import ServiceCatalog, ServiceSpec
from orra_planner.strategy import Planned, PlanRejected, PlanRequest, finalize
from orra_sdk import Service


def _catalog() -> ServiceCatalog:
    specs = [
        ServiceSpec(
            name=svc.name,
            description=svc.description,
            input_schema=svc.input_model.model_json_schema(),
            output_schema=svc.output_model.model_json_schema(),
            examples=tuple(svc.examples),
        )
        for svc in vars(ecommerce).values()
        if isinstance(svc, Service)
    ]
    assert len(specs) >= 5
    return ServiceCatalog.of("default", specs)


async def _plan(action: str, **data: Any) -> Planned | PlanRejected:
    request = PlanRequest(
        "o_seed", action, tuple(DataField(k, v) for k, v in data.items()), _catalog()
    )
    return finalize(await OfflinePlanner().plan(request), request)


def _groups(outcome: Planned | PlanRejected) -> list[set[str]]:
    assert isinstance(outcome, Planned), outcome
    return [set(group) for group in outcome.plan.parallel_groups]


def _inputs(outcome: Planned | PlanRejected) -> dict[str, dict[str, Any]]:
    assert isinstance(outcome, Planned), outcome
    return {t.id: t.input for t in outcome.plan.tasks}


async def test_new_order_runs_payment_and_inventory_then_delivery_and_notify() -> None:
    outcome = await _plan(
        "Process new order and arrange optimal delivery",
        orderId="ORD123",
        customerId="CUST456",
        items=[{"id": "PROD789", "quantity": 2}],
    )
    assert _groups(outcome) == [{"payment", "inventory"}, {"delivery", "notification"}]
    inputs = _inputs(outcome)
    assert inputs["delivery"]["inStock"] == "$inventory.inStock"
    assert inputs["notification"]["paymentStatus"] == "$payment.paymentStatus"
    assert inputs["inventory"]["items"] == [{"id": "PROD789", "quantity": 2}]


async def test_payment_and_inventory_run_in_parallel() -> None:
    outcome = await _plan(
        "Process order payment and update inventory",
        orderId="ORD123",
        amount="299.99",
        productId="PROD456",
    )
    assert _groups(outcome) == [{"payment", "inventory"}]
    assert _inputs(outcome)["payment"]["amount"] == 299.99  # converted to the schema's number


async def test_estimate_delivery_and_notify_customer_selects_only_those_two() -> None:
    outcome = await _plan(
        "Estimate order delivery and notify customer", orderId="ORD456", customerId="ABC123"
    )
    assert _groups(outcome) == [{"delivery", "notification"}]


async def test_refund_runs_after_the_fraud_check() -> None:
    outcome = await _plan("Process refund request ensuring it is not fraudulent", orderId="ORD789")
    assert _groups(outcome) == [{"fraudCheck"}, {"refund"}]
    assert _inputs(outcome)["refund"]["fraudCleared"] == "$fraudCheck.fraudCleared"


@pytest.mark.parametrize("action", ["reconcile last nights invoices", "bake a cake"])
async def test_actions_no_service_serves_are_not_actionable(action: str) -> None:
    outcome = await _plan(action)
    assert isinstance(outcome, PlanRejected)
    assert outcome.status == "not_actionable"
