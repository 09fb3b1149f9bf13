"""Hypothesis strategies that build any event from its msgspec type information."""

from __future__ import annotations

from typing import Any

import msgspec
from hypothesis import strategies as st

from orra_events import Event

_text = st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=20)
_ints = st.integers(min_value=-(2**63), max_value=2**63 - 1)
_floats = st.floats(allow_nan=False, allow_infinity=False)

json_values: st.SearchStrategy[Any] = st.recursive(
    st.none() | st.booleans() | _ints | _floats | _text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_text, inner, max_size=4),
    max_leaves=10,
)
"""Any JSON value (what a ``dict[str, Any]`` field may hold)."""


def for_type(t: msgspec.inspect.Type) -> st.SearchStrategy[Any]:
    """A strategy for values of a msgspec type."""
    strategy: st.SearchStrategy[Any]
    match t:
        case msgspec.inspect.StrType():
            strategy = _text
        case msgspec.inspect.BoolType():
            strategy = st.booleans()
        case msgspec.inspect.IntType():
            strategy = _ints
        case msgspec.inspect.FloatType():
            strategy = _floats
        case msgspec.inspect.NoneType():
            strategy = st.none()
        case msgspec.inspect.AnyType():
            strategy = json_values
        case msgspec.inspect.LiteralType(values=values):
            strategy = st.sampled_from(values)
        case msgspec.inspect.UnionType(types=types):
            strategy = st.one_of(*(for_type(member) for member in types))
        case msgspec.inspect.ListType(item_type=item):
            strategy = st.lists(for_type(item), max_size=4)
        case msgspec.inspect.DictType(key_type=key, value_type=value):
            strategy = st.dictionaries(for_type(key), for_type(value), max_size=4)
        case msgspec.inspect.StructType(cls=cls):
            strategy = struct_of(cls)
        case msgspec.inspect.Metadata(type=inner):
            strategy = for_type(inner)
        case _:
            raise NotImplementedError(f"no strategy for {t!r}")
    return strategy


def struct_of(cls: type[Any]) -> st.SearchStrategy[Any]:
    """A strategy for instances of a msgspec Struct; optional fields are sometimes left out."""
    info = msgspec.inspect.type_info(cls)
    assert isinstance(info, msgspec.inspect.StructType)
    required: dict[str, st.SearchStrategy[Any]] = {}
    optional: dict[str, st.SearchStrategy[Any]] = {}
    for f in info.fields:
        if issubclass(cls, Event) and f.name == "v":
            required["v"] = st.just(cls.VERSION)
        elif f.required:
            required[f.name] = for_type(f.type)
        else:
            optional[f.name] = for_type(f.type)
    return st.fixed_dictionaries(required, optional=optional).map(lambda kw: cls(**kw))
