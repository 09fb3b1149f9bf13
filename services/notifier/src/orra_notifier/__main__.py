"""Entry point: ``python -m orra_notifier`` or ``orra-notifier``."""

from __future__ import annotations

from orra_events.runtime import run_service
from orra_notifier.app import setup


def main() -> None:
    """Run the notifier until SIGTERM."""
    run_service("notifier", setup)


if __name__ == "__main__":
    main()
