"""Small catalogues of other domains than e-commerce (support, travel, finance), as factories."""

from __future__ import annotations

from typing import Any

from orra_events import ServiceRegistered
from orra_planner import ServiceCatalog
from tests.planner.catalog import catalog_of, obj, string


def service(
    name: str,
    description: str,
    inputs: dict[str, Any],
    outputs: dict[str, Any],
    *,
    required: list[str] | None = None,
    examples: tuple[str, ...] = (),
) -> ServiceRegistered:
    return ServiceRegistered(
        event_id=f"reg:{name}:1",
        service=name,
        description=description,
        input_schema=obj(inputs, required),
        output_schema=obj(outputs),
        examples=list(examples),
    )


def support(*, sentiment_examples: bool = True) -> ServiceCatalog:
    """Support tickets: sentiment, routing, reply drafting, a knowledge base search."""
    return catalog_of(
        [
            service(
                "SentimentAnalyzer",
                "Scores the sentiment of a support ticket's messages",
                {"ticketId": string()},
                {"sentiment": {"type": "number"}},
                examples=(
                    ("how upset is the customer", "gauge the mood of the customer")
                    if sentiment_examples
                    else ()
                ),
            ),
            service(
                "TicketRouter",
                "Routes a support ticket to the right team queue",
                {"ticketId": string()},
                {"queue": string()},
            ),
            service(
                "ReplyDrafter",
                "Drafts a reply to a customer ticket",
                {"ticketId": string()},
                {"draft": string()},
            ),
            service(
                "KnowledgeBase",
                "Looks up help articles; every ticket answer can cite one",
                {"query": string()},
                {"articles": {"type": "array", "items": string()}},
            ),
        ]
    )


def travel(*, cancel: bool = True) -> ServiceCatalog:
    """Travel: three searches, booking, and (optionally) cancelling bookings."""
    events = [
        service(
            "FlightSearch",
            "Search flights between two airports",
            {"origin": string(), "destination": string()},
            {"offerId": string()},
        ),
        service(
            "HotelSearch",
            "Search hotels in a city",
            {"city": string(), "checkIn": string()},
            {"hotelOfferId": string()},
        ),
        service(
            "CarSearch",
            "Search rental cars at a location",
            {"pickup": string()},
            {"carOfferId": string()},
        ),
        service(
            "BookHotel",
            "Books a hotel room",
            {"hotelOfferId": string()},
            {"confirmation": string()},
        ),
    ]
    if cancel:
        events.append(
            service(
                "CancelBooking",
                "Cancels an existing booking",
                {"bookingId": string()},
                {"cancelled": {"type": "boolean"}},
            )
        )
    return catalog_of(events)


def finance() -> ServiceCatalog:
    """Back-office finance: invoices, payments, ledger."""
    return catalog_of(
        [
            service(
                "InvoiceReconciler",
                "Reconciles invoices against bank statements",
                {"period": string()},
                {"mismatches": {"type": "integer"}},
            ),
            service(
                "PaymentScheduler",
                "Schedules supplier payments",
                {"supplierId": string(), "amount": {"type": "number"}},
                {"scheduledAt": string()},
            ),
            service(
                "LedgerExport",
                "Exports the general ledger as a report",
                {"period": string()},
                {"url": string()},
            ),
        ]
    )
