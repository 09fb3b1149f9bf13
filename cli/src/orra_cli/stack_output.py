"""What ``orra up`` prints: its children's output lines, made readable, and its notices.

A child logs structlog JSON (``ORRA_LOG_FORMAT=json``); :func:`format_log_line` turns a
line into ``info  ready nats_url=...``, and :func:`is_ready_line` tells the line that says
a child is ready.
"""

from __future__ import annotations

import json
from collections.abc import Callable

__all__ = [
    "LogSink",
    "NoticeSink",
    "default_log_sink",
    "default_notice_sink",
    "format_log_line",
    "is_ready_line",
]

LogSink = Callable[[str, str], None]
"""Receives ``(process name, output line)`` from the reader threads."""
NoticeSink = Callable[[str], None]
"""Receives the supervisor's own messages (crashes, restarts, shutdown)."""


def format_log_line(line: str) -> str:
    """A structlog JSON line made readable (``info  ready nats_url=...``); others as is."""
    if not line.startswith("{"):
        return line
    try:
        record = json.loads(line)
    except ValueError:
        return line
    if not isinstance(record, dict) or "event" not in record:
        return line
    level = str(record.pop("level", "info"))
    event = str(record.pop("event"))
    for noise in ("timestamp", "service", "logger"):
        record.pop(noise, None)
    exc = record.pop("exception", None)
    extras = " ".join(
        f"{k}={v if isinstance(v, str) and ' ' not in v else json.dumps(v)}"
        for k, v in record.items()
    )
    text = f"{level:<7} {event}" + (f"  {extras}" if extras else "")
    if exc:
        text += "\n" + str(exc)
    return text


_READY_EVENTS = frozenset({"ready", "serving"})
"""Log events that mean a child is ready: the control plane's ``ready``
(``orra_events.runtime``), the SDK runner's ``serving`` (``orra_sdk.runner``)."""


def is_ready_line(line: str) -> bool:
    """Whether a child's output line is its ``ready`` (or ``serving``) log event."""
    if '"ready"' not in line and '"serving"' not in line:
        return False
    try:
        record = json.loads(line)
    except ValueError:
        return False
    return isinstance(record, dict) and record.get("event") in _READY_EVENTS


def default_log_sink() -> LogSink:
    """Each line on stderr, prefixed with its process name in a colour of its own."""
    from rich.console import Console
    from rich.text import Text

    console = Console(stderr=True, soft_wrap=True, highlight=False)
    colors = ["cyan", "magenta", "green", "yellow", "blue", "bright_cyan", "bright_magenta"]
    assigned: dict[str, str] = {}

    def sink(name: str, line: str) -> None:
        style = assigned.setdefault(name, colors[len(assigned) % len(colors)])
        text = Text(f"{name:<10} | ", style=style)
        text.append(format_log_line(line))
        console.print(text)

    return sink


def default_notice_sink() -> NoticeSink:
    """Each notice on stderr in bold, prefixed with ``orra``."""
    from rich.console import Console
    from rich.text import Text

    console = Console(stderr=True, soft_wrap=True, highlight=False)

    def sink(message: str) -> None:
        console.print(Text(f"{'orra':<10} | {message}", style="bold"))

    return sink
