"""Entry point: ``orra-examples`` starts every example service against ORRA_NATS_URL."""

from __future__ import annotations


def main() -> None:
    """Run the example services."""
    from orra_examples.ecommerce import run

    run()


if __name__ == "__main__":
    main()
