"""From an MCP tool to an Orra service definition (pure: no I/O).

**Names.** The tool ``create_issue`` of the server configured as ``github`` becomes the
service ``github-create_issue``: the server's prefix, ``-``, then the tool's name with each
``.`` or ``/`` turned into ``-`` (``admin.users.list`` → ``github-admin-users-list``). A
service name is one subject token (1 to 128 letters, digits, ``_`` or ``-``): a tool whose
name maps to anything else is reported and skipped, and so is the second of two tools that
map to the same name (tools are taken in name order, so every replica keeps the same one).

**Schemas.** The tool's ``inputSchema`` is the service's input schema. Its
``outputSchema``, when it describes an object, is the output schema and the task's output
is the tool's structured result; an ``outputSchema`` of another type is wrapped as
``{"result": ...}`` (:data:`RESULT_FIELD`). A tool without ``outputSchema`` gets the text
fallback :data:`TEXT_OUTPUT_SCHEMA`: ``{"text": <every text block, joined by blank lines>,
"content": [<every content block as MCP sent it>]}``, so a plan can pass ``$task.text`` on.
A schema that is not valid JSON Schema is reported and the tool skipped.

**Description.** The tool's title (``title``, else ``annotations.title``) and description,
as ``"<title>. <description>"``.

**Retries** (:func:`safe_to_repeat`). A tool that is read-only, or idempotent, may be run
again: its tasks are retried after a timeout or an error like any service's. Any other tool
(MCP's defaults for a tool without annotations: not read-only, destructive, not
idempotent) is registered with ``retry_on_timeout=False``: a timeout, or a connection lost
during the call, is never retried; the task fails and is left for an operator (``orra
comp-fail ls``), because running it again could do it twice.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from orra_events import check_name
from orra_events.errors import InvalidName

if TYPE_CHECKING:
    from mcp.types import Tool, ToolAnnotations

__all__ = [
    "RESULT_FIELD",
    "TEXT_OUTPUT_SCHEMA",
    "ToolSpec",
    "description_of",
    "map_tools",
    "safe_to_repeat",
    "service_name",
]

RESULT_FIELD: Final = "result"
"""Field of the output that holds a structured result whose schema is not an object."""

TEXT_OUTPUT_SCHEMA: Final[dict[str, Any]] = {
    "type": "object",
    "description": "The tool's content (it declares no outputSchema).",
    "properties": {
        "text": {
            "type": "string",
            "description": "Every text block of the tool's result, joined by blank lines.",
        },
        "content": {
            "type": "array",
            "description": "Every content block of the result, as MCP sent it.",
            "items": {"type": "object"},
        },
    },
    "required": ["text", "content"],
}
"""Output schema of a tool that declares no ``outputSchema``."""


@dataclass(frozen=True)
class ToolSpec:
    """What the bridge registers for one tool.

    Attributes:
        tool: The tool's name on its MCP server.
        service: The Orra service name.
        description: The service's description.
        input_schema: The service's input schema (the tool's ``inputSchema``).
        output_schema: The service's output schema (see the module's documentation).
        output_mode: ``structured`` (the structured result is the output), ``wrapped``
            (it goes under :data:`RESULT_FIELD`) or ``text`` (the text fallback).
        repeatable: Whether the tool may be run again (:func:`safe_to_repeat`).
    """

    tool: str
    service: str
    description: str
    input_schema: dict[str, Any]
    output_schema: dict[str, Any]
    output_mode: str
    repeatable: bool

    @property
    def fingerprint(self) -> str:
        """A hash of everything registered for the tool (to see that a tool changed)."""
        document = json.dumps(
            [self.description, self.input_schema, self.output_schema, self.repeatable],
            sort_keys=True,
            separators=(",", ":"),
            default=str,
        )
        return hashlib.sha256(document.encode()).hexdigest()[:16]


def service_name(prefix: str, tool: str) -> str:
    """The service name of ``tool`` of the server with ``prefix`` (see the module docs).

    Raises:
        InvalidName: the result is not a valid service name.
    """
    mapped = f"{prefix}-{tool.replace('.', '-').replace('/', '-')}"
    return check_name("service name", mapped)


def description_of(tool: Tool) -> str:
    """The service description of a tool: its title, then its description."""
    title = tool.title or (tool.annotations.title if tool.annotations else None)
    description = (tool.description or "").strip()
    parts = [p.strip() for p in (title, description) if p and p.strip()]
    if len(parts) == 2 and parts[1].casefold().startswith(parts[0].casefold()):
        parts = parts[1:]
    if not parts:
        return f"MCP tool {tool.name}"
    if len(parts) == 2 and not parts[0].endswith((".", ":", "!", "?")):
        return f"{parts[0]}. {parts[1]}"
    return " ".join(parts)


def safe_to_repeat(annotations: ToolAnnotations | None) -> bool:
    """Whether running the tool again cannot do anything twice (read-only or idempotent).

    Annotations are hints; absent ones take MCP's defaults (not read-only, not
    idempotent), so a tool without annotations is not repeatable.
    """
    if annotations is None:
        return False
    return bool(annotations.read_only_hint) or bool(annotations.idempotent_hint)


def _output(tool: Tool) -> tuple[dict[str, Any], str]:
    schema = tool.output_schema
    if schema is None:
        return dict(TEXT_OUTPUT_SCHEMA), "text"
    root = schema.get("type", "object") if isinstance(schema, dict) else None
    if root == "object" or (isinstance(root, list) and root == ["object"]):
        return dict(schema), "structured"
    return (
        {"type": "object", "properties": {RESULT_FIELD: schema}, "required": [RESULT_FIELD]},
        "wrapped",
    )


def map_tools(
    prefix: str, tools: list[Tool], allowed: frozenset[str] | None = None
) -> tuple[list[ToolSpec], list[str]]:
    """The specs of a server's tools, and why others were skipped (one line per tool).

    Schemas are checked when the service is declared (``Service.from_json_schema``); a
    tool whose schema is refused there is reported by the bridge.

    Args:
        prefix: The server's prefix.
        tools: Its tools, as listed.
        allowed: Only these tool names (``None``: all).
    """
    specs: list[ToolSpec] = []
    skipped: list[str] = []
    taken: dict[str, str] = {}
    for tool in sorted(tools, key=lambda t: t.name):
        if allowed is not None and tool.name not in allowed:
            continue
        try:
            name = service_name(prefix, tool.name)
        except InvalidName:
            skipped.append(
                f"tool {tool.name!r}: {prefix}-{tool.name} is not a valid service name "
                "(1-128 letters, digits, '_' or '-' once '.' and '/' become '-')"
            )
            continue
        if name in taken:
            skipped.append(
                f"tool {tool.name!r}: its service name {name} is already taken by tool "
                f"{taken[name]!r}"
            )
            continue
        taken[name] = tool.name
        output_schema, mode = _output(tool)
        specs.append(
            ToolSpec(
                tool=tool.name,
                service=name,
                description=description_of(tool),
                input_schema=dict(tool.input_schema),
                output_schema=output_schema,
                output_mode=mode,
                repeatable=safe_to_repeat(tool.annotations),
            )
        )
    if allowed is not None:
        listed = {t.name for t in tools}
        skipped.extend(
            f"tool {name!r} is configured but the server does not list it"
            for name in sorted(allowed - listed)
        )
    return specs, skipped
