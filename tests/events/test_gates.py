"""The approval-gate grammar (:mod:`orra_events.gates`), and that both sides agree on it.

The SDK validates a condition at registration (``Service(approval_when=...)``), the registry
followers refuse a registration whose condition does not parse, and the dispatcher decides
with :func:`~orra_events.gates.needs_approval`. Generated conditions and inputs show that
they agree with each other and with a reference evaluator written here.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from orra_events import ServiceRegistered
from orra_events.gates import (
    And,
    Compare,
    Gate,
    GateEvaluationError,
    GateSyntaxError,
    Literal_,
    Not,
    Or,
    Path,
    evaluate,
    format_gate,
    needs_approval,
    parse_gate,
)
from orra_events.registrations import registration_problem
from orra_sdk import Service, ServiceDefinitionError

FIELDS = ("amount", "tier", "flag", "items")


class _In(BaseModel):
    amount: float = 0


def sdk_accepts(condition: str) -> bool:
    try:
        Service(name="Gated", description="d", input=_In, output=_In, approval_when=condition)
    except ServiceDefinitionError:
        return False
    return True


def follower_accepts(condition: str) -> bool:
    event = ServiceRegistered(
        event_id="reg:Gated:x",
        service="Gated",
        description="d",
        input_schema={},
        output_schema={},
        approval_when=condition,
    )
    return registration_problem(event) is None


# --- a reference evaluator, independent of the module's ---------------------------------------


class Undefined(Exception):
    pass


def ref_value(node: Gate, data: dict[str, Any]) -> Any:
    if isinstance(node, Literal_):
        return node.value
    if isinstance(node, Path):
        value: Any = data
        for part in node.parts:
            if isinstance(part, int):
                value = value[part] if isinstance(value, list) and part < len(value) else None
            else:
                value = value.get(part) if isinstance(value, dict) else None
        return value
    if isinstance(node, Not):
        return not ref_bool(node.operand, data)
    if isinstance(node, And):
        return ref_bool(node.left, data) and ref_bool(node.right, data)
    if isinstance(node, Or):
        return ref_bool(node.left, data) or ref_bool(node.right, data)
    assert isinstance(node, Compare)
    a, b = ref_value(node.left, data), ref_value(node.right, data)

    def num(x: Any) -> bool:
        return isinstance(x, int | float) and not isinstance(x, bool)

    if node.op in ("==", "!="):
        same = a == b if (num(a) and num(b)) or type(a) is type(b) else False
        return same if node.op == "==" else not same
    if not ((num(a) and num(b)) or (isinstance(a, str) and isinstance(b, str))):
        raise Undefined
    return {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[node.op]


def ref_bool(node: Gate, data: dict[str, Any]) -> bool:
    value = ref_value(node, data)
    if not isinstance(value, bool):
        raise Undefined
    return value


# --- strategies --------------------------------------------------------------------------------

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5000, 5000),
    st.floats(-5000, 5000, allow_nan=False, allow_infinity=False).map(lambda f: round(f, 3)),
    st.sampled_from(["gold", "silver", "", "a'b", 'q"x', "back\\slash"]),
)
paths = st.one_of(
    st.sampled_from(FIELDS).map(lambda f: Path((f,))),
    st.just(Path(("items", 0, "price"))),
    st.just(Path(("customer", "tier"))),
)
operands = st.one_of(scalars.map(Literal_), paths)
comparisons = st.builds(
    Compare, st.sampled_from(["==", "!=", "<", "<=", ">", ">="]), operands, operands
)
gates: st.SearchStrategy[Gate] = st.recursive(
    st.one_of(comparisons, paths, st.booleans().map(Literal_)),
    lambda inner: st.one_of(
        st.builds(Not, inner), st.builds(And, inner, inner), st.builds(Or, inner, inner)
    ),
    max_leaves=8,
)
inputs = st.fixed_dictionaries(
    {},
    optional={
        "amount": st.one_of(st.integers(-5000, 5000), st.text(max_size=3), st.none()),
        "tier": st.sampled_from(["gold", "silver"]),
        "flag": st.booleans(),
        "items": st.lists(st.fixed_dictionaries({"price": st.integers(0, 10)}), max_size=2),
        "customer": st.fixed_dictionaries({"tier": st.sampled_from(["gold", "silver"])}),
    },
)


@settings(max_examples=300, deadline=None)
@given(gates, inputs)
def test_parse_and_evaluate_agree_on_every_side(gate: Gate, data: dict[str, Any]) -> None:
    text = format_gate(gate)
    # the text parses back to the same tree: the SDK, the followers and the dispatcher read it
    assert parse_gate(text) == gate
    assert sdk_accepts(text)
    assert follower_accepts(text)
    try:
        expected: bool | None = ref_bool(gate, data)
    except Undefined:
        expected = None
    held, why = needs_approval(text, data)
    if expected is None:  # fails closed: a condition that cannot be evaluated holds the task
        assert held
        assert "could not be evaluated" in why
        with pytest.raises(GateEvaluationError):
            evaluate(gate, data)
    else:
        assert held is expected
        assert evaluate(gate, data) is expected


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="amount<>=!()'\" .0123456789andornottruefalsenull-_", max_size=40))
def test_the_sdk_and_the_followers_accept_exactly_what_parses(text: str) -> None:
    try:
        parse_gate(text)
    except GateSyntaxError:
        parses = False
    else:
        parses = True
    assert sdk_accepts(text) is parses
    assert follower_accepts(text) is parses


@pytest.mark.parametrize(
    ("condition", "data", "held"),
    [
        ("amount > 1000", {"amount": 1500}, True),
        ("amount > 1000", {"amount": 999.5}, False),
        ("amount >= 1000 and tier != 'gold'", {"amount": 1000, "tier": "silver"}, True),
        ("not (amount < 10 or flag)", {"amount": 50, "flag": False}, True),
        ('customer.tier == "gold"', {"customer": {"tier": "gold"}}, True),
        ("items.1.price > 3", {"items": [{"price": 1}, {"price": 4}]}, True),
        ("true", {}, True),
        ("refund == null", {}, True),
        ("amount == 1", {"amount": True}, False),
    ],
)
def test_conditions_of_the_documented_grammar(
    condition: str, data: dict[str, Any], held: bool
) -> None:
    assert needs_approval(condition, data)[0] is held


@pytest.mark.parametrize(
    ("condition", "message"),
    [
        ("amount >", "unexpected end of the condition"),
        ("amount > 1000 extra", "unexpected 'extra' at position 15"),
        ("(amount > 1", "'(' at position 1 is not closed"),
        ("amount ~ 3", "unexpected '~' at position 8"),
        ("", "empty condition"),
        ("and > 1", "unexpected 'and'"),
        ("__import__('os')", "unexpected '('"),
        ("(" * 40 + "true" + ")" * 40, "nested deeper than 32"),
    ],
)
def test_a_malformed_condition_names_what_and_where(condition: str, message: str) -> None:
    with pytest.raises(GateSyntaxError, match=message.replace("(", r"\(")):
        parse_gate(condition)
    assert not sdk_accepts(condition)
    problem = registration_problem(
        ServiceRegistered(
            event_id="reg:Gated:x",
            service="Gated",
            description="d",
            input_schema={},
            output_schema={},
            approval_when=condition,
        )
    )
    assert problem is not None
    assert "approval condition" in problem


def test_the_sdk_refuses_both_ways_of_asking_and_says_which() -> None:
    with pytest.raises(ServiceDefinitionError, match="not both"):
        Service(
            name="Gated",
            description="d",
            input=_In,
            output=_In,
            requires_approval=True,
            approval_when="amount > 1",
        )
    always = Service(name="Gated", description="d", input=_In, output=_In, requires_approval=True)
    assert always.approval_when == "true"
    plain = Service(name="Gated", description="d", input=_In, output=_In)
    assert plain.approval_when is None
    # a gate is part of the definition: another gate is another definition
    assert always.schema_hash != plain.schema_hash
