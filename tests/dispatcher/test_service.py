"""The dispatcher in-process against a real nats-server, with a fake worker."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from typing import Any

from orra_dispatcher import DispatcherSettings
from orra_dispatcher.store import Found, SnapshotStore
from orra_events import (
    Bus,
    OrchestrationAborted,
    OrchestrationDone,
    OrchestrationFailed,
    Plan,
    PlanFailed,
    PlanTask,
    TaskCompleted,
    TaskDispatched,
    TaskRetrying,
    TaskTimedOut,
    new_orchestration_id,
)
from orra_events.bus import HDR_ORIGINAL_SUBJECT, HDR_REASON
from tests.dispatcher.conftest import (
    FAST,
    FakeWorker,
    Recorder,
    TaskError,
    plan_created,
    seed_plan,
    stored_events,
)


def dispatched_ids(events: list[Any]) -> list[str]:
    return [e.event_id for e in events if isinstance(e, TaskDispatched)]


async def test_seed_plan_runs_group_by_group(
    bus: Bus,
    worker: FakeWorker,
    recorder: Recorder,
    start_dispatcher: Any,
    snapshots: SnapshotStore,
) -> None:
    async def slow_payment(task: TaskDispatched) -> dict[str, Any]:
        await asyncio.sleep(0.2)
        return {"status": "confirmed", "paymentStatus": "confirmed"}

    worker.behaviours["PaymentService"] = slow_payment
    await start_dispatcher()
    event = plan_created(seed_plan(), webhook="http://hook", project="shop")
    await bus.publish(event)
    done = await recorder.terminal(event.orchestration_id)

    assert isinstance(done, OrchestrationDone)
    assert done.webhook == "http://hook"
    assert done.project == "shop"
    assert done.results == {
        "status": "reserved",  # payment's and inventory's: inventory comes later in the plan
        "paymentStatus": "confirmed",
        "inStock": True,
        "deliveryTracking": "DLV987",
        "estimatedDelivery": "2024-11-10",
        "notified": True,
    }
    assert list(done.outputs) == ["payment", "inventory", "delivery", "notify"]
    assert done.outputs["payment"]["status"] == "confirmed"
    # data flowed through the references
    (delivery,) = worker.dispatched("delivery")
    (notify,) = worker.dispatched("notify")
    assert delivery.input == {"orderId": "ORD123", "inStock": True}
    assert notify.input == {"customerId": "CUST1", "paymentStatus": "confirmed"}
    # group 2 started only after both of group 1 finished
    by_task = {r.task.task_id: r for r in worker.received}
    group1_end = max(by_task["payment"].finished_at or 0, by_task["inventory"].finished_at or 0)
    assert by_task["delivery"].at >= group1_end
    assert by_task["notify"].at >= group1_end
    # the log holds each event once, with the ids of docs/architecture.md
    stored = await stored_events(bus, event.orchestration_id)
    oid = event.orchestration_id
    assert sorted(dispatched_ids(stored)) == sorted(
        f"d:{oid}:{t}:1" for t in ("payment", "inventory", "delivery", "notify")
    )
    assert [e.event_id for e in stored if e.TYPE == "orchestration.done"] == [f"end:{oid}"]
    # the snapshot is gone, leaving a marker (for a while)
    assert (await snapshots.load(oid)).found is Found.ENDED


async def test_retry_then_success(
    bus: Bus, worker: FakeWorker, recorder: Recorder, start_dispatcher: Any
) -> None:
    async def flaky(task: TaskDispatched) -> dict[str, Any]:
        if task.attempt == 1:
            raise TaskError("gateway timeout")
        return {"status": "confirmed"}

    worker.behaviours["PaymentService"] = flaky
    await start_dispatcher()
    event = plan_created(seed_plan())
    await bus.publish(event)
    done = await recorder.terminal(event.orchestration_id)
    assert isinstance(done, OrchestrationDone)
    attempts = [t.attempt for t in worker.dispatched("payment")]
    assert attempts == [1, 2]
    assert {t.idempotency_key for t in worker.dispatched("payment")} == {
        f"{event.orchestration_id}:payment"
    }
    retrying = [e for e in recorder.events if isinstance(e, TaskRetrying)]
    assert [(r.task_id, r.next_attempt, r.reason) for r in retrying] == [
        ("payment", 2, "gateway timeout")
    ]


async def test_exhausted_attempts_fail_the_orchestration(
    bus: Bus, worker: FakeWorker, recorder: Recorder, start_dispatcher: Any
) -> None:
    async def broken(task: TaskDispatched) -> dict[str, Any]:
        raise TaskError("out of stock service down")

    worker.behaviours["InventoryService"] = broken
    await start_dispatcher()
    event = plan_created(seed_plan())
    await bus.publish(event)
    failed = await recorder.terminal(event.orchestration_id)
    assert isinstance(failed, OrchestrationFailed)
    assert failed.task_id == "inventory"
    assert "inventory" in failed.error
    assert "3 attempts" in failed.error
    assert "out of stock service down" in failed.error
    assert [t.attempt for t in worker.dispatched("inventory")] == [1, 2, 3]
    assert worker.dispatched("delivery") == []


async def test_timeout_then_retry(
    bus: Bus, worker: FakeWorker, recorder: Recorder, start_dispatcher: Any
) -> None:
    async def hangs_first(task: TaskDispatched) -> dict[str, Any] | None:
        if task.attempt == 1:
            return None
        return {"inStock": True}

    worker.behaviours["InventoryService"] = hangs_first
    await start_dispatcher()
    event = plan_created(seed_plan(), task_timeout_s=0.3)
    await bus.publish(event)
    done = await recorder.terminal(event.orchestration_id)
    assert isinstance(done, OrchestrationDone)
    timed_out = [e for e in recorder.events if isinstance(e, TaskTimedOut)]
    assert [(e.task_id, e.attempt, e.timeout_s) for e in timed_out] == [("inventory", 1, 0.3)]
    assert [t.attempt for t in worker.dispatched("inventory")] == [1, 2]


async def test_eager_mode_does_not_wait_for_a_slow_sibling(
    bus: Bus, worker: FakeWorker, recorder: Recorder, start_dispatcher: Any
) -> None:
    inventory_may_finish = asyncio.Event()

    async def slow_inventory(task: TaskDispatched) -> dict[str, Any]:
        await inventory_may_finish.wait()
        return {"inStock": True}

    worker.behaviours["InventoryService"] = slow_inventory
    await start_dispatcher()
    event = plan_created(seed_plan(), mode="eager")
    await bus.publish(event)
    # notify depends only on payment: it runs while inventory (its group sibling's
    # predecessor) is still running
    await recorder.wait_for(
        lambda e: isinstance(e, TaskDispatched) and e.task_id == "notify", timeout=5
    )
    assert worker.dispatched("delivery") == []
    inventory_may_finish.set()
    done = await recorder.terminal(event.orchestration_id)
    assert isinstance(done, OrchestrationDone)


async def test_groups_mode_waits_for_the_slow_sibling(
    bus: Bus, worker: FakeWorker, recorder: Recorder, start_dispatcher: Any
) -> None:
    inventory_may_finish = asyncio.Event()

    async def slow_inventory(task: TaskDispatched) -> dict[str, Any]:
        await inventory_may_finish.wait()
        return {"inStock": True}

    worker.behaviours["InventoryService"] = slow_inventory
    await start_dispatcher()
    event = plan_created(seed_plan())
    await bus.publish(event)
    await recorder.wait_for(lambda e: e.TYPE == "task.completed" and e.task_id == "payment")  # type: ignore[attr-defined]
    await asyncio.sleep(0.3)
    assert worker.dispatched("notify") == []
    inventory_may_finish.set()
    assert isinstance(await recorder.terminal(event.orchestration_id), OrchestrationDone)


async def test_restart_mid_orchestration_continues_without_redispatch(
    bus: Bus, worker: FakeWorker, recorder: Recorder, start_dispatcher: Any
) -> None:
    inventory_may_finish = asyncio.Event()

    async def slow_inventory(task: TaskDispatched) -> dict[str, Any]:
        await inventory_may_finish.wait()
        return {"inStock": True}

    worker.behaviours["InventoryService"] = slow_inventory
    stop = await start_dispatcher()
    event = plan_created(seed_plan())
    oid = event.orchestration_id
    await bus.publish(event)
    await recorder.wait_for(lambda e: e.TYPE == "task.completed" and e.task_id == "payment")  # type: ignore[attr-defined]
    await asyncio.sleep(0.2)
    await stop()
    inventory_may_finish.set()  # the result arrives while no dispatcher runs
    await asyncio.sleep(0.2)
    await start_dispatcher()
    done = await recorder.terminal(oid)
    assert isinstance(done, OrchestrationDone)
    stored = await stored_events(bus, oid)
    counts = Counter(dispatched_ids(stored))
    assert counts == Counter(
        f"d:{oid}:{t}:1" for t in ("payment", "inventory", "delivery", "notify")
    )
    assert [r.task.attempt for r in worker.received] == [1, 1, 1, 1]


async def test_restart_rearms_timeouts_from_stored_deadlines(
    bus: Bus, worker: FakeWorker, recorder: Recorder, start_dispatcher: Any
) -> None:
    async def hangs_first(task: TaskDispatched) -> dict[str, Any] | None:
        return None if task.attempt == 1 else {"inStock": True}

    worker.behaviours["InventoryService"] = hangs_first
    stop = await start_dispatcher()
    event = plan_created(seed_plan(), task_timeout_s=0.6)
    await bus.publish(event)
    await recorder.wait_for(lambda e: e.TYPE == "task.completed" and e.task_id == "payment")  # type: ignore[attr-defined]
    await stop()  # the timeout timer dies with the process
    await start_dispatcher()
    done = await recorder.terminal(event.orchestration_id, timeout=10)
    assert isinstance(done, OrchestrationDone)
    assert [t.attempt for t in worker.dispatched("inventory")] == [1, 2]


async def test_crash_between_publish_and_snapshot_write_repeats_nothing(
    bus: Bus, worker: FakeWorker, recorder: Recorder, start_dispatcher: Any, monkeypatch: Any
) -> None:
    original = SnapshotStore.save
    crashes = {"left": 2}

    async def crashing_save(self: SnapshotStore, state: Any, revision: int) -> int:
        if crashes["left"] > 0:
            crashes["left"] -= 1
            raise ConnectionError("simulated crash before the snapshot write")
        return await original(self, state, revision)

    monkeypatch.setattr(SnapshotStore, "save", crashing_save)
    await start_dispatcher()
    event = plan_created(seed_plan())
    oid = event.orchestration_id
    await bus.publish(event)
    done = await recorder.terminal(oid, timeout=15)
    assert isinstance(done, OrchestrationDone)
    published = Counter(e.event_id for e in recorder.events if isinstance(e, TaskDispatched))
    assert published[f"d:{oid}:payment:1"] >= 2  # the transition ran again ...
    stored = await stored_events(bus, oid)
    # ... but the log and the workers saw each dispatch once
    assert Counter(dispatched_ids(stored)) == Counter(
        f"d:{oid}:{t}:1" for t in ("payment", "inventory", "delivery", "notify")
    )
    assert Counter((r.task.task_id, r.task.attempt) for r in worker.received) == Counter(
        (t, 1) for t in ("payment", "inventory", "delivery", "notify")
    )


async def test_abort_stops_dispatching(
    bus: Bus,
    worker: FakeWorker,
    recorder: Recorder,
    start_dispatcher: Any,
    snapshots: SnapshotStore,
) -> None:
    inventory_may_finish = asyncio.Event()

    async def slow_inventory(task: TaskDispatched) -> dict[str, Any]:
        await inventory_may_finish.wait()
        return {"inStock": True}

    worker.behaviours["InventoryService"] = slow_inventory
    await start_dispatcher()
    event = plan_created(seed_plan())
    oid = event.orchestration_id
    await bus.publish(event)
    await recorder.wait_for(lambda e: isinstance(e, TaskDispatched) and e.task_id == "inventory")
    await bus.publish(
        OrchestrationAborted(event_id=f"end:{oid}", orchestration_id=oid, reason="user")
    )
    for _ in range(50):
        if (await snapshots.load(oid)).found is Found.ENDED:
            break
        await asyncio.sleep(0.05)
    inventory_may_finish.set()
    await asyncio.sleep(0.3)
    assert worker.dispatched("delivery") == []
    assert worker.dispatched("notify") == []
    assert not any(
        e.TYPE in ("orchestration.done", "orchestration.failed") for e in recorder.events
    )


async def test_abort_before_the_plan_prevents_dispatch(
    bus: Bus, worker: FakeWorker, recorder: Recorder, start_dispatcher: Any
) -> None:
    await start_dispatcher()
    oid = new_orchestration_id()
    await bus.publish(
        OrchestrationAborted(event_id=f"end:{oid}", orchestration_id=oid, reason="user")
    )
    await bus.publish(plan_created(seed_plan(), oid))
    # a later orchestration completes, so the dispatcher went past the plan
    other = plan_created(seed_plan())
    await bus.publish(other)
    assert isinstance(await recorder.terminal(other.orchestration_id), OrchestrationDone)
    assert not any(r.task.orchestration_id == oid for r in worker.received)


async def test_plan_failed_becomes_orchestration_failed(
    bus: Bus, recorder: Recorder, start_dispatcher: Any
) -> None:
    await start_dispatcher()
    oid = new_orchestration_id()
    await bus.publish(
        PlanFailed(
            event_id=f"p:{oid}",
            orchestration_id=oid,
            status="not_actionable",
            reasons=["no registered service can reconcile invoices"],
            planner="offline",
            webhook="http://hook",
        )
    )
    failed = await recorder.terminal(oid)
    assert isinstance(failed, OrchestrationFailed)
    assert "no registered service can reconcile invoices" in failed.error
    assert failed.webhook == "http://hook"


async def test_malformed_event_is_parked_and_processing_continues(
    bus: Bus, worker: FakeWorker, recorder: Recorder, start_dispatcher: Any
) -> None:
    await start_dispatcher()
    topo = bus.topology
    bad_subject = topo.subject("task.completed", "o_garbage")
    await bus.js.publish(bad_subject, b"{not json", headers={"Nats-Msg-Id": "bad-1"})
    wrong_type = topo.subject("plan.created", "o_wrongtype")
    await bus.js.publish(wrong_type, b'{"type": "task.retrying", "event_id": "x"}')
    event = plan_created(seed_plan())
    await bus.publish(event)
    assert isinstance(await recorder.terminal(event.orchestration_id), OrchestrationDone)

    sub = await bus.js.subscribe(
        topo.dead_letter(bad_subject), stream=topo.dlq_stream, ordered_consumer=True
    )
    parked = await sub.next_msg(timeout=5)
    await sub.unsubscribe()
    assert parked.data == b"{not json"
    assert parked.headers is not None
    assert parked.headers[HDR_ORIGINAL_SUBJECT] == bad_subject
    assert "MalformedEvent" in parked.headers[HDR_REASON]


async def test_two_replicas_share_the_work_without_double_dispatch(
    bus: Bus, worker: FakeWorker, recorder: Recorder, start_dispatcher: Any
) -> None:
    settings = DispatcherSettings(**{**FAST.__dict__, "concurrency": 8})
    await start_dispatcher(settings, own_bus=True)
    await start_dispatcher(settings, own_bus=True)
    events = [plan_created(seed_plan()) for _ in range(20)]
    for event in events:
        await bus.publish(event)
    for event in events:
        assert isinstance(
            await recorder.terminal(event.orchestration_id, timeout=20), OrchestrationDone
        )
    per_task = Counter(
        (r.task.orchestration_id, r.task.task_id, r.task.attempt) for r in worker.received
    )
    assert len(per_task) == 20 * 4
    assert set(per_task.values()) == {1}


async def test_invalid_plan_fails_with_the_reason(
    bus: Bus, recorder: Recorder, start_dispatcher: Any
) -> None:
    await start_dispatcher()
    plan = Plan(tasks=[PlanTask(id="a", service="S")], parallel_groups=[["a"], ["zzz"]])
    event = plan_created(plan)
    await bus.publish(event)
    failed = await recorder.terminal(event.orchestration_id)
    assert isinstance(failed, OrchestrationFailed)
    assert "unknown task 'zzz'" in failed.error


async def test_event_for_an_unknown_orchestration_is_parked_after_retries(
    bus: Bus, worker: FakeWorker, recorder: Recorder, start_dispatcher: Any
) -> None:
    settings = DispatcherSettings(**{**FAST.__dict__, "max_deliver": 3})
    await start_dispatcher(settings)
    oid = new_orchestration_id()  # no plan was ever created for it
    completion = TaskCompleted(
        event_id=f"r:{oid}:payment:1",
        orchestration_id=oid,
        task_id="payment",
        service="PaymentService",
        output={},
        attempt=1,
        idempotency_key=f"{oid}:payment",
        started_at=0.0,
        duration_ms=1.0,
    )
    await bus.publish(completion)
    event = plan_created(seed_plan())
    await bus.publish(event)
    assert isinstance(await recorder.terminal(event.orchestration_id), OrchestrationDone)
    topo = bus.topology
    subject = topo.subject_for(completion)
    sub = await bus.js.subscribe(
        topo.dead_letter(subject), stream=topo.dlq_stream, ordered_consumer=True
    )
    parked = await sub.next_msg(timeout=5)
    await sub.unsubscribe()
    assert parked.headers is not None
    assert f"unknown orchestration {oid}" in parked.headers[HDR_REASON]
    assert parked.headers[HDR_ORIGINAL_SUBJECT] == subject


async def test_ended_orchestrations_leave_nothing_once_their_markers_expire(
    bus: Bus, worker: FakeWorker, recorder: Recorder, start_dispatcher: Any
) -> None:
    settings = DispatcherSettings(**{**FAST.__dict__, "tombstone_ttl_s": 1.0})
    await start_dispatcher(settings)
    events = [plan_created(seed_plan()) for _ in range(3)]
    for event in events:
        await bus.publish(event)
    for event in events:
        assert isinstance(await recorder.terminal(event.orchestration_id), OrchestrationDone)
    kv_stream = f"KV_{bus.topology.bucket('dispatcher')}"
    for _ in range(60):
        info = await bus.js.stream_info(kv_stream)
        if info.state.messages == 0:
            break
        await asyncio.sleep(0.1)
    # Nothing left to scan at start-up: the bucket holds the orchestrations in flight only.
    assert info.state.messages == 0


async def test_a_replayed_log_does_not_restart_ended_orchestrations(
    bus: Bus,
    worker: FakeWorker,
    recorder: Recorder,
    start_dispatcher: Any,
    snapshots: SnapshotStore,
) -> None:
    settings = DispatcherSettings(**{**FAST.__dict__, "tombstone_ttl_s": 1.0})
    stop = await start_dispatcher(settings)
    event = plan_created(seed_plan())
    oid = event.orchestration_id
    await bus.publish(event)
    assert isinstance(await recorder.terminal(oid), OrchestrationDone)
    await stop()
    for _ in range(60):  # the marker expires
        if (await snapshots.load(oid)).found is Found.UNKNOWN:
            break
        await asyncio.sleep(0.1)
    assert (await snapshots.load(oid)).found is Found.UNKNOWN
    # The consumer is lost (an operator deleted it): a new one replays the whole log,
    # plan.created and every result included, as first deliveries.
    await bus.js.delete_consumer(bus.topology.events_stream, "dispatcher")
    before = len(worker.received)
    await start_dispatcher(settings)
    await asyncio.sleep(1.5)
    stored = await stored_events(bus, oid)
    assert Counter(e.TYPE for e in stored)["orchestration.done"] == 1
    assert Counter(dispatched_ids(stored)) == Counter(
        f"d:{oid}:{t}:1" for t in ("payment", "inventory", "delivery", "notify")
    )
    assert len(worker.received) == before  # nothing dispatched again
    assert (await snapshots.load(oid)).found is Found.UNKNOWN
    info = await bus.js.consumer_info(bus.topology.events_stream, "dispatcher")
    assert info.num_ack_pending == 0  # every replayed input was acked, none parked or retried
    dlq = await bus.js.stream_info(bus.topology.dlq_stream)
    assert dlq.state.messages == 0


async def test_results_queued_behind_a_snapshot_write_are_applied_without_waiting(
    bus: Bus,
    worker: FakeWorker,
    recorder: Recorder,
    start_dispatcher: Any,
    monkeypatch: Any,
) -> None:
    # Slow snapshot writes: the second group must still be dispatched as soon as the
    # first group's results are in, not after the writes (write-behind), and each input
    # is acknowledged only once a snapshot including it is stored.
    original = SnapshotStore.save
    writes: list[float] = []

    async def slow_save(self: SnapshotStore, state: Any, revision: int) -> int:
        await asyncio.sleep(0.3)
        writes.append(time.monotonic())
        return await original(self, state, revision)

    monkeypatch.setattr(SnapshotStore, "save", slow_save)
    await start_dispatcher()
    event = plan_created(seed_plan())
    oid = event.orchestration_id
    started = time.monotonic()
    await bus.publish(event)
    done = await recorder.terminal(oid, timeout=15)
    assert isinstance(done, OrchestrationDone)
    # Three inputs change the state before the end (plan, then 2 results per group): with
    # a 0.3 s write each, waiting for every write would take over 1 s.
    assert time.monotonic() - started < 0.9
    assert len(writes) <= 3
    for _ in range(30):
        info = await bus.js.consumer_info(bus.topology.events_stream, "dispatcher")
        if info.num_ack_pending == 0:
            break
        await asyncio.sleep(0.1)
    assert info.num_ack_pending == 0
    stored = await stored_events(bus, oid)
    assert Counter(dispatched_ids(stored)) == Counter(
        f"d:{oid}:{t}:1" for t in ("payment", "inventory", "delivery", "notify")
    )
