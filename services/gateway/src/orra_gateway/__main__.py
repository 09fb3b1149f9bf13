"""Entry point: ``python -m orra_gateway`` or ``orra-gateway``."""

from __future__ import annotations

from orra_events.runtime import run_service
from orra_gateway.app import setup


def main() -> None:
    """Run the gateway until SIGTERM."""
    run_service("gateway", setup)


if __name__ == "__main__":
    main()
