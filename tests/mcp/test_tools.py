"""From MCP tools to service definitions: names, schemas, descriptions, retries."""

from __future__ import annotations

from typing import Any

import pytest
from mcp.types import Tool, ToolAnnotations

from orra_mcp.tools import TEXT_OUTPUT_SCHEMA, map_tools, safe_to_repeat

OBJECT = {"type": "object", "properties": {"q": {"type": "string"}}}


def tool(name: str, **kw: Any) -> Tool:
    return Tool(name=name, input_schema=kw.pop("input_schema", OBJECT), **kw)


def test_names_are_prefixed_and_invalid_or_colliding_ones_reported() -> None:
    specs, skipped = map_tools(
        "github",
        [
            tool("create_issue"),
            tool("admin.users.list"),
            tool("admin-users-list"),
            tool("send email!"),
            tool("x" * 130),
        ],
    )
    assert [s.service for s in specs] == ["github-admin-users-list", "github-create_issue"]
    assert [s.tool for s in specs] == ["admin-users-list", "create_issue"]
    assert "tool 'admin.users.list': its service name github-admin-users-list is already taken" in (
        " ".join(skipped)
    )
    assert any(line.startswith("tool 'send email!': ") for line in skipped)
    assert len(skipped) == 3


def test_an_allow_list_keeps_only_those_tools_and_names_missing_ones() -> None:
    specs, skipped = map_tools("fs", [tool("read"), tool("write")], frozenset({"read", "stat"}))
    assert [s.tool for s in specs] == ["read"]
    assert skipped == ["tool 'stat' is configured but the server does not list it"]


def test_output_schemas_description_and_title() -> None:
    structured = {"type": "object", "properties": {"n": {"type": "integer"}}}
    specs, _ = map_tools(
        "t",
        [
            tool("a", output_schema=structured, title="Tally", description="Count things."),
            tool("b", output_schema={"type": "array", "items": {"type": "string"}}),
            tool("c", description="Plain text.", annotations=ToolAnnotations(title="Say")),
            tool("d"),
        ],
    )
    a, b, c, d = specs
    assert (a.output_mode, a.output_schema, a.description) == (
        "structured",
        structured,
        "Tally. Count things.",
    )
    assert b.output_mode == "wrapped"
    assert b.output_schema["properties"]["result"] == {"type": "array", "items": {"type": "string"}}
    assert (c.output_mode, c.output_schema, c.description) == (
        "text",
        TEXT_OUTPUT_SCHEMA,
        "Say. Plain text.",
    )
    assert d.description == "MCP tool d"
    (e,), _ = map_tools("t", [tool("e", title="Count", description="Count the things.")])
    assert e.description == "Count the things."  # the title said nothing more


@pytest.mark.parametrize(
    ("annotations", "repeatable"),
    [
        (None, False),  # MCP's defaults: not read-only, destructive, not idempotent
        (ToolAnnotations(read_only_hint=True), True),
        (ToolAnnotations(destructive_hint=True, idempotent_hint=True), True),
        (ToolAnnotations(destructive_hint=True, idempotent_hint=False), False),
        (ToolAnnotations(destructive_hint=False), False),  # additive: twice is twice
    ],
)
def test_only_read_only_or_idempotent_tools_are_repeatable(
    annotations: ToolAnnotations | None, repeatable: bool
) -> None:
    assert safe_to_repeat(annotations) is repeatable


def test_a_changed_tool_changes_its_fingerprint() -> None:
    (before,), _ = map_tools("t", [tool("a")])
    (same,), _ = map_tools("t", [tool("a")])
    (after,), _ = map_tools("t", [tool("a", description="now documented")])
    assert before.fingerprint == same.fingerprint != after.fingerprint
