"""Issue 15's cases, in other domains than e-commerce: wording users use, nothing silently
dropped or added, impossible requests refused quoting the part."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from orra_planner import OfflinePlanner, Planned, PlanRejected, ServiceCatalog
from orra_planner.parts import request_parts
from orra_planner.strategy import finalize
from tests.planner import domains
from tests.planner.catalog import request

PLANNER = OfflinePlanner()


def outcome(
    catalog: ServiceCatalog, action: str, *, partial: bool = False, **fields: Any
) -> Planned | PlanRejected:
    req = dataclasses.replace(request(action, catalog, **fields), allow_partial=partial)
    return finalize(PLANNER.plan_now(req), req)


def served(result: Planned | PlanRejected) -> list[tuple[str, str | None]]:
    assert isinstance(result, Planned), result
    return [(t.service, t.serves) for t in result.plan.tasks]


def test_a_synonym_taught_by_the_services_examples_is_planned() -> None:
    result = outcome(domains.support(), "Find out how upset the customer is", ticketId="T1")
    assert served(result) == [("SentimentAnalyzer", "Find out how upset the customer is")]


def test_without_the_examples_the_same_words_are_refused_not_run_as_something_else() -> None:
    result = outcome(
        domains.support(sentiment_examples=False), "Find out how upset the customer is",
        ticketId="T1",
    )  # fmt: skip
    assert isinstance(result, PlanRejected)
    assert result.status == "not_actionable"
    assert "'Find out how upset the customer is'" in result.reasons[0]


def test_a_typo_in_the_verb_is_read_as_the_catalogues_word() -> None:
    result = outcome(domains.support(), "Draft a reply to the ticket and rout it", ticketId="T1")
    # "rout" is an English word: it is not corrected, and the part is not dropped
    assert isinstance(result, PlanRejected)
    assert "'rout it'" in result.reasons[0]
    fixed = outcome(domains.support(), "Drfat a reply to the ticket", ticketId="T1")
    assert served(fixed) == [("ReplyDrafter", "Drfat a reply to the ticket")]
    assert isinstance(fixed, Planned)
    assert "read 'drfat' as 'draft' in 'Drfat a reply to the ticket'" in fixed.notes


def test_a_word_of_another_services_description_adds_nothing() -> None:
    # "ticket" is in every support service's words; only drafting was asked
    result = outcome(domains.support(), "Draft a reply to ticket T1", ticketId="T1")
    assert served(result) == [("ReplyDrafter", "Draft a reply to ticket T1")]


def test_an_impossible_request_is_refused_quoting_it_not_run_as_a_noun_match() -> None:
    result = outcome(domains.support(), "Translate the ticket into French", ticketId="T1")
    assert isinstance(result, PlanRejected)
    assert result.status == "not_actionable"
    assert result.reasons == (
        "nothing registered in project 'default' can translate: 'Translate the ticket into French'",
    )


def test_a_verb_shared_by_several_services_selects_by_the_rest_and_the_data() -> None:
    result = outcome(
        domains.travel(), "Search flights from LHR to JFK", origin="LHR", destination="JFK"
    )
    assert served(result) == [("FlightSearch", "Search flights from LHR to JFK")]
    both = outcome(
        domains.travel(), "Search flights and hotels",
        origin="LHR", destination="JFK", city="Paris", checkIn="2027-01-01",
    )  # fmt: skip
    assert served(both) == [("FlightSearch", "Search flights"), ("HotelSearch", "hotels")]


def test_the_noun_booking_does_not_select_the_verb_book() -> None:
    result = outcome(domains.travel(), "Cancel my booking", bookingId="B1")
    assert served(result) == [("CancelBooking", "Cancel my booking")]
    nothing_cancels = outcome(domains.travel(cancel=False), "Cancel my booking", bookingId="B1")
    assert isinstance(nothing_cancels, PlanRejected)
    assert nothing_cancels.reasons[0].endswith("can cancel: 'Cancel my booking'")


def test_a_service_added_for_data_another_needs_serves_no_part() -> None:
    result = outcome(domains.travel(), "Book a hotel", city="Paris", checkIn="2027-01-01")
    assert served(result) == [("HotelSearch", None), ("BookHotel", "Book a hotel")]


def test_a_partial_plan_runs_what_can_run_and_lists_the_rest() -> None:
    action = "Reconcile invoices and forecast cash flow"
    refused = outcome(domains.finance(), action, period="2025-01")
    assert isinstance(refused, PlanRejected)
    assert refused.reasons[0].endswith("can forecast: 'forecast cash flow'")
    partial = outcome(domains.finance(), action, partial=True, period="2025-01")
    assert served(partial) == [("InvoiceReconciler", "Reconcile invoices")]
    assert isinstance(partial, Planned)
    assert [u.part for u in partial.plan.uncovered] == ["forecast cash flow"]


@pytest.mark.parametrize(
    ("action", "parts"),
    [
        (
            "Process order payment and update inventory",
            ["Process order payment", "update inventory"],
        ),
        (
            "Process refund request ensuring it is not fraudulent",
            ["Process refund request", "ensuring it is not fraudulent"],
        ),
        ("Refund the order before notifying the customer", ["Refund the order",
                                                            "before notifying the customer"]),
        ("Notify the customer once the refund is done", ["Notify the customer"]),
        ("Ticket T-1 can be closed, the fix is deployed", ["Ticket T-1 can be closed"]),
        ("Search hotels and flights", ["Search hotels", "flights"]),
        ("please, and thanks", []),
    ],
)  # fmt: skip
def test_the_action_is_split_into_its_request_parts(action: str, parts: list[str]) -> None:
    assert [p.text for p in request_parts(action)] == parts
