"""The offline planner's matching is remembered per catalogue across data the action does
not mention, and reads the same as with every value (issue 23: the planner's CPU per action).
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

import orra_planner.matching as matching
from orra_events import DataField
from orra_planner.parts import data_fields, data_values, mentioned_values, split_action
from tests.planner.catalog import catalog_of, data, ecommerce

SEED = "Process order payment, update inventory, arrange delivery and notify the customer"

_WORDS = st.sampled_from(
    [
        "process",
        "order",
        "payment",
        "update",
        "inventory",
        "and",
        "then",
        "notify",
        "the",
        "customer",
        "Slack",
        "Jira",
        "ship",
        "to",
        "Paris",
        "ORD-7",
        "299.99",
        "refund",
        ",",
        "İstanbul",
        "ΟΔΟΣ",
        "Kelvin",
        "once",
        "is",
        "done",
        "check",
        "stock",
    ]
)
_VALUES = st.one_of(
    _WORDS,
    st.text(max_size=12),
    st.integers(-1000, 1000),
    st.lists(_WORDS, max_size=3),
    st.just(None),
    st.booleans(),
)


@settings(max_examples=150, deadline=None)
@given(
    words=st.lists(_WORDS, min_size=1, max_size=14),
    values=st.dictionaries(st.sampled_from(["orderId", "city", "apps", "note", "x"]), _VALUES),
)
def test_values_the_action_does_not_mention_change_nothing_read(
    words: list[str], values: dict[str, Any]
) -> None:
    action = " ".join(words)
    fields = [DataField(k, v) for k, v in values.items()]
    names = data_fields(fields)
    mentioned = mentioned_values(action, fields)
    assert mentioned <= data_values(fields)
    assert split_action(action, mentioned, names) == split_action(
        action, data_values(fields), names
    )


def test_an_action_is_matched_once_per_catalogue_for_unmentioned_data(monkeypatch: Any) -> None:
    catalog = catalog_of(ecommerce())
    calls: list[str] = []
    real = matching.match_part

    def counted(part: Any, *args: Any) -> Any:
        calls.append(part.text)
        return real(part, *args)

    monkeypatch.setattr(matching, "match_part", counted)
    first = matching.match_action(SEED, catalog, data(orderId="ORD1", amount="10"))
    matched = len(calls)
    assert matched == len(first) > 1
    again = matching.match_action(SEED, catalog, data(orderId="ORD2", amount="99.5"))
    assert again == first
    assert len(calls) == matched  # remembered: not matched again
    # A value the action mentions, other field names or another catalogue: matched anew.
    matching.match_action(SEED, catalog, data(orderId="ORD2", note="payment"))
    assert len(calls) == 2 * matched
    matching.match_action(SEED, catalog_of(ecommerce()), data(orderId="ORD3", amount="1"))
    assert len(calls) == 3 * matched
