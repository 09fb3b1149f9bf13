"""Exceptions of :mod:`orra_mcp`; every one derives from :class:`OrraMcpError`."""

from __future__ import annotations

__all__ = ["ApiError", "ConfigError", "OrraMcpError"]


class OrraMcpError(Exception):
    """Root of every error raised by :mod:`orra_mcp`."""


class ConfigError(OrraMcpError, ValueError):
    """The bridge's configuration file cannot be used; the message says where and why."""


class ApiError(OrraMcpError):
    """The Orra gateway refused a request or could not be reached.

    Attributes:
        status: The HTTP status (0 when no answer came).
        detail: What the gateway said (its problem details' ``detail``), or the network error.
        problem: The whole problem details body, when there is one.
    """

    def __init__(self, status: int, detail: str, problem: dict[str, object] | None = None) -> None:
        super().__init__(f"{status}: {detail}" if status else detail)
        self.status = status
        self.detail = detail
        self.problem = problem or {}
