"""Entry point: ``python -m orra_planner`` or ``orra-planner``."""

from __future__ import annotations

from orra_events.runtime import run_service
from orra_planner.app import setup


def main() -> None:
    """Run the planner until SIGTERM."""
    run_service("planner", setup)


if __name__ == "__main__":
    main()
