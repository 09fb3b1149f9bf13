"""The coverage rules of the shared gate (orra_planner.coverage) and the partial policy."""

from __future__ import annotations

import dataclasses

import msgspec

from orra_events import Plan, PlanTask, UncoveredPart
from orra_planner import IssueCode
from orra_planner.coverage import check_coverage, in_action
from orra_planner.strategy import Planned, PlanRejected, finalize
from tests.planner.catalog import catalog_of, data, ecommerce, request, task

ACTION = "Charge the order and reserve stock"
CATALOG = catalog_of(ecommerce())


def served(task_id: str, service: str, serves: str | None, **inputs: object) -> PlanTask:
    return msgspec.structs.replace(task(task_id, service, **inputs), serves=serves)


def codes(plan: Plan, action: str = ACTION) -> list[IssueCode]:
    return [issue.code for issue in check_coverage(plan, action, data())]


PAY = served("payment", "PaymentService", "Charge the order", orderId="O", amount=1.0)
STOCK = served("inventory", "InventoryService", "reserve stock", productId="P")
PARTS = ["Charge the order", "reserve stock"]


def test_a_plan_that_accounts_for_every_part_is_consistent() -> None:
    plan = Plan(tasks=[PAY, STOCK], parallel_groups=[["payment", "inventory"]], parts=PARTS)
    assert codes(plan) == []


def test_each_inconsistency_has_its_own_code() -> None:
    groups = [["payment", "inventory"]]
    assert codes(Plan(tasks=[PAY, STOCK], parallel_groups=groups)) == [IssueCode.NO_PARTS]
    reworded = Plan(
        tasks=[msgspec.structs.replace(PAY, serves="take a payment"), STOCK],
        parallel_groups=groups,
        parts=["take a payment", "reserve stock"],
    )
    assert IssueCode.PART_NOT_IN_ACTION in codes(reworded)
    assert IssueCode.PART_MISSING in codes(reworded)  # "Charge the order" went missing
    dropped = Plan(tasks=[PAY], parallel_groups=[["payment"]], parts=["Charge the order"])
    assert codes(dropped) == [IssueCode.PART_MISSING]
    stray = served("fraud", "FraudCheck", None, orderId="O")
    assert codes(
        Plan(tasks=[PAY, STOCK, stray], parallel_groups=[["payment", "inventory", "fraud"]],
             parts=PARTS)
    ) == [IssueCode.SERVES_NOTHING]  # fmt: skip
    unknown = msgspec.structs.replace(STOCK, serves="ship it")
    assert codes(Plan(tasks=[PAY, unknown], parallel_groups=groups, parts=PARTS)) == [
        IssueCode.UNKNOWN_PART,
        IssueCode.PART_NOT_ACCOUNTED,
    ]
    both = Plan(
        tasks=[PAY, STOCK],
        parallel_groups=groups,
        parts=PARTS,
        uncovered=[UncoveredPart(part="reserve stock", reason="no")],
    )
    assert codes(both) == [IssueCode.UNCOVERED_SERVED]
    assert codes(
        Plan(tasks=[PAY, STOCK], parallel_groups=groups, parts=[*PARTS, "Charge the order"])
    ) == [IssueCode.DUPLICATE_PART]


def test_a_supplier_that_serves_no_part_is_fine_when_its_output_is_used() -> None:
    stock = served("inventory", "InventoryService", None, productId="P")
    delivery = served(
        "delivery", "DeliveryAgent", "Arrange delivery", orderId="O", inStock="$inventory.inStock"
    )
    plan = Plan(tasks=[stock, delivery], parallel_groups=[], parts=["Arrange delivery"])
    assert codes(plan, "Arrange delivery") == []


def test_parts_are_the_users_words_compared_loosely() -> None:
    assert in_action("charge  THE order", "Charge the order, and reserve stock")
    assert in_action("Charge the order … reserve stock", ACTION)
    assert not in_action("charge the card", ACTION)


def test_finalize_refuses_uncovered_parts_unless_partial_plans_are_allowed() -> None:
    action = "Charge the order and translate the invoice"
    gap = UncoveredPart(part="translate the invoice", reason="nothing can translate")
    plan = Plan(
        tasks=[PAY],
        parallel_groups=[["payment"]],
        parts=["Charge the order", "translate the invoice"],
        uncovered=[gap],
    )
    strict = request(action, CATALOG, orderId="O", amount=1.0)
    refused = finalize(Planned(plan=plan, planner="x"), strict)
    assert isinstance(refused, PlanRejected)
    assert refused.status == "not_actionable"
    assert refused.reasons[0] == "nothing can translate"
    assert refused.uncovered == (gap,)
    allowed = finalize(
        Planned(plan=plan, planner="x"), dataclasses.replace(strict, allow_partial=True)
    )
    assert isinstance(allowed, Planned)
    assert allowed.plan.uncovered == [gap]
    assert allowed.plan.parts == ["Charge the order", "translate the invoice"]
