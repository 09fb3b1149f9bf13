"""The nesting check of request bodies, on raw bytes, against the depth of the decoded JSON."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st

from orra_gateway.bodies import nested_deeper_than, too_deep_at

_text = st.text(alphabet=st.sampled_from('ab[]{}"\\\n é'), max_size=6)
json_values: st.SearchStrategy[Any] = st.recursive(
    st.none() | st.booleans() | st.integers() | _text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_text, inner, max_size=3),
    max_leaves=40,
)


def depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((depth(v) for v in value), default=0)
    return 0


@settings(max_examples=800, deadline=None)
@given(json_values, st.integers(min_value=0, max_value=8), st.booleans())
@example(value=[[[["]]]]"]]]], limit=3, ascii_=False)
@example(value={"a[": [{"b": '"[[[['}]}, limit=2, ascii_=True)
def test_the_raw_check_agrees_with_the_decoded_depth(value: Any, limit: int, ascii_: bool) -> None:
    raw = json.dumps(value, ensure_ascii=ascii_).encode()
    assert nested_deeper_than(raw, limit) is (depth(value) > limit)


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=60) | st.text('[]{}"\\a,:', max_size=60).map(str.encode))
def test_any_bytes_are_measured_without_error(raw: bytes) -> None:
    nested_deeper_than(raw, 3)
    too_deep_at(raw, 3)


def test_unclosed_brackets_count() -> None:
    assert nested_deeper_than(b"[" * 40, 35)
    assert not nested_deeper_than(b"[" * 35, 35)


def test_the_path_names_the_field() -> None:
    body = b'{"action":{"content":"x"},"data":[{"field":"a","value":1},{"field":"b","value":'
    assert too_deep_at(body + b"[" * 40 + b"]" * 40 + b"}]}", 35) == "data[1].value"
    assert too_deep_at(b"[" * 40, 35) == "body[0][0][0]"
