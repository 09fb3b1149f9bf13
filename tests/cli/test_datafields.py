from __future__ import annotations

import pytest

from orra_cli.datafields import merge_brace_expansion, parse_data_field, parse_value
from orra_cli.errors import EXIT_USAGE, UsageError


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ORD456", "ORD456"),
        ("299.99", 299.99),
        ("2", 2),
        ("true", True),
        ("null", None),
        ('"quoted"', "quoted"),
        ('[{"id":"PROD789","quantity":2}]', [{"id": "PROD789", "quantity": 2}]),
        ("[{id:PROD789,quantity:2}]", [{"id": "PROD789", "quantity": 2}]),
        ("{a:1,b:[x,true]}", {"a": 1, "b": ["x", True]}),
        ("007", "007"),
        ("NaN", "NaN"),
        ("Infinity", "Infinity"),
        ("{not json", "{not json"),
        ("hello world", "hello world"),
        ("", ""),
    ],
)
def test_value_is_json_when_it_parses_else_a_string(text: str, expected: object) -> None:
    assert parse_value(text) == expected


def test_field_splits_on_the_first_colon() -> None:
    assert parse_data_field("callback:http://x:1/y") == {
        "field": "callback",
        "value": "http://x:1/y",
    }


@pytest.mark.parametrize("raw", ["noColon", ":value", "  :x"])
def test_field_without_name_is_a_usage_error(raw: str) -> None:
    with pytest.raises(UsageError) as info:
        parse_data_field(raw)
    assert info.value.exit_code == EXIT_USAGE
    assert "field:value" in info.value.message


def test_bash_brace_expansion_is_undone() -> None:
    # bash turns items:[{"id":"PROD789","quantity":2}] into these two words
    merged = merge_brace_expansion(["orderId:ORD123", "items:[id:PROD789]"], ["items:[quantity:2]"])
    assert merged == ["orderId:ORD123", "items:[{id:PROD789,quantity:2}]"]
    assert parse_value(merged[1].split(":", 1)[1]) == [{"id": "PROD789", "quantity": 2}]


def test_stray_argument_is_a_usage_error_with_a_quoting_hint() -> None:
    with pytest.raises(UsageError) as info:
        merge_brace_expansion(["orderId:1"], ["oops"])
    assert "quote" in info.value.message
