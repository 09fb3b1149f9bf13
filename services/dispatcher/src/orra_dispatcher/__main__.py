"""Entry point: ``python -m orra_dispatcher`` or ``orra-dispatcher``."""

from __future__ import annotations

from orra_dispatcher.app import setup
from orra_events.runtime import run_service


def main() -> None:
    """Run the dispatcher until SIGTERM."""
    run_service("dispatcher", setup)


if __name__ == "__main__":
    main()
