from __future__ import annotations

from orra_planner import OfflinePlanner, Planned, PlanRejected
from orra_planner.offline import match_services, task_id_for
from orra_planner.text import stem
from tests.planner.catalog import (
    catalog_of,
    ecommerce,
    obj,
    optional,
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


def test_stemming_maps_word_families_together() -> None:
    pairs = [
        ("delivery", "deliver"),
        ("notify", "notification"),
        ("payment", "pay"),
        ("fraudulent", "fraud"),
        ("refunds", "refund"),
        ("inventory", "inventories"),
    ]
    for a, b in pairs:
        assert stem(a) == stem(b), (a, b)


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


def test_seed_refund_ensuring_not_fraudulent_uses_the_fraud_check() -> None:
    outcome = planned("Process refund request ensuring it is not fraudulent", orderId="ORD789")
    assert inputs(outcome) == {"fraudCheck": ("FraudCheck", {"orderId": "ORD789"})}


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


def test_seed_new_order_with_items_no_service_accepts_is_invalid_with_a_clear_reason() -> None:
    outcome = plan(
        "Process new order and arrange optimal delivery",
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
    # customerId was not left behind: the notification service was added to use it
    assert any(
        "NotificationService: added to use data field 'customerId'" in n for n in outcome.notes
    )


def test_seed_new_order_with_an_inventory_service_that_takes_items() -> None:
    events = [e for e in ecommerce() if e.service != "InventoryService"]
    events.append(
        registered(
            "InventoryService",
            "Checks product stock and reserves inventory for an order",
            obj(
                {
                    "productId": optional(string()),
                    "items": {"type": "array", "items": {"type": "object"}},
                },
                [],
            ),
            obj({"inStock": {"type": "boolean"}}),
        )
    )
    outcome = planned(
        "Process new order and arrange optimal delivery",
        catalog_of(events),
        orderId="ORD123",
        customerId="CUST456",
        items=[{"id": "PROD789", "quantity": 2}],
    )
    assert inputs(outcome) == {
        "inventory": ("InventoryService", {"items": [{"id": "PROD789", "quantity": 2}]}),
        "notification": ("NotificationService", {"customerId": "CUST456"}),
        "delivery": ("DeliveryAgent", {"orderId": "ORD123", "inStock": "$inventory.inStock"}),
    }
    assert outcome.plan.parallel_groups == [["inventory", "notification"], ["delivery"]]


def test_required_input_is_supplied_by_adding_a_producer() -> None:
    catalog = catalog_of(ecommerce(delivery_needs_stock=True))
    outcome = OfflinePlanner(complete_from_data=False).plan_now(
        request("Arrange delivery", catalog, orderId="O1", productId="P1")
    )
    assert isinstance(outcome, Planned)
    assert inputs(outcome)["delivery"][1] == {"orderId": "O1", "inStock": "$inventory.inStock"}
    assert outcome.plan.parallel_groups == [["inventory"], ["delivery"]]
    assert any("InventoryService: added to provide 'inStock'" in n for n in outcome.notes)


def test_a_named_service_that_cannot_run_makes_the_plan_invalid() -> None:
    outcome = plan("Process order payment and update inventory", orderId="O1", productId="P1")
    assert isinstance(outcome, PlanRejected)
    assert outcome.status == "invalid"
    assert outcome.reasons == (
        (
            "missing_input: PaymentService (asked for by the action) needs 'amount', which "
            "is neither an action data field nor an output of a service that can run"
        ),
    )


def test_unrelated_action_is_not_actionable() -> None:
    outcome = plan("reconcile last nights invoices")
    assert isinstance(outcome, PlanRejected)
    assert outcome.status == "not_actionable"
    assert "reconcile last nights invoices" in outcome.reasons[0]


def test_project_without_services_is_not_actionable() -> None:
    outcome = plan("Process order payment", catalog_of([], project="empty"), orderId="O", amount=1)
    assert isinstance(outcome, PlanRejected)
    assert outcome.status == "not_actionable"
    assert "'empty'" in outcome.reasons[0]


def test_words_most_services_share_do_not_select() -> None:
    matched = {m.service for m in match_services("Look up the order", CATALOG)}
    assert matched == set()


def test_plans_are_deterministic() -> None:
    args = ("Estimate order delivery and notify customer",)
    assert plan(*args, orderId="O", customerId="C") == plan(*args, orderId="O", customerId="C")


def test_task_ids_are_readable_and_unique() -> None:
    taken: set[str] = set()
    assert task_id_for("PaymentService", taken) == "payment"
    assert task_id_for("payment-service", taken) == "payment_2"
    assert task_id_for("FraudCheck", taken) == "fraudCheck"
    assert task_id_for("3DSecure", taken) == "t_3DSecure"
