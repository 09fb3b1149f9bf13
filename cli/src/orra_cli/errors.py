"""Errors of the ``orra`` command, each with the exit code and a hint of what to do next."""

from __future__ import annotations

from typing import Any

__all__ = ["EXIT_FAILED", "EXIT_OK", "EXIT_USAGE", "CliError", "UsageError"]

EXIT_OK = 0
"""The command did what was asked."""
EXIT_FAILED = 1
"""The operation failed (unreachable gateway, refused request, failed orchestration)."""
EXIT_USAGE = 2
"""The command line or the configuration is wrong."""


class CliError(Exception):
    """An error to report on stderr before exiting with ``exit_code``.

    Args:
        message: What went wrong and what to do next.
        exit_code: The process exit code.
        details: More lines to print under the message (reasons, problem details).
        data: Fields that ``--json`` prints beside ``error`` (the orchestration id, its
            status, the planner's reasons, the gateway's problem details).
    """

    def __init__(
        self,
        message: str,
        *,
        exit_code: int = EXIT_FAILED,
        details: list[str] | None = None,
        data: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code
        self.details = details or []
        self.data = data or {}

    def as_json(self) -> dict[str, Any]:
        """The error as ``--json`` prints it on stdout: ``data`` plus ``error``."""
        return {**self.data, "error": self.message, "details": self.details}


class UsageError(CliError):
    """The command line or the configuration is wrong (exit code 2)."""

    def __init__(
        self, message: str, *, details: list[str] | None = None, data: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message, exit_code=EXIT_USAGE, details=details, data=data)
