"""Capture the JSON log lines a service writes, with the production logging configuration."""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Iterator
from typing import Any

import pytest
import structlog

from orra_events.runtime import configure_logging


class JsonLogs:
    """The JSON lines written since the capture started."""

    def __init__(self, out: io.StringIO) -> None:
        self._out = out

    @property
    def lines(self) -> list[dict[str, Any]]:
        """Every line, decoded (a line that is not JSON fails the test)."""
        return [json.loads(line) for line in self._out.getvalue().splitlines() if line]

    def where(self, **fields: Any) -> list[dict[str, Any]]:
        """The lines holding every one of ``fields`` with that value."""
        return [line for line in self.lines if all(line.get(k) == v for k, v in fields.items())]


@contextlib.contextmanager
def json_logs(service: str, level: str = "DEBUG") -> Iterator[JsonLogs]:
    """Log as :func:`orra_events.runtime.configure_logging` does, into a buffer.

    The processors (``merge_contextvars`` first, the JSON renderer last) are the production
    ones; the loggers are not cached (a cached logger would keep writing to the buffer
    after the test), and the previous configuration is restored afterwards.
    """
    saved = structlog.get_config()
    out = io.StringIO()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ORRA_LOG_LEVEL", level)
        patch.setenv("ORRA_LOG_FORMAT", "json")
        before = structlog.contextvars.get_contextvars()
        configure_logging(service)  # binds ``service`` here: undone below
        structlog.contextvars.unbind_contextvars("service")
        structlog.contextvars.bind_contextvars(**before)
        structlog.configure(
            logger_factory=structlog.PrintLoggerFactory(file=out),
            cache_logger_on_first_use=False,
        )
        try:
            with structlog.contextvars.bound_contextvars(service=service):
                yield JsonLogs(out)
        finally:
            structlog.configure(**saved)
