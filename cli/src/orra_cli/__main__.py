"""Entry point of the ``orra`` command."""

from __future__ import annotations


def main() -> None:
    """Run the orra command."""
    from orra_cli.app import app

    app()


if __name__ == "__main__":
    main()
