"""The planner's log context and its handling of malformed registry messages."""

from __future__ import annotations

import dataclasses

import msgspec
import structlog

from orra_events import Bus, TaskCompleted, Topology, encode
from orra_events.bus import (
    HDR_ORIGINAL_STREAM,
    HDR_ORIGINAL_SUBJECT,
    HDR_REASON,
)
from orra_planner import OfflinePlanner, PlanOutcome, PlanRequest, RegistryFollower
from orra_planner.app import setup
from tests.planner.catalog import action, ecommerce
from tests.planner.json_logs import json_logs
from tests.planner.test_app import SETTINGS, consumer_idle, plan_event, register

helper_log = structlog.get_logger("tests.planner.helper")


class Chatty:
    """A strategy that logs through a logger of its own, passing no id at all."""

    name = "chatty"

    def __init__(self) -> None:
        self.inner = OfflinePlanner()

    async def plan(self, request: PlanRequest) -> PlanOutcome:
        helper_log.info("helper planning", action=request.action)
        return await self.inner.plan(request)


async def test_log_lines_written_while_an_action_is_handled_carry_its_orchestration_id(
    nats_url: str, topology: Topology, bus: Bus
) -> None:
    await register(bus)
    orchs = ["o_log1", "o_log2", "o_log3"]
    with json_logs("planner") as logs:
        pbus = await Bus.connect(nats_url, topology, name="planner-under-test")
        # One action at a time: every message is handled in the subscription's own task,
        # so an id left bound would show on the next action's lines.
        stop = await setup(pbus, dataclasses.replace(SETTINGS, concurrency=1), Chatty())
        try:
            for orch in orchs:
                await bus.publish(action(orch, "Update inventory", productId="P"))
                await plan_event(bus, orch)
            await consumer_idle(bus)
        finally:
            await stop()
            await pbus.close()
        helper_log.info("after the actions")

    helper = logs.where(event="helper planning")
    assert [line.get("orchestration_id") for line in helper] == orchs
    for line in helper:
        assert (line["service"], line["level"], line["action"]) == (
            "planner",
            "info",
            "Update inventory",
        )
    created = logs.where(event="plan created")  # INFO once per 10 s, else DEBUG
    assert [line["orchestration_id"] for line in created] == orchs
    for event in ("planner started", "after the actions"):
        [line] = logs.where(event=event)
        assert "orchestration_id" not in line, line


async def test_malformed_registry_messages_are_parked_once_and_the_registry_goes_on(
    bus: Bus,
) -> None:
    t = bus.topology
    payment = ecommerce()[0]
    misplaced = TaskCompleted(
        event_id="r:o_y:t:1",
        orchestration_id="o_y",
        task_id="t",
        service="S",
        output={},
        attempt=1,
        idempotency_key="o_y:t",
        started_at=1.0,
        duration_ms=1.0,
    )
    poison = {
        t.subject("service.registered", "Broken"): (b"{not json", "MalformedEvent"),
        t.subject("service.heartbeat", "Wrong"): (encode(misplaced), "got task.completed"),
        t.subject("service.registered", "Other"): (
            encode(msgspec.structs.replace(payment, event_id="reg:elsewhere")),
            f"for {payment.service} on subject",
        ),
        t.service_subject("service.registered", "Chatty", "1"): (
            encode(
                msgspec.structs.replace(
                    payment, service="Chatty", event_id="reg:chatty", examples=["ok", " "]
                )
            ),
            "registration of Chatty refused: examples[1] is empty",
        ),
    }
    for subject, (data, _) in poison.items():
        await bus.js.publish(subject, data)
    follower = RegistryFollower(bus)
    await follower.start(5.0)
    try:
        await register(bus)  # the registry keeps following
        assert await follower.sync(5.0)
        assert "PaymentService" in follower.registry.catalog("default")
        assert "Other" not in follower.registry.catalog("default")
        assert "Chatty" not in follower.registry.catalog("default")
        for subject, (data, needle) in poison.items():
            parked = await bus.js.get_last_msg(t.dlq_stream, t.dead_letter(subject))
            assert parked.data == data
            headers = parked.headers or {}
            assert headers[HDR_ORIGINAL_SUBJECT] == subject
            stream = t.heartbeats_stream if ".heartbeat." in subject else t.services_stream
            assert headers[HDR_ORIGINAL_STREAM] == stream
            assert needle in headers[HDR_REASON], headers[HDR_REASON]
        # A replica, or a restart, that reads them again parks nothing new.
        again = RegistryFollower(bus)
        await again.start(5.0)
        await again.stop()
        info = await bus.js.stream_info(t.dlq_stream)
        assert info.state.messages == len(poison)
    finally:
        await follower.stop()
