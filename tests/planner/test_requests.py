"""How requests are read: questions change nothing, idioms of request, context, chains.

Wording outside the planning corpus (issue 15): each test names the general mechanism.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from orra_planner import OfflinePlanner, Planned, PlanRejected, ServiceCatalog
from orra_planner.matching import vocabulary
from orra_planner.parts import request_parts, split_action
from orra_planner.strategy import finalize
from tests.planner.catalog import catalog_of, string
from tests.planner.catalog import request as make_request
from tests.planner.domains import service, travel

PLANNER = OfflinePlanner()


def outcome(catalog: ServiceCatalog, action: str, **fields: Any) -> Planned | PlanRejected:
    req = dataclasses.replace(make_request(action, catalog, **fields), allow_partial=False)
    return finalize(PLANNER.plan_now(req), req)


def services(result: Planned | PlanRejected) -> list[str]:
    assert isinstance(result, Planned), result
    return sorted(t.service for t in result.plan.tasks)


def purchasing() -> ServiceCatalog:
    """Bills from vendors: one service reads a bill, one pays the vendor."""
    return catalog_of(
        [
            service(
                "BillLookup",
                "Fetches a bill by number: who sent it, its total and due date.",
                {"billId": string()},
                {"payeeId": string(), "total": {"type": "number"}, "dueDate": string()},
                examples=("get the bill",),
            ),
            service(
                "PayVendor",
                "Sends a bank transfer to a vendor to settle a bill.",
                {"billId": string(), "payeeId": string(), "total": {"type": "number"}},
                {"transferId": string()},
                examples=("pay the vendor", "settle a bill with a vendor"),
            ),
        ]
    )


def test_a_question_never_selects_a_service_that_acts() -> None:
    # "vendor" is in PayVendor's name: a question about the vendor of a bill reads it
    result = outcome(
        purchasing(), "Which vendor sent bill B-77 and how much is it for?", billId="B-77"
    )
    assert services(result) == ["BillLookup"]


def test_a_request_to_act_still_selects_it() -> None:
    result = outcome(purchasing(), "Pay the vendor of bill B-77", billId="B-77")
    assert services(result) == ["BillLookup", "PayVendor"]


def test_a_noun_before_a_person_is_a_verb() -> None:
    # "text" is a noun to the lexicon; "text him ..." asks to text him
    parts = request_parts("Cancel the booking and text him the refund details")
    assert [(p.text, p.head_term and p.head_term.lemma) for p in parts] == [
        ("Cancel the booking", "cancel"),
        ("text him the refund details", "text"),
    ]


def test_what_has_happened_is_context_not_a_request() -> None:
    parts = request_parts("Reopen ticket T-1, the customer has been chasing us all week")
    assert [p.text for p in parts] == ["Reopen ticket T-1"]


def test_a_data_field_named_with_its_value_is_data_not_a_request() -> None:
    action = "Offboard EMP-9, final working day 2027-05-02"
    split = split_action(
        action, frozenset({"emp-9", "2027-05-02"}), frozenset({"employee", "id", "final", "day"})
    )
    assert [(p.text, p.request, p.terms) for p in split][1:] == [
        ("final working day 2027-05-02", False, ())
    ]


def hr() -> ServiceCatalog:
    """Leaving and leave: both know the word "leave"; one takes the leaving date."""
    return catalog_of(
        [
            service(
                "StaffLeaving",
                "Closes a leaver's accounts and payroll on their leaving date.",
                {"staffId": string(), "leavingDate": string()},
                {"done": {"type": "boolean"}},
                examples=("someone is leaving the company",),
            ),
            service(
                "LeaveAllowance",
                "Tells how many days of leave a member of staff has left.",
                {"staffId": string()},
                {"days": {"type": "number"}},
            ),
        ]
    )


def test_of_services_a_word_fits_the_one_taking_all_the_data_is_meant() -> None:
    # both run on the staff id; only one takes the date the user gave
    result = outcome(hr(), "Handle the leave for S-4", staffId="S-4", leavingDate="2027-01-31")
    assert services(result) == ["StaffLeaving"]


def claims() -> ServiceCatalog:
    """Three services that all take a claim; one only reads it."""
    return catalog_of(
        [
            service(
                "ClaimLookup",
                "Returns an insurance claim's status and amount.",
                {"claimId": string()},
                {"status": string(), "amount": {"type": "number"}},
            ),
            service(
                "ClaimPayout",
                "Pays out an approved insurance claim.",
                {"claimId": string()},
                {"payoutId": string()},
            ),
            service(
                "ClaimReview",
                "Reviews an insurance claim for signs of fraud.",
                {"claimId": string()},
                {"risk": {"type": "number"}},
            ),
        ]
    )


def test_a_question_about_an_entity_every_service_knows_goes_to_the_one_that_reads() -> None:
    result = outcome(claims(), "Where does claim C-9 stand at the moment?", claimId="C-9")
    assert services(result) == ["ClaimLookup"]


def test_a_phrasal_verb_no_service_has_is_an_idiom_of_request() -> None:
    # "sort out" is no service's verb: what is asked is what follows it
    result = outcome(hr(), "Sort out the leave for S-4", staffId="S-4", leavingDate="2027-01-31")
    assert services(result) == ["StaffLeaving"]
    assert isinstance(result, Planned)
    assert result.plan.tasks[0].serves == "Sort out the leave for S-4"


def test_an_idiom_asking_how_is_a_question() -> None:
    parts = request_parts("Work out how busy the team is")
    assert [(p.idiom, p.idiom_asks) for p in parts] == [(1, True)]


def test_has_to_is_a_modal() -> None:
    parts = request_parts("Booking BK-4 has to be cancelled, the trip is off")
    assert [(p.text, p.head_term and p.head_term.lemma) for p in parts] == [
        ("Booking BK-4 has to be cancelled", "cancel")
    ]


def test_a_participle_after_the_object_is_no_object() -> None:
    # "reminding them of the date" says how; a service sending letters need not know "remind"
    parts = request_parts("Post the member a letter reminding them of the date")
    assert [[p.terms[i].lemma for i in p.objects] for p in parts] == [["member", "letter"]]


def lettings() -> ServiceCatalog:
    """A tenant look-up that yields a lease, and a ledger of the lease's rent."""
    return catalog_of(
        [
            service(
                "TenantFinder",
                "Finds a tenant by name: their lease and the rent they pay.",
                {"name": string()},
                {"tenantId": string(), "leaseId": string()},
            ),
            service(
                "RentAccount",
                "Returns a lease's rent account: balance and arrears.",
                {"leaseId": string()},
                {"balance": {"type": "number"}, "arrears": {"type": "boolean"}},
                examples=("rent account of a lease",),
            ),
        ]
    )


def test_a_question_goes_to_the_service_its_data_feeds() -> None:
    # the look-up takes the name only to give the ledger its lease
    result = outcome(lettings(), "Is Ana Silva behind with the rent?", name="Ana Silva")
    assert isinstance(result, Planned)
    assert "RentAccount" in services(result)


def test_an_example_naming_a_thing_does_not_make_its_first_noun_a_verb() -> None:
    # "rent account of a lease" names an account: RentAccount does not rent anything
    assert vocabulary(lettings()).services["RentAccount"].does is None


def test_a_lone_participle_after_a_comma_says_how_not_what() -> None:
    parts = request_parts("Reserve table TB-2 for Leo, arriving 19:30")
    assert [p.text for p in parts] == ["Reserve table TB-2 for Leo"]
    # with a word of its own, it is a step: "notifying the guest"
    both = request_parts("Reserve table TB-2 for Leo, notifying the guest")
    assert [p.text for p in both] == ["Reserve table TB-2 for Leo", "notifying the guest"]


def test_if_after_a_general_verb_asks_whether() -> None:
    parts = request_parts("Search trains to Leeds and see if the cheapest one is refundable")
    assert [(p.text, p.question) for p in parts] == [
        ("Search trains to Leeds", False),
        ("see if the cheapest one is refundable", True),
    ]
    # after a verb of its own, "if" is a condition
    kept = request_parts("Cancel booking BK-1 if the train is late")
    assert [p.text for p in kept] == ["Cancel booking BK-1"]


def test_a_question_of_data_only_is_answered_by_the_one_reader_of_it() -> None:
    result = outcome(travel(), "Anything from OPO to MAD?", origin="OPO", destination="MAD")
    assert services(result) == ["FlightSearch"]
    # no reader takes a booking: a question never runs the service that acts on it
    refused = outcome(travel(), "Anything on BK-3?", bookingId="BK-3")
    assert isinstance(refused, PlanRejected)
    assert refused.status == "not_actionable"
