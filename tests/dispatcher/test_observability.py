"""The dispatcher's log context and its handling of malformed registry messages."""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec

from orra_dispatcher import DispatcherSettings
from orra_dispatcher.registry import ServiceRegistry
from orra_events import (
    Bus,
    OrchestrationDone,
    ServiceHeartbeat,
    ServiceRegistered,
    TaskCompleted,
    TaskDispatched,
    encode,
    new_orchestration_id,
)
from orra_events.bus import (
    HDR_ORIGINAL_STREAM,
    HDR_ORIGINAL_SUBJECT,
    HDR_REASON,
)
from tests.dispatcher.conftest import FAST, FakeWorker, Recorder, plan_created, seed_plan
from tests.planner.json_logs import json_logs


def completed(orchestration_id: str, task_id: str) -> TaskCompleted:
    return TaskCompleted(
        event_id=f"r:{orchestration_id}:{task_id}:1",
        orchestration_id=orchestration_id,
        task_id=task_id,
        service="PaymentService",
        output={},
        attempt=1,
        idempotency_key=f"{orchestration_id}:{task_id}",
        started_at=0.0,
        duration_ms=1.0,
    )


async def test_log_lines_written_while_an_input_is_handled_carry_its_ids(
    bus: Bus, worker: FakeWorker, recorder: Recorder, start_dispatcher: Any
) -> None:
    async def hangs_first(task: TaskDispatched) -> dict[str, Any] | None:
        return None if task.attempt == 1 else {"inStock": True}

    worker.behaviours["InventoryService"] = hangs_first
    topo = bus.topology
    ghost = new_orchestration_id()  # never started: retried, then parked by its drain task
    misplaced = new_orchestration_id()  # on another orchestration's subject: parked at intake
    with json_logs("dispatcher") as logs:
        await start_dispatcher(DispatcherSettings(**{**FAST.__dict__, "max_deliver": 2}))
        await bus.publish(completed(ghost, "payment"))
        await bus.publish(
            completed(misplaced, "inventory"),
            subject=topo.subject("task.completed", "o_someone_else"),
        )
        event = plan_created(seed_plan(), task_timeout_s=0.3)
        await bus.publish(event)
        assert isinstance(await recorder.terminal(event.orchestration_id), OrchestrationDone)

        async def parked() -> list[dict[str, Any]]:
            while len(lines := logs.where(event="message parked on dead-letter subject")) < 2:
                await asyncio.sleep(0.05)
            return lines

        lines = await asyncio.wait_for(parked(), 10)
    # orra_events' Bus.park, given no id, logs the input's ids: at intake, and in the drain.
    by_orchestration = {line.get("orchestration_id"): line for line in lines}
    assert set(by_orchestration) == {ghost, misplaced}
    assert by_orchestration[ghost]["task_id"] == "payment"
    assert "unknown orchestration" in by_orchestration[ghost]["reason"]
    assert by_orchestration[misplaced]["task_id"] == "inventory"
    assert by_orchestration[misplaced]["service"] == "dispatcher"
    # The timeout of inventory's first attempt, handled in the orchestration's own task.
    [timer] = logs.where(event="timer applied", kind="timeout")
    assert (timer["orchestration_id"], timer["task_id"]) == (event.orchestration_id, "inventory")
    # No id outlives its input: an orchestration's lines name one of its own tasks, or none.
    own_tasks = {event.orchestration_id: {"payment", "inventory", "delivery", "notify"}}
    for line in logs.lines:
        if line.get("orchestration_id") == event.orchestration_id:
            assert line.get("task_id") in own_tasks[event.orchestration_id] | {None}, line
    [loaded] = logs.where(event="dispatcher state loaded")
    assert "orchestration_id" not in loaded


async def test_malformed_registry_messages_are_parked_and_the_registry_goes_on(
    bus: Bus,
) -> None:
    t = bus.topology
    revertible = ServiceRegistered(
        event_id="reg:Undo:1",
        service="Undo",
        description="reverts",
        input_schema={},
        output_schema={},
        revertible=True,
    )
    poison = {
        t.subject("service.heartbeat", "Broken"): (b"\x00\xff not json {", "MalformedEvent"),
        t.subject("service.registered", "Wrong"): (
            encode(completed("o_y", "t")),
            "got task.completed",
        ),
        t.subject("service.registered", "Other"): (
            encode(msgspec.structs.replace(revertible, event_id="reg:elsewhere")),
            "for Undo on subject",
        ),
    }
    for subject, (data, _) in poison.items():
        await bus.js.publish(subject, data)
    registry = ServiceRegistry(bus, check_s=60.0)
    await registry.start(timeout_s=5.0)
    try:
        assert registry.revertible == set()  # the misplaced registration was not taken
        await bus.publish(revertible)
        await bus.publish(
            ServiceHeartbeat(event_id="hb:1", service="Undo", instance_id="i", interval_s=1.0)
        )
        for _ in range(100):
            if "Undo" in registry.revertible and "Undo" in registry.beats:
                break
            await asyncio.sleep(0.05)
        assert "Undo" in registry.revertible
        assert "Undo" in registry.beats
        for subject, (data, needle) in poison.items():
            parked = await bus.js.get_last_msg(t.dlq_stream, t.dead_letter(subject))
            assert parked.data == data
            headers = parked.headers or {}
            assert headers[HDR_ORIGINAL_SUBJECT] == subject
            stream = t.heartbeats_stream if ".heartbeat." in subject else t.services_stream
            assert headers[HDR_ORIGINAL_STREAM] == stream
            assert needle in headers[HDR_REASON], headers[HDR_REASON]
        # A replica or a restart that reads them again parks nothing new.
        again = ServiceRegistry(bus, check_s=60.0)
        await again.start(timeout_s=5.0)
        await again.stop()
        info = await bus.js.stream_info(t.dlq_stream)
        assert info.state.messages == len(poison)
    finally:
        await registry.stop()


def test_revertible_follows_the_registrations_that_count() -> None:
    """A version that is revertible makes its tasks compensated; a refused one changes nothing."""
    registry = ServiceRegistry(None, check_s=60.0)  # type: ignore[arg-type]

    def registration(version: str, *, revertible: bool, description: str = "pays") -> object:
        return ServiceRegistered(
            event_id=f"reg:Pay:{version}:{description}",
            service="Pay",
            description=description,
            input_schema={},
            output_schema={},
            revertible=revertible,
            version=version,
        )

    assert registry.observe(registration("1", revertible=True)) is None
    refused = registry.observe(registration("1", revertible=False, description="other"))
    assert refused is not None
    assert "Pay version 1 is already registered" in refused
    assert registry.revertible == {"Pay"}
    # version 2 is not revertible, but tasks planned against version 1 still are
    assert registry.observe(registration("2", revertible=False)) is None
    assert registry.revertible == {"Pay"}
