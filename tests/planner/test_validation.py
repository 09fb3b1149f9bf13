from __future__ import annotations

import msgspec
import pytest

from orra_events import Plan
from orra_planner import IssueCode, finalize, parse_candidate, validate_plan
from orra_planner.strategy import Planned, PlanRejected, validator_for
from tests.planner.catalog import catalog_of, data, ecommerce, registered, request, task

CATALOG = catalog_of(ecommerce())


def codes(tasks, **fields) -> list[IssueCode]:
    return [issue.code for issue in validate_plan(tasks, CATALOG, data(**fields)).issues]


def issue_of(tasks, code: IssueCode, **fields):
    found = [i for i in validate_plan(tasks, CATALOG, data(**fields)).issues if i.code == code]
    assert found, f"no {code} issue"
    return found[0]


def test_a_valid_plan_gets_its_parallel_groups() -> None:
    tasks = [
        task("payment", "PaymentService", orderId="ORD1", amount=299.99),
        task("inventory", "InventoryService", productId="P1"),
        task("delivery", "DeliveryAgent", orderId="ORD1", inStock="$inventory.inStock"),
        task(
            "notify", "NotificationService", customerId="C1", paymentStatus="$payment.paymentStatus"
        ),
    ]
    result = validate_plan(
        tasks, CATALOG, data(orderId="ORD1", amount="299.99", productId="P1", customerId="C1")
    )
    assert result.ok, result.reasons
    assert result.plan is not None
    assert result.plan.parallel_groups == [["payment", "inventory"], ["delivery", "notify"]]


def test_unknown_service() -> None:
    issue = issue_of(
        [task("ship", "ShippingService", orderId="O")], IssueCode.UNKNOWN_SERVICE, orderId="O"
    )
    assert issue.task == "ship"
    assert "ShippingService" in issue.message
    assert "PaymentService" in issue.message  # lists what is registered


def test_missing_input() -> None:
    issue = issue_of(
        [task("payment", "PaymentService", orderId="O")], IssueCode.MISSING_INPUT, orderId="O"
    )
    assert (issue.task, issue.field) == ("payment", "amount")
    assert "'payment'" in issue.message
    assert "'amount'" in issue.message


def test_unexpected_input() -> None:
    tasks = [task("inventory", "InventoryService", productId="P", colour="red")]
    issue = issue_of(tasks, IssueCode.UNEXPECTED_INPUT, productId="P", colour="red")
    assert (issue.task, issue.field) == ("inventory", "colour")


@pytest.mark.parametrize(
    ("service", "inputs", "field"),
    [
        ("PaymentService", {"orderId": "O", "amount": "lots"}, "amount"),
        ("PaymentService", {"orderId": 5, "amount": 1.5}, "orderId"),
        ("NotificationService", {"customerId": "C", "paymentStatus": 3}, "paymentStatus"),
        ("DeliveryAgent", {"orderId": "O", "inStock": "yes"}, "inStock"),
    ],
)
def test_input_type_mismatch(service: str, inputs: dict, field: str) -> None:
    tasks = [task("t", service, **inputs)]
    issue = issue_of(tasks, IssueCode.INPUT_TYPE_MISMATCH)
    assert (issue.task, issue.field) == ("t", field)


def test_nullable_and_integer_values_match_their_schema() -> None:
    tasks = [
        task("notify", "NotificationService", customerId="C", paymentStatus=None),
        task("payment", "PaymentService", orderId="O", amount=300),
    ]
    assert IssueCode.INPUT_TYPE_MISMATCH not in codes(tasks)


def test_reference_type_mismatch() -> None:
    tasks = [
        task("payment", "PaymentService", orderId="O", amount=1.0),
        task("delivery", "DeliveryAgent", orderId="O", inStock="$payment.paymentStatus"),
    ]
    issue = issue_of(tasks, IssueCode.INPUT_TYPE_MISMATCH, orderId="O")
    assert (issue.task, issue.field) == ("delivery", "inStock")
    assert "boolean" in issue.message


def test_unknown_reference() -> None:
    tasks = [task("delivery", "DeliveryAgent", orderId="O", inStock="$stock.inStock")]
    issue = issue_of(tasks, IssueCode.UNKNOWN_REFERENCE, orderId="O")
    assert (issue.task, issue.field) == ("delivery", "inStock")
    assert "'stock'" in issue.message


def test_forward_reference() -> None:
    tasks = [
        task("delivery", "DeliveryAgent", orderId="O", inStock="$inventory.inStock"),
        task("inventory", "InventoryService", productId="P"),
    ]
    result = validate_plan(tasks, CATALOG, data(orderId="O", productId="P"))
    assert [i.code for i in result.issues] == [IssueCode.FORWARD_REFERENCE]
    assert "later task" in result.issues[0].message


def test_unknown_output_field() -> None:
    tasks = [
        task("inventory", "InventoryService", productId="P"),
        task("delivery", "DeliveryAgent", orderId="O", inStock="$inventory.available"),
    ]
    issue = issue_of(tasks, IssueCode.UNKNOWN_OUTPUT_FIELD, orderId="O", productId="P")
    assert (issue.task, issue.field) == ("delivery", "inStock")
    assert "'available'" in issue.message
    assert "inStock" in issue.message  # lists what is declared


def test_cycle() -> None:
    catalog = catalog_of(
        [
            registered(
                "A",
                "a",
                {"type": "object", "properties": {"x": {}}},
                {"type": "object", "properties": {"y": {}}},
            ),
            registered(
                "B",
                "b",
                {"type": "object", "properties": {"y": {}}},
                {"type": "object", "properties": {"x": {}}},
            ),
        ]
    )
    tasks = [task("a", "A", x="$b.x"), task("b", "B", y="$a.y")]
    result = validate_plan(tasks, catalog, ())
    assert IssueCode.CYCLE in result.codes()
    cycle = next(i for i in result.issues if i.code == IssueCode.CYCLE)
    assert "'a'" in cycle.message
    assert "'b'" in cycle.message


def test_self_reference() -> None:
    catalog = catalog_of(
        [
            registered(
                "A",
                "a",
                {"type": "object", "properties": {"x": {}}},
                {"type": "object", "properties": {"x": {}}},
            )
        ]
    )
    result = validate_plan([task("a", "A", x="$a.x")], catalog, ())
    assert [i.code for i in result.issues] == [IssueCode.SELF_REFERENCE]
    assert "the task itself" in result.issues[0].message


def test_unused_data() -> None:
    tasks = [task("inventory", "InventoryService", productId="P")]
    issue = issue_of(tasks, IssueCode.UNUSED_DATA, productId="P", customerId="C1", items=[1])
    assert issue.field == "customerId"
    assert "NotificationService" in issue.message
    result = validate_plan(tasks, CATALOG, data(productId="P", items=[1]))
    assert "no registered service accepts" in result.issues[0].message


def test_data_used_after_conversion_or_nested_counts_as_used() -> None:
    tasks = [task("payment", "PaymentService", orderId="O", amount=299.99)]
    assert codes(tasks, orderId="O", amount="299.99") == []


def test_duplicate_task_id() -> None:
    tasks = [
        task("inventory", "InventoryService", productId="P"),
        task("inventory", "InventoryService", productId="P"),
    ]
    issue = issue_of(tasks, IssueCode.DUPLICATE_TASK_ID, productId="P")
    assert issue.task == "inventory"


@pytest.mark.parametrize("bad", ["", "9lives", "has space", "dot.ted", "x" * 65, "$ref"])
def test_bad_task_id(bad: str) -> None:
    issue = issue_of(
        [task(bad, "InventoryService", productId="P")], IssueCode.BAD_TASK_ID, productId="P"
    )
    assert issue.task == bad


def test_empty_plan() -> None:
    assert codes([]) == [IssueCode.EMPTY_PLAN]


def test_every_issue_is_collected_not_only_the_first() -> None:
    tasks = [
        task("1bad", "Nope"),
        task("payment", "PaymentService", orderId="O", tip=1),
        task("delivery", "DeliveryAgent", orderId="O", inStock="$ghost.x"),
    ]
    found = set(codes(tasks, orderId="O", extra="E"))
    assert found >= {
        IssueCode.BAD_TASK_ID,
        IssueCode.UNKNOWN_SERVICE,
        IssueCode.MISSING_INPUT,
        IssueCode.UNEXPECTED_INPUT,
        IssueCode.UNKNOWN_REFERENCE,
        IssueCode.UNUSED_DATA,
    }


def test_reasons_are_code_prefixed_strings() -> None:
    result = validate_plan([task("x", "Nope")], CATALOG, ())
    assert result.reasons[0].startswith("unknown_service: task 'x'")


def test_parse_candidate_reads_json_shapes_and_reports_malformed_parts() -> None:
    raw = {
        "tasks": [
            {"id": "inventory", "service": "InventoryService", "input": {"productId": "P"}},
            {"id": 3, "service": "X"},
            "nope",
        ],
        "parallel_groups": [["whatever"]],
    }
    tasks, issues = parse_candidate(raw)
    assert [t.id for t in tasks] == ["inventory"]
    assert [i.code for i in issues] == [IssueCode.MALFORMED_PLAN, IssueCode.MALFORMED_PLAN]
    assert parse_candidate("text")[1][0].code == IssueCode.MALFORMED_PLAN


def test_finalize_revalidates_and_recomputes_groups() -> None:
    req = request("reserve stock and schedule delivery", CATALOG, productId="P", orderId="O")
    tasks = [
        msgspec.structs.replace(
            task("inventory", "InventoryService", productId="P"), serves="reserve stock"
        ),
        msgspec.structs.replace(
            task("delivery", "DeliveryAgent", orderId="O", inStock="$inventory.inStock"),
            serves="schedule delivery",
        ),
    ]
    claimed = Planned(
        plan=Plan(
            tasks=tasks,
            parallel_groups=[["inventory", "delivery"]],
            parts=["reserve stock", "schedule delivery"],
        ),
        planner="llm",
    )
    final = finalize(claimed, req)
    assert isinstance(final, Planned)
    assert final.plan.parallel_groups == [["inventory"], ["delivery"]]
    assert final.plan.parts == ["reserve stock", "schedule delivery"]
    assert [t.serves for t in final.plan.tasks] == ["reserve stock", "schedule delivery"]
    bad = Planned(
        plan=Plan(tasks=[task("x", "Nope")], parallel_groups=[["x"]]), planner="llm", attempts=2
    )
    rejected = finalize(bad, req)
    assert isinstance(rejected, PlanRejected)
    assert rejected.status == "invalid"
    assert rejected.attempts == 2
    assert validator_for(req)(bad.plan) == list(rejected.reasons)
