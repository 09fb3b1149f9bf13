"""The planner's registry: one definition per name and version, versions, down services."""

from __future__ import annotations

import msgspec
import pytest

from orra_events import (
    Bus,
    Plan,
    PlanCreated,
    PlanFailed,
    PlanTask,
    ServiceHeartbeat,
    ServiceRegistered,
    Topology,
)
from orra_events.bus import HDR_ORIGINAL_SUBJECT, HDR_REASON
from orra_events.liveness import LivenessSettings
from orra_planner import RegistryFollower
from orra_planner.registry import Registry
from tests.planner.catalog import action, ecommerce, obj, registered, string
from tests.planner.test_app import plan_event, register, start_planner

NOW = 1_000_000.0
SETTINGS = LivenessSettings(factor=3.0, down_after_s=300.0)


def reg(name: str = "PaymentService", version: str = "1", at: float = NOW, **kw: object):
    base = registered(
        name,
        str(kw.pop("description", "Processes the payment of an order")),
        obj({"orderId": string()}),
        obj({"paymentStatus": string()}),
    )
    kw.setdefault("event_id", f"reg:{name}:{version}")
    return msgspec.structs.replace(base, version=version, at=at, **kw)


def beat(name: str = "PaymentService", version: str | None = "1", at: float = NOW):
    return ServiceHeartbeat(
        event_id=f"hb:{name}:{version}:{at}",
        service=name,
        instance_id="i1",
        interval_s=5.0,
        version=version,
        at=at,
    )


# --- the pure fold -----------------------------------------------------------------------------


def test_the_first_definition_of_a_name_and_version_counts() -> None:
    registry = Registry(SETTINGS)
    assert registry.apply(reg()).accepted
    again = registry.apply(reg(at=NOW + 1))
    assert not again.accepted  # a replica: the same registration, neither new nor refused
    assert not again.refused
    other = registry.apply(reg(description="Charges a card", at=NOW + 2))
    assert other.refused
    assert other.reason is not None
    assert other.reason.startswith("service PaymentService version 1 is already registered")
    spec = registry.catalog("default", now=NOW + 3)["PaymentService"]
    assert spec.description == "Processes the payment of an order"


def test_a_higher_version_replaces_the_lower_one_for_new_plans() -> None:
    registry = Registry(SETTINGS)
    registry.apply(reg(version="1"))
    registry.apply(reg(version="1.10", description="Charges in any currency"))
    registry.apply(reg(version="1.9", description="Older than 1.10"))
    spec = registry.catalog("default", now=NOW)["PaymentService"]
    assert (spec.version, spec.description) == ("1.10", "Charges in any currency")


def test_examples_reach_the_spec() -> None:
    registry = Registry(SETTINGS)
    registry.apply(reg(examples=["charge the card"]))
    spec = registry.catalog("default", now=NOW)["PaymentService"]
    assert spec.examples == ("charge the card",)
    assert spec.to_event().examples == ["charge the card"]


def test_plans_carry_the_approval_gate_of_the_version_they_were_planned_against() -> None:
    registry = Registry(SETTINGS)
    registry.apply(reg(version="1"))
    registry.apply(reg(name="RefundService", approval_when="amount > 1000"))
    catalog = registry.catalog("default", now=NOW)
    assert catalog["RefundService"].to_event().approval_when == "amount > 1000"
    plan = Plan(
        tasks=[
            PlanTask(id="payment", service="PaymentService"),
            PlanTask(id="refund", service="RefundService"),
        ],
        parallel_groups=[["payment", "refund"]],
    )
    stamped = {t.id: t.gate for t in catalog.versioned(plan).tasks}
    assert stamped == {"payment": None, "refund": "amount > 1000"}
    # a malformed condition is refused and the registered definition stays
    refused = registry.apply(reg(name="RefundService", version="2", approval_when="amount >"))
    assert refused.refused
    assert "approval condition 'amount >'" in (refused.reason or "")
    assert registry.catalog("default", now=NOW)["RefundService"].version == "1"


def test_a_service_with_no_live_instance_for_the_set_time_is_left_out() -> None:
    registry = Registry(SETTINGS)
    registry.apply(reg(at=NOW - 3600))
    registry.apply(reg("InventoryService", at=NOW - 3600))
    registry.observe(beat(at=NOW - 301))
    registry.observe(beat("InventoryService", at=NOW - 2))
    catalog = registry.catalog("default", now=NOW)
    assert list(catalog) == ["InventoryService"]
    assert catalog.down == {"PaymentService": NOW - 301}
    assert catalog.down_reasons(now=NOW) == ["PaymentService has had no live instance for 5 min"]
    assert "PaymentService" in catalog.with_unavailable()
    # an instance comes back: in the next plans again
    registry.observe(beat(at=NOW + 1))
    assert "PaymentService" in registry.catalog("default", now=NOW + 2)


def test_unhealthy_is_not_down() -> None:
    registry = Registry(SETTINGS)
    registry.apply(reg(at=NOW - 3600))
    registry.observe(beat(at=NOW - 60))  # 12 intervals missed: unhealthy, tasks would wait
    assert "PaymentService" in registry.catalog("default", now=NOW)


def test_without_any_heartbeat_the_registration_is_the_last_sign_of_life() -> None:
    registry = Registry(SETTINGS)
    registry.apply(reg(at=NOW - 10))
    assert "PaymentService" in registry.catalog("default", now=NOW)
    assert registry.catalog("default", now=NOW + 300).down == {"PaymentService": NOW - 10}


def test_new_plans_use_the_highest_version_that_is_not_down() -> None:
    """A rolled back upgrade: version 2 stopped, version 1 still runs."""
    registry = Registry(SETTINGS)
    registry.apply(reg(version="1", at=NOW - 3600))
    registry.apply(reg(version="2", at=NOW - 1800, description="Version two"))
    registry.observe(beat(version="2", at=NOW - 1000))
    registry.observe(beat(version="1", at=NOW - 1))
    spec = registry.catalog("default", now=NOW)["PaymentService"]
    assert spec.version == "1"


def test_a_heartbeat_without_a_version_counts_for_every_version() -> None:
    registry = Registry(SETTINGS)
    registry.apply(reg(version="2", at=NOW - 3600))
    registry.observe(beat(version=None, at=NOW - 1))
    assert registry.catalog("default", now=NOW)["PaymentService"].version == "2"


def test_the_catalogue_is_kept_while_nothing_changes() -> None:
    registry = Registry(SETTINGS)
    registry.apply(reg())
    first = registry.catalog("default", now=NOW)
    assert registry.catalog("default", now=NOW + 1) is first
    registry.apply(reg(version="2"))
    assert registry.catalog("default", now=NOW + 1) is not first


def test_projects_see_their_own_versions() -> None:
    registry = Registry(SETTINGS)
    registry.apply(reg(version="1"))
    registry.apply(reg(version="2", project="acme"))
    assert registry.catalog("default", now=NOW)["PaymentService"].version == "1"
    assert registry.catalog("acme", now=NOW)["PaymentService"].version == "2"
    # another project cannot take a registered name and version
    assert registry.apply(reg(version="1", project="acme")).refused


# --- against the broker ---------------------------------------------------------------------


async def test_a_conflicting_registration_is_parked_and_the_first_one_stays(bus: Bus) -> None:
    """From a publisher that is not the SDK (the subject of older SDKs), and after a restart."""
    t = bus.topology
    first = reg(at=NOW)
    await bus.publish(first)
    intruder = reg(description="Charges a gift card", at=NOW + 1)
    legacy = t.service_subject("service.registered", "PaymentService", None)
    await bus.publish(msgspec.structs.replace(intruder, event_id="reg:intruder"), subject=legacy)
    for _ in range(2):  # a restart folds the stream again: the same outcome
        follower = RegistryFollower(bus)
        await follower.start(5.0)
        try:
            spec = follower.registry.catalog("default", now=NOW + 2)["PaymentService"]
            assert spec.description == "Processes the payment of an order"
        finally:
            await follower.stop()
    parked = await bus.js.get_last_msg(t.dlq_stream, t.dead_letter(legacy))
    headers = parked.headers or {}
    assert headers[HDR_ORIGINAL_SUBJECT] == legacy
    assert (
        "is already registered with another definition (description differs)"
        in (headers[HDR_REASON])
    )
    assert (await bus.js.stream_info(t.dlq_stream)).state.messages == 1


async def test_the_broker_refuses_a_second_registration_on_a_subject(bus: Bus) -> None:
    """Even a publisher without the SDK's expectation cannot replace a registration."""
    from nats.js.errors import APIError

    await bus.publish(reg())
    with pytest.raises(APIError) as caught:
        await bus.publish(reg(description="Charges a gift card", event_id="reg:other"))
    assert caught.value.err_code == 10077  # maximum messages per subject exceeded
    raw = await bus.js.get_last_msg(
        bus.topology.services_stream,
        bus.topology.service_subject("service.registered", "PaymentService", "1"),
    )
    assert b"Processes the payment" in (raw.data or b"")


async def test_plans_record_the_version_of_each_task(
    nats_url: str, topology: Topology, bus: Bus
) -> None:
    await register(bus)
    pbus, stop = await start_planner(nats_url, topology)
    try:
        await bus.publish(action("o_v1", "Process order payment", orderId="O", amount="1"))
        first = await plan_event(bus, "o_v1")
        assert isinstance(first, PlanCreated)
        assert [t.version for t in first.plan.tasks] == ["1"]
        payment = ecommerce()[0]
        await bus.publish(
            msgspec.structs.replace(payment, event_id="reg:PaymentService:2", version="2")
        )
        await bus.publish(action("o_v2", "Process order payment", orderId="O", amount="1"))
        second = await plan_event(bus, "o_v2")
        assert isinstance(second, PlanCreated)
        assert [t.version for t in second.plan.tasks] == ["2"]
    finally:
        await stop()  # type: ignore[operator]
        await pbus.close()


async def test_an_action_that_needs_a_down_service_is_refused_saying_so(
    nats_url: str, topology: Topology, bus: Bus
) -> None:
    import time

    now = time.time()
    for event in ecommerce():
        await bus.publish(msgspec.structs.replace(event, at=now - 3600))
    for service in ("InventoryService", "DeliveryAgent", "NotificationService", "FraudCheck"):
        await bus.publish(beat(service, at=now))
    await bus.publish(beat("PaymentService", at=now - 600))  # its last instance left 10 min ago
    pbus, stop = await start_planner(nats_url, topology)
    try:
        await bus.publish(
            action(
                "o_down",
                "Process order payment and update inventory",
                orderId="ORD123",
                amount="299.99",
                productId="PROD456",
            )
        )
        failed = await plan_event(bus, "o_down")
        assert isinstance(failed, PlanFailed)
        assert failed.status == "not_actionable"
        assert failed.reasons == [
            (
                "PaymentService has had no live instance for 10 min: it is left out of new "
                "plans until an instance of it runs again"
            )
        ]
        # an action that does not need it is planned as usual
        await bus.publish(action("o_up", "Update inventory", productId="PROD456"))
        created = await plan_event(bus, "o_up")
        assert isinstance(created, PlanCreated)
        assert [t.service for t in created.plan.tasks] == ["InventoryService"]
    finally:
        await stop()  # type: ignore[operator]
        await pbus.close()


async def test_a_restarted_planner_knows_which_services_are_live(
    nats_url: str, topology: Topology, bus: Bus
) -> None:
    """Heartbeats are loaded before the first plan: old registrations are not taken for down."""
    import time

    now = time.time()
    for event in ecommerce():
        await bus.publish(msgspec.structs.replace(event, at=now - 3600))
        await bus.publish(beat(event.service, at=now))
    pbus, stop = await start_planner(nats_url, topology)
    try:
        await bus.publish(action("o_live", "Process order payment", orderId="O", amount="1"))
        created = await plan_event(bus, "o_live")
        assert isinstance(created, PlanCreated)
    finally:
        await stop()  # type: ignore[operator]
        await pbus.close()


def test_registered_factory_is_version_one() -> None:
    assert isinstance(reg(), ServiceRegistered)
    assert reg().version == "1"
