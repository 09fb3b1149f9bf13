"""How the offline planner reads wording it was not tuned on (issue 15, held-out misses):
names and asides, phrasal verbs, "that" clauses, questions, synonyms, the data given."""

from __future__ import annotations

import dataclasses
from typing import Any

from orra_planner import OfflinePlanner, Planned, PlanRejected, ServiceCatalog
from orra_planner.parts import data_fields, data_values, request_parts
from orra_planner.strategy import finalize
from tests.planner.catalog import catalog_of, data, request, string
from tests.planner.domains import service

PLANNER = OfflinePlanner()


def outcome(catalog: ServiceCatalog, action: str, **fields: Any) -> Planned | PlanRejected:
    req = dataclasses.replace(request(action, catalog, **fields), allow_partial=False)
    return finalize(PLANNER.plan_now(req), req)


def services(result: Planned | PlanRejected) -> list[str]:
    assert isinstance(result, Planned), result
    return [t.service for t in result.plan.tasks]


def parts(action: str, **given: Any) -> list[str]:
    fields = data(**given)
    return [p.text for p in request_parts(action, data_values(fields), data_fields(fields))]


def people() -> ServiceCatalog:
    date = {"type": "string", "format": "date"}
    return catalog_of(
        [
            service(
                "OnboardEmployee",
                "Creates a new hire's employee record",
                {"candidateId": string(), "startDate": date},
                {"employeeId": string()},
            ),
            service(
                "OffboardEmployee",
                "Revokes a departing employee's access",
                {"employeeId": string(), "lastDay": date},
                {"offboardingId": string()},
            ),
            service(
                "LeaveBalance",
                "Returns how many days of paid leave an employee has left",
                {"employeeId": string()},
                {"daysLeft": {"type": "number"}},
                examples=("how much holiday is left",),
            ),
            service(
                "RequestLeave",
                "Submits a time-off request for an employee",
                {"employeeId": string(), "startDate": date, "endDate": date},
                {"leaveRequestId": string()},
                examples=("request vacation",),
            ),
            service(
                "GrantAccess",
                "Gives an employee access to internal applications",
                {"employeeId": string(), "applications": {"type": "array", "items": string()}},
                {"granted": {"type": "array", "items": string()}},
                required=["employeeId"],
            ),
        ]
    )


def invoices() -> ServiceCatalog:
    return catalog_of(
        [
            service(
                "InvoiceLookup",
                "Fetches a supplier invoice by number",
                {"invoiceId": string()},
                {"status": {"type": "string", "enum": ["received", "approved", "paid"]}},
            ),
            service(
                "PaySupplier",
                "Sends a bank transfer to a supplier to settle an invoice",
                {"invoiceId": string()},
                {"transferId": string()},
                examples=("pay the supplier",),
            ),
            service(
                "ApproveInvoice",
                "Records a manager's approval of an invoice",
                {"invoiceId": string(), "approver": string()},
                {"approved": {"type": "boolean"}},
            ),
            service(
                "SupplierSearch",
                "Finds suppliers by name",
                {"query": string()},
                {"supplierId": string()},
                examples=("look up a supplier by VAT number",),
            ),
        ]
    )


def test_a_name_and_an_aside_opening_the_action_are_not_requests() -> None:
    action = "Dana Ruiz (EMP-2213) is leaving us on 31 March 2027, process her departure"
    assert parts(action, employeeId="EMP-2213") == ["process her departure"]
    result = outcome(people(), action, employeeId="EMP-2213", lastDay="2027-03-31")
    assert services(result) == ["OffboardEmployee"]


def test_a_statement_of_what_happened_is_context() -> None:
    assert parts("Scrap trip BK-1, the conference went virtual") == ["Scrap trip BK-1"]
    assert parts("Refund 34.50 on ORD-1, the item arrived damaged") == ["Refund 34.50 on ORD-1"]


def test_list_values_are_arguments_not_requests() -> None:
    action = "Give EMP-1 access to Jira and Slack"
    assert parts(action, applications=["jira", "slack"]) == ["Give EMP-1 access to Jira"]
    result = outcome(people(), action, employeeId="EMP-1", applications=["jira", "slack"])
    assert services(result) == ["GrantAccess"]


def test_a_typo_between_two_words_goes_to_the_missing_letter() -> None:
    result = outcome(people(), "Ofboard EMP-2212", employeeId="EMP-2212", lastDay="2027-01-31")
    assert services(result) == ["OffboardEmployee"]
    assert isinstance(result, Planned)
    assert "read 'ofboard' as 'offboard' in 'Ofboard EMP-2212'" in result.notes


def test_a_phrasal_verb_is_one_verb() -> None:
    # "look up" is InvoiceLookup's name; SupplierSearch's "look up a supplier" knows no
    # invoice
    result = outcome(invoices(), "Look up invoice INV-9120", invoiceId="INV-9120")
    assert services(result) == ["InvoiceLookup"]


def test_a_question_is_answered_by_what_a_service_returns_never_by_doing_it() -> None:
    result = outcome(invoices(), "Has invoice INV-9126 been paid yet?", invoiceId="INV-9126")
    assert services(result) == ["InvoiceLookup"]


def test_a_field_named_with_its_value_is_data_and_an_unreadable_verb_goes_by_the_data() -> None:
    action = "Greenlight invoice INV-9122, approver Tomás Ruiz"
    assert parts(action, approver="Tomás Ruiz") == ["Greenlight invoice INV-9122"]
    result = outcome(invoices(), action, invoiceId="INV-9122", approver="Tomás Ruiz")
    assert services(result) == ["ApproveInvoice"]
    # a verb the planner can read, that nothing does, is still refused
    refused = outcome(invoices(), "Print invoice INV-9122", invoiceId="INV-9122")
    assert isinstance(refused, PlanRejected)
    assert refused.reasons[0].endswith("can print: 'Print invoice INV-9122'")


def test_a_synonym_and_the_data_pick_the_service() -> None:
    # "holiday" is LeaveBalance's word; its WordNet synonym "vacation" is RequestLeave's,
    # and only RequestLeave takes the dates
    action = "EMP-2211 wants to go on holiday from 10 to 21 August 2027"
    result = outcome(
        people(), action, employeeId="EMP-2211", startDate="2027-08-10", endDate="2027-08-21"
    )
    assert services(result) == ["RequestLeave"]
    balance = outcome(people(), "How much holiday does EMP-2211 have left?", employeeId="E1")
    assert services(balance) == ["LeaveBalance"]


def test_what_to_say_is_not_a_request() -> None:
    shop = catalog_of(
        [
            service(
                "NotificationService",
                "Sends a message to a customer",
                {"customerId": string(), "message": string()},
                {"sent": {"type": "boolean"}},
                required=["customerId"],
                examples=("text the buyer",),
            ),
            service(
                "ShippingService",
                "Ships an order to the customer",
                {"orderId": string()},
                {"trackingNumber": string()},
            ),
            service(
                "PaymentService",
                "Charges the customer's card for an order",
                {"orderId": string(), "customerId": string()},
                {"paymentStatus": string()},
                required=["orderId"],
            ),
        ]
    )
    for action in (
        "Tell customer CUS-4410 that their order has shipped",
        "Text customer CUS-4410 that their payment was declined",
    ):
        result = outcome(shop, action, customerId="CUS-4410", message="Your order shipped.")
        assert services(result) == ["NotificationService"], action


def test_the_catalogues_examples_teach_a_verb_for_what_services_do() -> None:
    travel = catalog_of(
        [
            service(
                "FlightSearch", "Searches flights", {"origin": string()}, {"offerId": string()},
                examples=("look for a plane ticket",),
            ),
            service(
                "HotelSearch", "Searches hotel rooms", {"city": string()}, {"hotelId": string()},
                examples=("look for accommodation",),
            ),
            service(
                "CarRentalSearch", "Searches rental cars", {"pickupLocation": string()},
                {"carOfferId": string()},
            ),
        ]
    )  # fmt: skip
    result = outcome(travel, "Look for a rental car in Faro", pickupLocation="FAO")
    assert services(result) == ["CarRentalSearch"]


def test_a_question_opening_with_when_is_not_a_condition() -> None:
    result = outcome(invoices(), "When is invoice INV-1 due?", invoiceId="INV-1")
    assert services(result) == ["InvoiceLookup"]


def test_a_subject_with_an_id_and_a_finite_verb_is_a_statement() -> None:
    action = "Onboard the new starter: candidate CAND-1 starts on 2027-04-01"
    assert parts(action, candidateId="CAND-1") == ["Onboard the new starter"]


def test_a_verb_is_served_only_by_what_a_service_says_it_does() -> None:
    shop = catalog_of(
        [
            service(
                "FraudCheck",
                "Scores the fraud risk of an order from the shipping address",
                {"orderId": string()},
                {"riskScore": {"type": "number"}},
                examples=("screen the order for fraud",),
            ),
            service(
                "ApproveOrder",
                "Records a manager's approval of an order so that it can be shipped",
                {"orderId": string()},
                {"approved": {"type": "boolean"}},
                examples=("approve an order",),
            ),
        ]
    )
    for action in ("Ship a replacement screen for order ORD-2", "Ship order ORD-2"):
        refused = outcome(shop, action, orderId="ORD-2")
        assert isinstance(refused, PlanRejected), action
        assert refused.reasons[0].endswith(f"can ship: {action!r}")


def test_a_data_field_named_with_another_reference_word_is_the_input() -> None:
    result = outcome(invoices(), "Look up invoice INV-7", invoiceRef="INV-7")
    assert isinstance(result, Planned)
    assert [(t.service, t.input) for t in result.plan.tasks] == [
        ("InvoiceLookup", {"invoiceId": "INV-7"})
    ]


def test_a_thousands_separator_does_not_split_a_clause() -> None:
    # "1,240.00" is one amount: "240.00 payment on ORD-1" is no request of its own
    action = "Before we take the 1,240.00 payment on ORD-1, refund 1,200 on ORD-2"
    assert parts(action) == ["refund 1,200 on ORD-2"]


def test_a_clause_whose_verb_is_past_states_what_happened() -> None:
    # opening with a past form ("came up"), after a subject ("has handed in"), inside a
    # data value ("arrived broken"), in an aside ("born ..."), and "she's" as "she is"
    assert parts("Something came up, please scrap trip BK-1") == ["please scrap trip BK-1"]
    action = "Refund 24.99 on ORD-1, the mug arrived broken"
    assert parts(action, reason="arrived broken") == ["Refund 24.99 on ORD-1"]
    assert parts("Onboard CAND-1 (born 1984-02-17)") == ["Onboard CAND-1"]
    assert parts("Approve INV-1, she's the budget holder") == ["Approve INV-1"]
    assert parts("Offboard EMP-1, EMP-1 has handed in their notice") == ["Offboard EMP-1"]
    # a past form describing the noun after it is no statement
    assert parts("Charge ORD-1, then translated receipts go to the customer") == [
        "Charge ORD-1",
        "translated receipts go to the customer",
    ]
    # a base form opening the clause is an instruction, even one that is also a past form
    assert parts("Find hotels in Porto") == ["Find hotels in Porto"]
    assert parts("Set up EMP-1's laptop") == ["Set up EMP-1's laptop"]


def test_pls_is_please_and_set_aside_is_one_verb() -> None:
    result = outcome(people(), "pls ofboard EMP-2212", employeeId="EMP-2212", lastDay="2027-01-31")
    assert services(result) == ["OffboardEmployee"]
    shop = catalog_of(
        [
            service(
                "InventoryService",
                "Checks stock and reserves units of a product",
                {"productId": string(), "quantity": {"type": "integer"}},
                {"reserved": {"type": "boolean"}},
                examples=("reserve units of a product",),
            )
        ]
    )
    # WordNet's first sense of "set aside" is "reserve"
    result = outcome(shop, "set aside 3 of PROD-4410", productId="PROD-4410", quantity=3)
    assert services(result) == ["InventoryService"]


def test_a_question_about_a_booking_does_not_ask_to_book() -> None:
    [part] = request_parts("What's in booking BK-66001?")
    assert part.head_term is not None
    assert (part.head_term.lemma, part.head_term.verb) == ("booking", False)


def test_a_synonym_shared_with_a_services_word_matches() -> None:
    # WordNet's first senses of "pay back" (reward, repay) and of "refund" (give back,
    # repay, return) share "repay"; neither lists the other
    shop = catalog_of(
        [
            service(
                "RefundService",
                "Refunds an order to the customer's card",
                {"orderId": string(), "amount": {"type": "number"}},
                {"refundId": string()},
                examples=("refund the customer",),
            ),
            service(
                "PaymentService",
                "Charges the customer's card for an order",
                {"orderId": string(), "amount": {"type": "number"}},
                {"paymentId": string()},
                examples=("charge the customer",),
            ),
        ]
    )
    action = "Pay back 60.00 to whoever bought order ORD-7712"
    result = outcome(shop, action, orderId="ORD-7712", amount=60.0)
    assert services(result) == ["RefundService"]


def test_a_synonym_of_several_services_words_serves_none_of_them() -> None:
    # WordNet's first sense of "exit" is "leave": LeaveBalance's and RequestLeave's word,
    # and none of them has "exit" itself; running them all would add what nobody asked for
    result = outcome(people(), "Exit EMP-1 on 2027-01-31", employeeId="EMP-1", lastDay="2027-01-31")
    assert isinstance(result, PlanRejected)
    assert result.status == "not_actionable"
    assert "'Exit EMP-1 on 2027-01-31' is too vague to choose among" in result.reasons[0]


def test_a_general_verb_on_a_pronoun_acts_on_what_was_said() -> None:
    action = "EMP-1 has announced their departure. Please process it."
    assert parts(action) == ["Please process it"]
    result = outcome(people(), action, employeeId="EMP-1", lastDay="2027-01-31")
    assert services(result) == ["OffboardEmployee"]
    # what was said, if nothing serves it, is refused quoting the user's words
    refused = outcome(people(), "The contract is in German. Please deal with it.")
    assert isinstance(refused, PlanRejected)
    assert "'Please deal with it'" in refused.reasons[0]


def test_a_phrasal_verb_split_by_a_pronoun_is_one_verb() -> None:
    [part] = request_parts("Set them up on Monday")
    assert part.head_term is not None
    assert part.head_term.lemma == "setup"
