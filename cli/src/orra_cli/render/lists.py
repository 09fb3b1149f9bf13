"""One line per item: the ``orra ps`` table and the rows of ``orra comp-fail ls``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.text import Text

from orra_cli.render.text import action_text, clip, styled, table_text
from orra_cli.render.times import relative_time

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

__all__ = ["comp_fail_rows", "ps_text"]


def comp_fail_rows(
    items: Sequence[Mapping[str, Any]], now: float | None = None
) -> list[list[Text | str]]:
    """Rows of ``orra comp-fail ls``: ID, SERVICE, STATUS, ATTEMPTS, FAILED, ERROR."""
    return [
        [
            str(item.get("id") or "-"),
            str(item.get("service") or "-"),
            styled(item.get("status")),
            str(item.get("attempts") if item.get("attempts") is not None else "-"),
            relative_time(item.get("failedAt"), now),
            clip(str(item.get("error") or "-"), 60),
        ]
        for item in items
    ]


def _ps_status(item: Mapping[str, Any]) -> Text:
    status = styled(item.get("status"))
    if item.get("expired"):
        status.append(" (expired)", style="dim")
    return status


def ps_text(items: Sequence[Mapping[str, Any]], *, now: float | None = None) -> Text:
    """The ``orra ps`` table: ID, ACTION, STATUS, TASKS, CREATED."""
    rows: list[list[Text | str]] = [
        [
            str(item.get("id") or item.get("orchestrationId") or "-"),
            clip(action_text(item), 48),
            _ps_status(item),
            str(item.get("taskCount") if item.get("taskCount") is not None else "-"),
            relative_time(item.get("createdAt"), now),
        ]
        for item in items
    ]
    return Text("\n").join(table_text(["ID", "ACTION", "STATUS", "TASKS", "CREATED"], rows))
