"""The plan grammar (orra_events.plan): references, escaping, dependencies, checks, resolve."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orra_events import Plan, PlanTask
from orra_events.plan import (
    REFERENCE_JSON_PATTERN,
    IssueKind,
    Reference,
    UnresolvedReference,
    analyse_plan,
    check_plan,
    check_tasks,
    dependencies,
    dependency_levels,
    escape,
    find_references,
    parallel_groups,
    parse_reference,
    resolve,
    unescape,
)
from tests.events.strategies import json_values


def task(task_id: str, **inputs: Any) -> PlanTask:
    return PlanTask(id=task_id, service="S", input=inputs)


def kinds(issues: list[Any]) -> list[IssueKind]:
    return [issue.kind for issue in issues]


# --- the grammar ---------------------------------------------------------------------------


def test_a_dotted_path_with_a_list_index_is_one_reference() -> None:
    ref = parse_reference("$payment.items.0.id")
    assert ref == Reference("payment", ("items", 0, "id"))
    assert ref is not None
    assert ref.field == "items"
    assert str(ref) == "$payment.items.0.id"


@pytest.mark.parametrize(
    ("text", "task_id", "path"),
    [
        ("$payment.status", "payment", ("status",)),
        ("$_t-1.a_b-c.10.x", "_t-1", ("a_b-c", 10, "x")),
        ("$p.items.0.1.2", "p", ("items", 0, 1, 2)),
        ("$" + "a" * 64 + ".x", "a" * 64, ("x",)),
    ],
)
def test_references(text: str, task_id: str, path: tuple[Any, ...]) -> None:
    assert parse_reference(text) == Reference(task_id, path)


@pytest.mark.parametrize(
    "literal",
    [
        "$5.00",  # a price: a task id never starts with a digit
        "$ 10",
        "$payment",  # no field
        "pay $payment.status",  # not the whole string
        "$payment.status and more",
        "payment.status",
        "$$payment.status",  # escaped
        "$payment.items[0].id",  # brackets are not the grammar
        "$payment.0",  # the first segment is an output field, never an index
        "$payment.items.01",  # no leading zero
        "$payment..status",
        "$payment.status.",
        "$payment.status\n",
        "$" + "a" * 65 + ".x",  # a task id has at most 64 characters
        "",
        "$",
    ],
)
def test_literals(literal: str) -> None:
    assert parse_reference(literal) is None
    assert resolve(literal, {"payment": {"status": "ok", "items": [{"id": 1}]}}) == unescape(
        literal
    )


@pytest.mark.parametrize("value", [None, 3, 2.5, True, ["$a.b"], {"x": "$a.b"}])
def test_only_strings_are_references(value: Any) -> None:
    assert parse_reference(value) is None


def test_the_json_schema_pattern_is_the_grammar() -> None:
    pattern = re.compile(REFERENCE_JSON_PATTERN)
    for text in ("$payment.items.0.id", "$a.b", "$5.00", "$payment.items[0].id", "$p.0"):
        assert (pattern.fullmatch(text) is not None) == (parse_reference(text) is not None)


_names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_-]{0,8}", fullmatch=True)
_segments = st.one_of(_names, st.integers(min_value=0, max_value=10**6))


@given(st.from_regex(r"[A-Za-z_][A-Za-z0-9_-]{0,63}", fullmatch=True), _names, st.lists(_segments))
def test_a_reference_round_trips_through_its_text(
    task_id: str, field: str, rest: list[Any]
) -> None:
    ref = Reference(task_id, (field, *rest))
    assert parse_reference(str(ref)) == ref


# --- escaping ------------------------------------------------------------------------------


def test_escape_only_what_could_be_read_as_a_reference() -> None:
    assert escape("$BRK.B") == "$$BRK.B"
    assert escape("$$5") == "$$$5"
    assert escape("$payment.items[0]") == "$$payment.items[0]"
    for kept in ("$5.00", "$ 10", "$AAPL", "plain", "", 5, None):
        assert escape(kept) == kept
    assert escape({"a": ["$x.y", {"b": "$5"}]}) == {"a": ["$$x.y", {"b": "$5"}]}


_dollar_text = st.text(alphabet="$ab._0[] ", max_size=12)
_values = st.recursive(
    st.none() | st.booleans() | st.integers() | _dollar_text | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=8,
)


@settings(max_examples=300)
@given(st.one_of(_values, json_values))
def test_an_escaped_value_is_a_literal_that_resolves_to_itself(value: Any) -> None:
    escaped = escape(value)
    assert list(find_references(escaped)) == []
    assert check_tasks([task("payment", data=escaped), task("t", x=escaped)]) == []
    assert resolve(escaped, {"payment": {"x": 1}}) == value
    assert unescape(escaped) == value


# --- finding references and dependencies ---------------------------------------------------


def test_find_references_searches_lists_and_objects_with_locations() -> None:
    value = {"a": "$x.one", "b": ["lit", {"c": "$y.two.0"}], "d": "$z.three and more"}
    found = [(where, str(ref)) for where, ref in find_references(value)]
    assert found == [("a", "$x.one"), ("b[1].c", "$y.two.0")]


def test_dependencies_in_plan_order_without_unknown_or_self() -> None:
    tasks = [
        task("a"),
        task("b", x=["$a.v"]),
        task("c", x={"y": "$b.w.0.k"}, z="$a.v", me="$c.q", ghost="$nope.q"),
    ]
    assert dependencies(tasks) == {"a": [], "b": ["a"], "c": ["a", "b"]}


def test_parallel_groups_are_dependency_levels_in_plan_order() -> None:
    tasks = [
        task("payment", orderId="O1"),
        task("inventory", productId="P1"),
        task("delivery", inStock="$inventory.inStock"),
        task("notify", status={"nested": ["$payment.paymentStatus"]}),
        task("summary", tracking="$delivery.tracking", note="$notify.status"),
    ]
    assert parallel_groups(tasks) == [["payment", "inventory"], ["delivery", "notify"], ["summary"]]
    assert parallel_groups([task("a"), task("b"), task("c")]) == [["a", "b", "c"]]


def test_the_seed_bug_a_dotted_path_orders_the_tasks() -> None:
    tasks = [task("payment", orderId="O1"), task("lookup", productId="$payment.items.0.id")]
    assert parallel_groups(tasks) == [["payment"], ["lookup"]]
    assert check_tasks(tasks) == []
    groups = parallel_groups(tasks)
    assert check_plan(Plan(tasks=tasks, parallel_groups=groups), exact_groups=True) == []
    # what the planner used to produce: both in one group, which cannot run
    same_group = check_plan(Plan(tasks=tasks, parallel_groups=[["payment", "lookup"]]))
    assert kinds(same_group) == [IssueKind.FORWARD_REFERENCE]


def test_dependency_levels_report_cycles() -> None:
    levels, blocked = dependency_levels({"a": {"b"}, "b": {"a"}, "c": set(), "d": {"a"}})
    assert levels == [["c"]]
    assert blocked == ["a", "b", "d"]


# --- structural checks ---------------------------------------------------------------------


def test_check_tasks_reports_each_kind_with_task_and_location() -> None:
    tasks = [
        task("a", x="$b.y"),  # forward (and a cycle with b)
        task("b", y="$a.x"),
        task("a", z=1),  # duplicate
        task("9lives"),
        task("c", me={"k": ["$c.v"]}, ghost="$nope.v", bad="$a.items[0]"),
    ]
    issues = check_tasks(tasks)
    assert kinds(issues) == [
        IssueKind.DUPLICATE_TASK_ID,
        IssueKind.BAD_TASK_ID,
        IssueKind.FORWARD_REFERENCE,
        IssueKind.SELF_REFERENCE,
        IssueKind.UNKNOWN_REFERENCE,
        IssueKind.MALFORMED_REFERENCE,
        IssueKind.CYCLE,
    ]
    by_kind = {i.kind: i for i in issues}
    forward = by_kind[IssueKind.FORWARD_REFERENCE]
    assert (forward.task, forward.field) == ("a", "x")
    assert "later task" in forward.message
    assert by_kind[IssueKind.SELF_REFERENCE].field == "me.k[0]"
    malformed = by_kind[IssueKind.MALFORMED_REFERENCE]
    assert "$payment.items.0.id" in malformed.message
    assert "did you mean $a.items.0?" in malformed.message
    assert "$$" in malformed.message
    assert str(by_kind[IssueKind.CYCLE]).startswith("cycle: tasks 'a', 'b'")


def test_a_literal_that_only_starts_with_dollar_is_fine() -> None:
    tasks = [task("payment"), task("t", price="$5.00", note="$ 10", tag="$payment", x="$$a.b")]
    assert check_tasks(tasks) == []
    assert dependencies(tasks)["t"] == []


def test_a_near_miss_of_an_unknown_task_is_a_literal() -> None:
    assert check_tasks([task("t", x="$BRK[B]")]) == []


@pytest.mark.parametrize(
    ("groups", "message"),
    [
        ([["a"]], "tasks in no parallel group: b"),
        ([["a"], ["b"], ["c"]], "parallel group 3 names unknown task 'c'"),
        ([["a"], ["b", "a"]], "task 'a' is in more than one parallel group"),
        ([["a", "b"]], "refers to $a.v, which is not in an earlier parallel group"),
    ],
)
def test_check_plan_groups(groups: list[list[str]], message: str) -> None:
    plan = Plan(tasks=[task("a"), task("b", x="$a.v")], parallel_groups=groups)
    issues = check_plan(plan)
    assert [i.message for i in issues if message in i.message], issues


def test_coarser_groups_run_but_are_not_the_levels() -> None:
    plan = Plan(
        tasks=[task("a"), task("b"), task("c", x="$a.v")], parallel_groups=[["a"], ["b"], ["c"]]
    )
    assert check_plan(plan) == []
    assert kinds(check_plan(plan, exact_groups=True)) == [IssueKind.GROUPS_NOT_LEVELS]
    analysis = analyse_plan(plan)
    assert analysis.dependencies == {"a": [], "b": [], "c": ["a"]}


def test_forward_references_in_task_order_are_fine_with_groups() -> None:
    plan = Plan(tasks=[task("b", x="$a.v"), task("a")], parallel_groups=[["a"], ["b"]])
    assert check_plan(plan, exact_groups=True) == []
    assert kinds(check_tasks(plan.tasks)) == [IssueKind.FORWARD_REFERENCE]


_LITERALS = ["$5.00", "$ 10", "$a", "$$c.d", "lit", "$ghost[0]"]
_pool = st.sampled_from(["a", "b", "pay_1", "stock-2", "_x", "items", "id", "c"])


@st.composite
def candidates(draw: st.DrawFn) -> list[PlanTask]:
    """Tasks with unique ids whose references mostly name earlier tasks (some do not)."""
    ids = draw(st.lists(_pool, min_size=1, max_size=6, unique=True))
    tasks = []
    for index, task_id in enumerate(ids):
        targets = ids[:index] or ids
        strings = st.one_of(
            st.builds(lambda t, f: f"${t}.{f}", st.sampled_from(targets), _pool),
            st.builds(lambda t: f"${t}.items.0.id", st.sampled_from(targets)),
            st.sampled_from(_LITERALS),
        )
        values = st.one_of(strings, st.lists(strings, max_size=2), st.dictionaries(_pool, strings))
        tasks.append(task(task_id, **draw(st.dictionaries(_pool, values, max_size=3))))
    return tasks


@settings(max_examples=200)
@given(candidates())
def test_a_sound_candidate_with_its_levels_is_a_sound_plan(tasks: list[PlanTask]) -> None:
    if check_tasks(tasks):
        return
    plan = Plan(tasks=tasks, parallel_groups=parallel_groups(tasks))
    analysis = analyse_plan(plan, exact_groups=True)
    assert analysis.issues == []
    assert analysis.dependencies == dependencies(tasks)
    assert sorted(t for g in plan.parallel_groups for t in g) == sorted(t.id for t in tasks)


# --- resolve -------------------------------------------------------------------------------

OUTPUTS: dict[str, Any] = {
    "payment": {"status": "ok", "items": [{"id": "P1"}, {"id": "P2", "tags": ["x"]}], "n": 3},
    "later": None,
}


def test_resolve_replaces_references_anywhere_with_their_json_values() -> None:
    value = {"a": "$payment.items.1.id", "b": ["$payment.items.0", {"c": "$payment.n"}], "d": 1}
    assert resolve(value, OUTPUTS) == {"a": "P2", "b": [{"id": "P1"}, {"c": 3}], "d": 1}
    assert resolve("$payment.items", OUTPUTS) is OUTPUTS["payment"]["items"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("$payment.missing", "task 'payment''s output has no field 'missing' (it has: items, n"),
        (
            "$payment.items.2.id",
            "'items' of task 'payment''s output has 2 element(s), so no index 2",
        ),
        ("$payment.items.0.sku", "'items.0' of task 'payment''s output has no field 'sku'"),
        ("$payment.items.name", "'items' of task 'payment''s output is a list, not an object"),
        ("$payment.status.0", "'status' of task 'payment''s output is a string, not a list"),
        ("$payment.n.x", "'n' of task 'payment''s output is a number, not an object"),
        ("$later.x", "task 'later' has not completed"),
        ("$ghost.x", "the plan has no task 'ghost'"),
    ],
)
def test_resolve_says_where_a_path_stops(text: str, message: str) -> None:
    with pytest.raises(UnresolvedReference) as caught:
        resolve({"deep": [text]}, OUTPUTS)
    assert str(caught.value).startswith(text + ": ")
    assert message in str(caught.value)


def test_resolve_keeps_the_input_unchanged() -> None:
    value = {"a": ["$payment.status"]}
    assert resolve(value, OUTPUTS) == {"a": ["ok"]}
    assert value == {"a": ["$payment.status"]}
