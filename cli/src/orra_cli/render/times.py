"""Times and durations for humans: ``2m ago``, ``1.2s``."""

from __future__ import annotations

import math
import time
from datetime import datetime
from typing import Any

__all__ = ["format_duration", "parse_time", "relative_time"]


def parse_time(value: Any) -> float | None:
    """UNIX seconds of a timestamp given as epoch seconds, epoch milliseconds or ISO 8601."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        number = float(value)
        return number / 1000.0 if number > 1e11 else number
    if isinstance(value, str) and value:
        try:
            return parse_time(float(value))
        except ValueError:
            pass
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return None
        return parsed.timestamp()
    return None


def relative_time(value: Any, now: float | None = None) -> str:
    """``2m ago`` style age of a timestamp; ``-`` when unknown."""
    at = parse_time(value)
    if at is None:
        return "-"
    age = max(0.0, (time.time() if now is None else now) - at)
    if age < 1:
        return "just now"
    if age < 60:
        return f"{int(age)}s ago"
    if age < 3600:
        return f"{int(age // 60)}m ago"
    if age < 86400:
        return f"{int(age // 3600)}h ago"
    return f"{int(age // 86400)}d ago"


def format_duration(ms: Any) -> str:
    """``1.2s`` for a duration in milliseconds (``45ms`` below a tenth of a second)."""
    if ms is None or isinstance(ms, bool) or not isinstance(ms, int | float):
        return "-"
    if not math.isfinite(ms) or ms < 0:
        return "-"
    if ms < 100:
        return f"{ms:.0f}ms"
    seconds = ms / 1000.0
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, rest = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{rest:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"
