"""References checked against output schemas: dotted paths, list indexes, open schemas."""

from __future__ import annotations

from typing import Any

import pytest

from orra_events import PlanTask
from orra_planner import IssueCode, OfflinePlanner, Planned, validate_plan
from orra_planner.outputs import follow
from tests.planner.catalog import catalog_of, data, obj, optional, registered, request, string, task

ITEM = obj({"id": string(), "qty": {"type": "integer"}})
ORDER_OUT = {
    "type": "object",
    "properties": {
        "status": string(),
        "items": {"type": "array", "items": {"$ref": "#/$defs/Item"}},
        "customer": optional({"$ref": "#/$defs/Customer"}),
        "extra": {"type": "object"},
        "pair": {"type": "array", "prefixItems": [string(), {"type": "integer"}], "items": False},
        "anything": {},
    },
    "required": ["status", "items"],
    "$defs": {"Item": ITEM, "Customer": obj({"name": string(), "tier": {"type": "integer"}})},
}
CATALOG = catalog_of(
    [
        registered("OrderService", "Places an order", obj({"orderId": string()}), ORDER_OUT),
        registered(
            "LookupService",
            "Looks a product up",
            obj({"productId": string(), "count": optional({"type": "integer"})}, ["productId"]),
            obj({"name": string()}),
        ),
    ]
)


def issues(product: Any, **more: Any) -> list[Any]:
    tasks = [
        task("order", "OrderService", orderId="O1"),
        task("lookup", "LookupService", productId=product, **more),
    ]
    return list(validate_plan(tasks, CATALOG, data(orderId="O1")).issues)


@pytest.mark.parametrize(
    "path",
    [
        ("status",),
        ("items", 0, "id"),
        ("items", 12, "id"),  # a list's length is not in its schema
        ("customer", "name"),  # Customer | None
        ("pair", 0),
        ("extra", "whatever", "deep"),  # an open object: unchecked
        ("anything", 3, "x"),  # an empty schema: unchecked
    ],
)
def test_paths_the_schema_allows(path: tuple[Any, ...]) -> None:
    assert follow(ORDER_OUT, path).status in ("found", "open")


def test_found_paths_carry_the_type_of_their_value() -> None:
    assert follow(ORDER_OUT, ("items", 0, "qty")).types == frozenset({"integer"})
    assert follow(ORDER_OUT, ("customer", "tier")).types == frozenset({"integer"})
    assert follow(ORDER_OUT, ("pair", 1)).types == frozenset({"integer"})
    assert follow(ORDER_OUT, ("extra", "x")).status == "open"


@pytest.mark.parametrize(
    ("path", "problem"),
    [
        (("total",), "has no field 'total' (declared: anything, customer, extra, items, pair,"),
        (("items", 0, "sku"), "has no field 'sku' at 'items.0' (declared: id, qty)"),
        (("items", "id"), "has no field 'id' at 'items' (it is a list)"),
        (("status", 0), "has no list at 'status' to index with 0 (it is a string)"),
        (("status", "code"), "has no field 'code' at 'status' (it is a string)"),
        (("pair", 2), "has no list at 'pair' to index with 2 (it is a list of 2)"),
    ],
)
def test_paths_the_schema_refuses(path: tuple[Any, ...], problem: str) -> None:
    followed = follow(ORDER_OUT, path)
    assert followed.status == "missing"
    assert problem in followed.problem


def test_a_dotted_path_reference_is_a_valid_dependency() -> None:
    tasks = [
        task("order", "OrderService", orderId="O1"),
        task("lookup", "LookupService", productId="$order.items.0.id", count="$order.items.0.qty"),
    ]
    result = validate_plan(tasks, CATALOG, data(orderId="O1"))
    assert result.ok, result.reasons
    assert result.plan is not None
    assert result.plan.parallel_groups == [["order"], ["lookup"]]


def test_a_missing_nested_field_is_an_unknown_output_field() -> None:
    (issue,) = issues("$order.items.0.sku")
    assert issue.code is IssueCode.UNKNOWN_OUTPUT_FIELD
    assert (issue.task, issue.field) == ("lookup", "productId")
    assert "$order.items.0.sku" in issue.message
    assert "OrderService's output schema has no field 'sku' at 'items.0'" in issue.message


def test_the_type_at_the_end_of_the_path_must_suit_the_input() -> None:
    (issue,) = issues("$order.items.0.qty")
    assert issue.code is IssueCode.INPUT_TYPE_MISMATCH
    assert "produces integer there but LookupService expects string" in issue.message
    assert issues("$order.customer.name") == []
    assert issues("$order.extra.anything.0") == []  # open: its type is unknown


def test_a_mistyped_reference_is_refused_not_sent_as_text() -> None:
    (issue,) = issues("$order.items[0].id")
    assert issue.code is IssueCode.MALFORMED_REFERENCE
    assert "$order.items.0.id" in issue.message


def test_literals_that_start_with_dollar_are_values() -> None:
    assert issues("$5.00") == []
    assert issues("$$order.items.0.id") == []


def test_the_offline_planner_escapes_data_that_looks_like_a_reference() -> None:
    catalog = catalog_of(
        [
            registered(
                "QuoteService",
                "Quotes a stock ticker",
                obj({"ticker": string()}),
                obj({"price": {"type": "number"}}),
            )
        ]
    )
    outcome = OfflinePlanner().plan_now(request("Quote the stock ticker", catalog, ticker="$BRK.B"))
    assert isinstance(outcome, Planned), outcome
    (quote,) = outcome.plan.tasks
    assert quote.input == {"ticker": "$$BRK.B"}


def test_an_unescaped_reference_shaped_datum_is_an_unknown_reference() -> None:
    catalog = catalog_of(
        [registered("QuoteService", "Quotes", obj({"ticker": string()}), obj({"p": string()}))]
    )
    tasks = [PlanTask(id="quote", service="QuoteService", input={"ticker": "$BRK.B"})]
    result = validate_plan(tasks, catalog, data(ticker="$BRK.B"))
    assert IssueCode.UNKNOWN_REFERENCE in result.codes()


def test_escaped_data_in_a_list_counts_as_used() -> None:
    catalog = catalog_of(
        [
            registered(
                "QuoteService",
                "Quotes stock tickers",
                obj({"tickers": {"type": "array", "items": string()}}),
                obj({"prices": {"type": "array", "items": {"type": "number"}}}),
            )
        ]
    )
    tickers = ["$BRK.B", "$AAPL"]
    outcome = OfflinePlanner().plan_now(
        request("Quote the stock tickers", catalog, tickers=tickers)
    )
    assert isinstance(outcome, Planned), outcome
    assert outcome.plan.tasks[0].input == {"tickers": ["$$BRK.B", "$AAPL"]}
