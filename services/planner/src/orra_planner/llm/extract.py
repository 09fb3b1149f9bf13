"""Find the JSON answer in what a model wrote.

Models without structured outputs wrap their JSON in prose, in Markdown code fences, or
after a ``<think>...</think>`` block of reasoning. :func:`extract_json` finds the object.
"""

from __future__ import annotations

import json
import re
from typing import Any

from orra_planner.errors import PlannerError

__all__ = ["ExtractError", "extract_json", "strip_thinking"]

_THINK = re.compile(r"<(think|thinking|reasoning)>.*?</\1>", re.DOTALL | re.IGNORECASE)
_UNCLOSED_THINK = re.compile(r"^\s*<(think|thinking|reasoning)>.*", re.DOTALL | re.IGNORECASE)
_FENCE = re.compile(r"```[ \t]*(?:json|JSON|jsonc)?[ \t]*\n?(.*?)```", re.DOTALL)


class ExtractError(PlannerError, ValueError):
    """The text holds no JSON object."""


def strip_thinking(text: str) -> str:
    """Remove reasoning blocks (``<think>...</think>`` and the like) from a model's answer."""
    stripped = _THINK.sub("", text)
    # A reasoning block that was never closed (the answer was cut) holds no answer.
    return _UNCLOSED_THINK.sub("", stripped)


def _balanced_objects(text: str) -> list[str]:
    """Every top-level balanced ``{...}`` of ``text``, in order (strings respected)."""
    found: list[str] = []
    depth = 0
    start = -1
    in_string = False
    escaped = False
    for i, ch in enumerate(text):
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
            continue
        if ch == '"' and depth > 0:
            in_string = True
        elif ch == "{":
            if depth == 0:
                start = i
            depth += 1
        elif ch == "}" and depth > 0:
            depth -= 1
            if depth == 0:
                found.append(text[start : i + 1])
    return found


def _loads_object(candidate: str) -> dict[str, Any] | None:
    try:
        value = json.loads(candidate)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def extract_json(text: str) -> dict[str, Any]:
    """Return the JSON object a model answered with.

    Tries, in order: the whole text; each fenced code block; each balanced ``{...}``
    object of the text - all after removing reasoning blocks.

    Args:
        text: The model's answer.

    Returns:
        The first JSON object found.

    Raises:
        ExtractError: No JSON object could be parsed.
    """
    body = strip_thinking(text).strip()
    if not body:
        raise ExtractError("the answer is empty (no JSON object after the reasoning)")
    whole = _loads_object(body)
    if whole is not None:
        return whole
    for block in _FENCE.findall(body):
        parsed = _loads_object(block.strip())
        if parsed is not None:
            return parsed
        for candidate in _balanced_objects(block):
            parsed = _loads_object(candidate)
            if parsed is not None:
                return parsed
    for candidate in _balanced_objects(body):
        parsed = _loads_object(candidate)
        if parsed is not None:
            return parsed
    snippet = body if len(body) <= 200 else body[:200] + "..."
    raise ExtractError(f"the answer holds no JSON object: {snippet!r}")
