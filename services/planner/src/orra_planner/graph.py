"""Deprecated: the plan grammar is :mod:`orra_events.plan`; import it from there.

Kept as a re-export for code that still imports ``orra_planner.graph``. Note that
:func:`~orra_events.plan.find_references` yields ``(location, reference)`` pairs and
:class:`~orra_events.plan.Reference` has a ``path`` of segments (its ``field`` is the
first one).
"""

from __future__ import annotations

from orra_events.plan import (
    REFERENCE_PATTERN,
    TASK_ID_PATTERN,
    Reference,
    dependencies,
    dependency_levels,
    find_references,
    parallel_groups,
    parse_reference,
)

__all__ = [
    "REFERENCE_PATTERN",
    "TASK_ID_PATTERN",
    "Reference",
    "dependencies",
    "dependency_levels",
    "find_references",
    "parallel_groups",
    "parse_reference",
]
