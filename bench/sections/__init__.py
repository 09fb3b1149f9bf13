"""The benchmark sections; each returns a JSON-able dict of results for the report.

Every result dict has ``status`` (``ok``, ``partial``, ``skipped`` or ``error``) and
``notes`` (a list of strings that the report prints with the section).
"""

from __future__ import annotations

from typing import Any

__all__ = ["Result", "error", "skipped"]

Result = dict[str, Any]


def skipped(reason: str) -> Result:
    """A section that did not run, and why."""
    return {"status": "skipped", "notes": [reason]}


def error(reason: str) -> Result:
    """A section that failed, and why."""
    return {"status": "error", "notes": [reason]}
