from __future__ import annotations

import pytest

from orra_planner import OfflinePlanner, Planned, PlanRejected
from orra_planner.lexicon import family, term
from orra_planner.offline import task_id_for
from orra_planner.strategy import finalize
from tests.planner.catalog import (
    catalog_of,
    ecommerce,
    obj,
    registered,
    request,
    string,
)

CATALOG = catalog_of(ecommerce())
PLANNER = OfflinePlanner()


def plan(action: str, catalog=CATALOG, **fields):
    return PLANNER.plan_now(request(action, catalog, **fields))


def planned(action: str, catalog=CATALOG, **fields) -> Planned:
    outcome = plan(action, catalog, **fields)
    assert isinstance(outcome, Planned), outcome
    assert outcome.planner == "offline"
    return outcome


def inputs(outcome: Planned) -> dict[str, tuple[str, dict]]:
    return {t.id: (t.service, t.input) for t in outcome.plan.tasks}


def test_word_families_and_inflections_meet() -> None:
    pairs = [
        ("delivery", "deliver"),
        ("notify", "notification"),
        ("payment", "pay"),
        ("fraudulent", "fraud"),
    ]
    for a, b in pairs:
        assert family(term(a).lemma) == family(term(b).lemma), (a, b)  # type: ignore[union-attr]
    for a, b in [("refunds", "refund"), ("inventories", "inventory"), ("paid", "pay")]:
        assert term(a).lemma == term(b).lemma, (a, b)  # type: ignore[union-attr]


def test_booking_the_noun_is_not_book_the_verb() -> None:
    noun = term("booking")
    verb = term("booking", verb_position=True)
    assert noun is not None
    assert verb is not None
    assert noun.lemma == "booking"
    assert "book" in noun.alts
    assert verb.lemma == "book"


def test_seed_payment_and_inventory_run_in_one_group() -> None:
    outcome = planned(
        "Process order payment and update inventory",
        orderId="ORD123",
        amount="299.99",
        productId="PROD456",
    )
    assert inputs(outcome) == {
        "payment": ("PaymentService", {"orderId": "ORD123", "amount": 299.99}),
        "inventory": ("InventoryService", {"productId": "PROD456"}),
    }
    assert outcome.plan.parallel_groups == [["payment", "inventory"]]


def test_seed_delivery_estimate_and_notification() -> None:
    outcome = planned(
        "Estimate order delivery and notify customer", orderId="ORD456", customerId="ABC123"
    )
    assert inputs(outcome) == {
        "delivery": ("DeliveryAgent", {"orderId": "ORD456"}),
        "notification": ("NotificationService", {"customerId": "ABC123"}),
    }
    assert outcome.plan.parallel_groups == [["delivery", "notification"]]


def test_full_order_wires_outputs_by_field_name_into_two_groups() -> None:
    outcome = planned(
        "Take the payment, reserve inventory, schedule delivery and notify the customer",
        orderId="ORD1",
        amount="10",
        productId="P1",
        customerId="C1",
    )
    assert inputs(outcome)["delivery"] == (
        "DeliveryAgent",
        {"orderId": "ORD1", "inStock": "$inventory.inStock"},
    )
    assert inputs(outcome)["notification"] == (
        "NotificationService",
        {"customerId": "C1", "paymentStatus": "$payment.paymentStatus"},
    )
    assert outcome.plan.parallel_groups == [["payment", "inventory"], ["delivery", "notification"]]


def test_project_without_services_is_not_actionable() -> None:
    outcome = plan("Process order payment", catalog_of([], project="empty"), orderId="O", amount=1)
    assert isinstance(outcome, PlanRejected)
    assert outcome.status == "not_actionable"
    assert "'empty'" in outcome.reasons[0]


def test_plans_are_deterministic() -> None:
    args = ("Estimate order delivery and notify customer",)
    assert plan(*args, orderId="O", customerId="C") == plan(*args, orderId="O", customerId="C")


def test_task_ids_are_readable_and_unique() -> None:
    taken: set[str] = set()
    assert task_id_for("PaymentService", taken) == "payment"
    assert task_id_for("payment-service", taken) == "payment_2"
    assert task_id_for("FraudCheck", taken) == "fraudCheck"
    assert task_id_for("3DSecure", taken) == "t_3DSecure"


def test_a_part_nothing_serves_is_uncovered_and_the_plan_refused_by_default() -> None:
    # this catalogue has no refund service: the refund part is uncovered
    req = request("Process refund request ensuring it is not fraudulent", CATALOG, orderId="O")
    outcome = PLANNER.plan_now(req)
    assert isinstance(outcome, Planned)
    assert outcome.plan.parts == ["Process refund request", "ensuring it is not fraudulent"]
    assert [(t.service, t.serves) for t in outcome.plan.tasks] == [
        ("FraudCheck", "ensuring it is not fraudulent")
    ]
    [gap] = outcome.plan.uncovered
    assert gap.part == "Process refund request"
    assert "'Process refund request'" in gap.reason
    refused = finalize(outcome, req)
    assert isinstance(refused, PlanRejected)
    assert refused.status == "not_actionable"
    assert refused.reasons[0] == gap.reason
    assert "--allow-partial" in refused.reasons[-1]
    assert refused.uncovered == (gap,)
    # allowed partial: the plan runs, and says what it left out
    partial = request("Process refund request ensuring it is not fraudulent", CATALOG, orderId="O")
    allowed = finalize(outcome, type(partial)(**{**vars(partial), "allow_partial": True}))
    assert isinstance(allowed, Planned)
    assert allowed.plan.uncovered == [gap]


def test_data_no_planned_task_takes_is_refused_naming_the_field() -> None:
    outcome = plan(
        "Arrange delivery and notify the customer",
        orderId="ORD123",
        customerId="CUST456",
        items=[{"id": "PROD789", "quantity": 2}],
    )
    assert isinstance(outcome, PlanRejected)
    assert outcome.status == "invalid"
    assert outcome.reasons == (
        (
            "unused_data: data field 'items' is used by no task "
            "(no registered service accepts an input named 'items')"
        ),
    )


def test_required_input_is_supplied_by_adding_a_producer_that_serves_no_part() -> None:
    catalog = catalog_of(ecommerce(delivery_needs_stock=True))
    outcome = planned("Arrange delivery", catalog, orderId="O1", productId="P1")
    assert inputs(outcome)["delivery"][1] == {"orderId": "O1", "inStock": "$inventory.inStock"}
    assert outcome.plan.parallel_groups == [["inventory"], ["delivery"]]
    assert {t.id: t.serves for t in outcome.plan.tasks} == {
        "inventory": None,
        "delivery": "Arrange delivery",
    }
    assert any("InventoryService: added to provide 'inStock'" in n for n in outcome.notes)


def test_a_requested_service_that_cannot_run_fails_naming_it_and_every_missing_field() -> None:
    events = [e for e in ecommerce() if e.service != "PaymentService"]
    events.append(
        registered(
            "PaymentService",
            "Processes the payment of an order and returns its payment status",
            obj({"orderId": string(), "amount": {"type": "number"}, "currency": string()}),
            obj({"paymentStatus": string()}),
        )
    )
    outcome = plan(
        "Process order payment and update inventory",
        catalog_of(events),
        orderId="O1",
        productId="P1",
    )
    assert isinstance(outcome, PlanRejected)
    assert outcome.status == "invalid"
    assert outcome.reasons == (
        (
            "missing_input: PaymentService (for 'Process order payment') needs 'amount', "
            "'currency': neither action data nor the output of a service that can run"
        ),
    )


def test_unrelated_action_is_not_actionable_with_a_reason_quoting_it() -> None:
    outcome = plan("reconcile last nights invoices")
    assert isinstance(outcome, PlanRejected)
    assert outcome.status == "not_actionable"
    assert outcome.reasons == (
        "nothing registered in project 'default' can reconcile: 'reconcile last nights invoices'",
    )


def test_a_part_every_service_matches_equally_is_too_vague() -> None:
    outcome = plan("Handle the order", orderId="O1")
    assert isinstance(outcome, PlanRejected)
    assert outcome.status == "not_actionable"
    assert outcome.reasons[0].startswith("'Handle the order' is too vague to choose among ")


def test_parts_one_service_serves_are_one_part() -> None:
    outcome = planned("check and reserve stock", productId="P1")
    assert outcome.plan.parts == ["check and reserve stock"]
    assert [(t.service, t.serves) for t in outcome.plan.tasks] == [
        ("InventoryService", "check and reserve stock")
    ]


@pytest.mark.parametrize("action", ["", "   ", "the and of", "please, and then"])
def test_an_action_with_nothing_to_do_gets_a_specific_reason(action: str) -> None:
    outcome = plan(action)
    assert isinstance(outcome, PlanRejected)
    assert outcome.status == "not_actionable"
    reason = outcome.reasons[0]
    assert "empty" in reason if not action.strip() else "no words that say what to do" in reason
