from __future__ import annotations

from orra_planner.graph import (
    dependencies,
    dependency_levels,
    find_references,
    parallel_groups,
    parse_reference,
)
from tests.planner.catalog import task


def test_parse_reference_accepts_exact_references_only() -> None:
    ref = parse_reference("$payment.paymentStatus")
    assert ref is not None
    assert (ref.task, ref.field) == ("payment", "paymentStatus")
    for literal in ("$5.00", "pay $payment.status", "$payment", "payment.status", 3, None):
        assert parse_reference(literal) is None


def test_find_references_recurses_into_lists_and_objects() -> None:
    value = {"a": "$x.one", "b": ["lit", {"c": "$y.two"}], "d": "$z.three and more"}
    found = [(r.task, r.field, r.path) for r in find_references(value)]
    assert found == [("x", "one", "a"), ("y", "two", "b[1].c")]


def test_parallel_groups_are_dependency_levels_in_plan_order() -> None:
    tasks = [
        task("payment", "P", orderId="O1"),
        task("inventory", "I", productId="P1"),
        task("delivery", "D", inStock="$inventory.inStock"),
        task("notify", "N", status={"nested": ["$payment.paymentStatus"]}),
        task("summary", "S", tracking="$delivery.tracking", note="$notify.status"),
    ]
    assert parallel_groups(tasks) == [["payment", "inventory"], ["delivery", "notify"], ["summary"]]


def test_independent_tasks_form_one_group() -> None:
    tasks = [task("a", "A"), task("b", "B"), task("c", "C")]
    assert parallel_groups(tasks) == [["a", "b", "c"]]


def test_dependencies_ignore_unknown_tasks_and_levels_report_cycles() -> None:
    tasks = [task("a", "A", x="$b.y"), task("b", "B", y="$a.x"), task("c", "C", z="$nope.q")]
    deps = dependencies(tasks)
    assert deps == {"a": {"b"}, "b": {"a"}, "c": set()}
    levels, blocked = dependency_levels(deps)
    assert levels == [["c"]]
    assert blocked == ["a", "b"]
