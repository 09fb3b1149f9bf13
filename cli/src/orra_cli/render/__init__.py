"""Pure rendering of orchestrations for humans: ``inspect``, ``ps``, plans, durations.

Everything here takes the JSON shapes of the gateway (docs/architecture.md) and returns
Rich :class:`~rich.text.Text`; nothing does I/O. Import every name from ``orra_cli.render``;
the package is split by role:

* :mod:`~orra_cli.render.times`: timestamps and durations (``2m ago``, ``1.2s``).
* :mod:`~orra_cli.render.text`: status colours, sections, labelled lines, tables.
* :mod:`~orra_cli.render.plans`: parallel groups, task notes, the plan view.
* :mod:`~orra_cli.render.inspect`: the ``orra inspect`` view (the seed's format).
* :mod:`~orra_cli.render.lists`: the ``orra ps`` table, ``orra comp-fail ls`` rows.
* :mod:`~orra_cli.render.statuses`: :data:`ORCHESTRATION_STATUSES`, loaded on first use
  (it reads the projection, which commands that do not check a status need not import).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from orra_cli.render.inspect import inspect_text
from orra_cli.render.lists import comp_fail_rows, ps_text
from orra_cli.render.plans import left_out_lines, plan_text, task_notes
from orra_cli.render.text import STATUS_STYLES, TERMINAL_STATUSES, table_text
from orra_cli.render.times import format_duration, parse_time, relative_time

if TYPE_CHECKING:
    from orra_cli.render.statuses import ORCHESTRATION_STATUSES

__all__ = [
    "ORCHESTRATION_STATUSES",
    "STATUS_STYLES",
    "TERMINAL_STATUSES",
    "comp_fail_rows",
    "format_duration",
    "inspect_text",
    "left_out_lines",
    "parse_time",
    "plan_text",
    "ps_text",
    "relative_time",
    "table_text",
    "task_notes",
]


def __getattr__(name: str) -> Any:
    """Load :data:`ORCHESTRATION_STATUSES` on first use (PEP 562)."""
    if name == "ORCHESTRATION_STATUSES":
        from orra_cli.render.statuses import ORCHESTRATION_STATUSES

        return ORCHESTRATION_STATUSES
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
