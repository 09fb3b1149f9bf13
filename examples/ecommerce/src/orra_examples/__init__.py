"""Orra's example e-commerce services, built with :mod:`orra_sdk`.

``orra-examples`` (or ``python -m orra_examples``) serves them all in one process;
``--only NAME`` serves a subset.
"""

from orra_examples.ecommerce import (
    SERVICES,
    DeliveryAgent,
    FraudCheck,
    InventoryService,
    NotificationService,
    PaymentService,
    RefundService,
    main,
    run,
)

__all__ = [
    "SERVICES",
    "DeliveryAgent",
    "FraudCheck",
    "InventoryService",
    "NotificationService",
    "PaymentService",
    "RefundService",
    "main",
    "run",
]
