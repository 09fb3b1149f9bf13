"""The building blocks of every view: status colours, sections, labelled lines, tables."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from rich.text import Text

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = [
    "STATUS_STYLES",
    "TERMINAL_STATUSES",
    "action_text",
    "clip",
    "compact",
    "join_names",
    "line",
    "section",
    "styled",
    "table_text",
]

TERMINAL_STATUSES = frozenset({"completed", "failed", "aborted", "not_actionable"})
"""Orchestration statuses after which nothing changes."""

STATUS_STYLES: dict[str, str] = {
    "completed": "green",
    "running": "cyan",
    "dispatched": "cyan",
    "planning": "yellow",
    "pending": "dim",
    "retrying": "yellow",
    "timed_out": "red",
    "failed": "red",
    "not_actionable": "red",
    "aborted": "magenta",
    "delivered": "green",
    "paused": "yellow",
    "awaiting_approval": "yellow",
    "compensating": "magenta",
    "compensated": "green",
    "resolved": "green",
    "ignored": "dim",
}


def styled(status: Any) -> Text:
    """A status in its colour (``-`` when missing)."""
    text = str(status) if status is not None else "-"
    return Text(text, style=STATUS_STYLES.get(text, ""))


def join_names(names: Sequence[str]) -> str:
    """``a, b & c``."""
    names = list(names)
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + " & " + names[-1]


def table_text(
    headers: Sequence[str],
    rows: Sequence[Sequence[Text | str]],
    *,
    prefix: str = "",
    pads: Sequence[int] | None = None,
    mins: Sequence[int] | None = None,
    header_extra: Sequence[int] | None = None,
) -> list[Text]:
    """Rows of plain aligned columns (the last column is not padded).

    Args:
        headers: Column titles.
        rows: Cells; a row may have more cells than there are headers (comments).
        prefix: Text before every line.
        pads: Spaces after the widest cell of each column (2 by default).
        mins: Minimum width of each column's cells.
        header_extra: More spaces after each header cell (to reproduce a fixed layout).
    """
    widths = []
    for col, header in enumerate(headers):
        cells = [len(r[col]) if isinstance(r[col], Text) else len(str(r[col])) for r in rows]
        width = max([len(header), *cells, (mins[col] if mins else 0)])
        widths.append(width + (pads[col] if pads else 2))
    lines: list[Text] = []
    for number, row in enumerate([list(headers), *rows]):
        line = Text(prefix)
        for col, cell in enumerate(row):
            piece = cell if isinstance(cell, Text) else Text(str(cell))
            line.append_text(piece)
            if col < len(row) - 1 and col < len(widths):
                extra = header_extra[col] if header_extra and number == 0 else 0
                line.append(" " * max(1, widths[col] + extra - len(piece)))
        line.rstrip()
        lines.append(line)
    lines[0].stylize("bold", len(prefix))
    return lines


def section(title: str) -> Text:
    """A section title: ``┌─ Title``."""
    text = Text("┌─ ")
    text.append(title, style="bold")
    return text


def line(label: str, value: Text | str) -> Text:
    """A labelled line of a section: ``│ Label: value``."""
    text = Text(f"│ {label}: ")
    text.append_text(value if isinstance(value, Text) else Text(str(value)))
    return text


def compact(value: Any) -> str:
    """JSON on one line, ``, `` and ``: `` separated."""
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "), default=str)


def action_text(orch: Mapping[str, Any]) -> str:
    """The action of an orchestration as text (``-`` when missing)."""
    action = orch.get("action")
    if isinstance(action, Mapping):
        return str(action.get("content") or "-")
    return str(action or "-")


def clip(text: str, width: int) -> str:
    """``text`` on one line, cut to ``width`` characters with ``…``."""
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"
