"""Entry point: ``orra-examples`` starts every example service against ORRA_NATS_URL."""

from __future__ import annotations

from orra_examples.ecommerce import main

if __name__ == "__main__":
    main()
