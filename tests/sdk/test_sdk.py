# ruff: noqa: N815 - camelCase wire field names, as in the seed
"""The SDK against a real nats-server: registration, tasks, validation, idempotency, scale-out."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from pydantic import BaseModel

from orra_events import (
    Bus,
    ServiceHeartbeat,
    ServiceRegistered,
    TaskCompleted,
    TaskFailed,
    decode,
)
from orra_sdk import NonRetryableError, OrraClient, Service, Task
from tests.sdk.conftest import EventLog, work_left


class PayIn(BaseModel):
    orderId: str
    amount: float


class PayOut(BaseModel):
    paymentStatus: str
    transactionId: str


class PayInV2(BaseModel):
    orderId: str
    amount: float
    currency: str = "EUR"


def payment_service(calls: list[Task[PayIn]] | None = None, **kw: Any) -> Service[PayIn, PayOut]:
    svc = Service(
        name=kw.pop("name", "PaymentService"),
        description="Charge the payment of an order",
        input=kw.pop("input", PayIn),
        output=PayOut,
        revertible=True,
        **kw,
    )
    delay = 0.0

    @svc.handler
    async def pay(task: Task[PayIn]) -> PayOut:
        if calls is not None:
            calls.append(task)
        await asyncio.sleep(delay)
        return PayOut(paymentStatus="confirmed", transactionId=f"TX-{task.input.orderId}")

    return svc


# --- registry ------------------------------------------------------------------------------


async def last_registration(
    bus: Bus, service: str, version: str = "1"
) -> tuple[ServiceRegistered, dict[str, str]]:
    raw = await bus.js.get_last_msg(
        bus.topology.services_stream,
        bus.topology.service_subject("service.registered", service, version),
    )
    event = decode(raw.data or b"")
    assert isinstance(event, ServiceRegistered)
    return event, dict(raw.headers or {})


async def test_registration_carries_the_json_schemas(bus: Bus, make_client: Any) -> None:
    svc = payment_service()
    client = make_client(project="shop")
    await client.connect()
    await client.start(svc)

    event, headers = await last_registration(bus, "PaymentService")
    assert event.event_id == f"reg:PaymentService:{svc.schema_hash}"
    assert headers["Nats-Msg-Id"] == event.event_id
    assert event.input_schema == PayIn.model_json_schema()
    assert event.output_schema == PayOut.model_json_schema()
    assert event.input_schema["required"] == ["orderId", "amount"]
    assert event.schema_hash == svc.schema_hash
    assert event.description == "Charge the payment of an order"
    assert event.revertible is True
    assert event.version == "1"
    assert event.project == "shop"
    assert event.kind == "service"


async def test_a_changed_schema_registers_under_a_higher_version(
    bus: Bus, make_client: Any
) -> None:
    v1 = payment_service()
    v2 = payment_service(input=PayInV2, version="2")
    assert v1.schema_hash != v2.schema_hash

    for svc in (v1, v2, v1):  # back to v1 (a replica of the old version), too
        client: OrraClient = make_client()
        await client.connect()
        await client.start(svc)
        current, _ = await last_registration(bus, "PaymentService", svc.version)
        assert current.schema_hash == svc.schema_hash
        assert current.input_schema == svc.input_model.model_json_schema()
        await client.close()
    # each version keeps its own registration, the first one stored
    info = await bus.js.stream_info(bus.topology.services_stream)
    assert info.state.messages == 2


async def test_restarting_an_unchanged_service_stores_no_new_registration(
    bus: Bus, make_client: Any
) -> None:
    for _ in range(2):
        client = make_client()
        await client.connect()
        await client.start(payment_service())
        await client.close()
    info = await bus.js.stream_info(bus.topology.services_stream)
    # One registration was stored; the heartbeats went to their own stream.
    assert info.state.messages == 1
    raw = await bus.js.get_last_msg(
        bus.topology.services_stream,
        bus.topology.service_subject("service.registered", "PaymentService", "1"),
    )
    assert raw.seq == 1


async def test_heartbeats_are_sent_periodically(events: EventLog, make_client: Any) -> None:
    client = make_client(heartbeat_interval_s=0.1)
    await client.connect()
    await client.start(payment_service())
    beats = await events.wait(ServiceHeartbeat, count=3, service="PaymentService")
    assert {b.instance_id for b in beats} == {client.instance_id}
    assert beats[0].interval_s == 0.1
    assert len({b.event_id for b in beats}) == len(beats)


# --- running tasks -------------------------------------------------------------------------


async def test_a_dispatched_task_completes_with_its_output(
    bus: Bus, events: EventLog, make_client: Any, dispatch: Any
) -> None:
    calls: list[Task[PayIn]] = []
    client = make_client()
    await client.connect()
    await client.start(payment_service(calls))

    await dispatch("PaymentService", "payment", {"orderId": "ORD123", "amount": "299.99"})
    (done,) = await events.wait(TaskCompleted, task_id="payment")

    assert done.output == {"paymentStatus": "confirmed", "transactionId": "TX-ORD123"}
    assert done.event_id == "r:o_test:payment:1"
    assert done.attempt == 1
    assert done.idempotency_key == "o_test:payment"
    assert done.service == "PaymentService"
    assert done.replayed is False
    assert done.duration_ms >= 0
    assert done.started_at > 0
    (task,) = calls
    assert task.input == PayIn(orderId="ORD123", amount=299.99)
    assert (task.orchestration_id, task.task_id, task.attempt) == ("o_test", "payment", 1)
    assert task.idempotency_key == "o_test:payment"
    assert task.deliveries == 1
    assert await work_left(bus) == 0


async def test_invalid_input_fails_without_retry_naming_the_field(
    events: EventLog, make_client: Any, dispatch: Any
) -> None:
    calls: list[Task[PayIn]] = []
    client = make_client()
    await client.connect()
    await client.start(payment_service(calls))

    await dispatch("PaymentService", "bad", {"orderId": "ORD1", "amount": "lots"})
    await dispatch("PaymentService", "missing", {"amount": 3})
    (bad,) = await events.wait(TaskFailed, task_id="bad")
    (missing,) = await events.wait(TaskFailed, task_id="missing")

    assert bad.retryable is False
    assert bad.error.startswith("invalid input for PaymentService: amount: ")
    assert "valid number" in bad.error
    assert missing.error == "invalid input for PaymentService: orderId: Field required"
    assert calls == []


async def test_handler_errors_become_task_failures(
    bus: Bus, events: EventLog, make_client: Any, dispatch: Any
) -> None:
    svc = Service(name="Flaky", description="d", input=PayIn, output=PayOut)
    calls: list[int] = []

    @svc.handler
    async def flaky(task: Task[PayIn]) -> Any:
        calls.append(task.attempt)
        if task.input.orderId == "fatal":
            raise NonRetryableError("card expired")
        if task.input.orderId == "badout":
            return {"paymentStatus": "confirmed"}
        if task.attempt == 1:
            raise RuntimeError("bank unavailable")
        return {"paymentStatus": "confirmed", "transactionId": "T2"}

    client = make_client()
    await client.connect()
    await client.start(svc)

    await dispatch("Flaky", "t", {"orderId": "x", "amount": 1})
    (failed,) = await events.wait(TaskFailed, task_id="t")
    assert failed.retryable is True
    assert failed.error == "RuntimeError: bank unavailable"
    assert failed.event_id == "r:o_test:t:1"

    # Failures are not recorded: the dispatcher's retry runs the handler again.
    await dispatch("Flaky", "t", {"orderId": "x", "amount": 1}, attempt=2)
    (done,) = await events.wait(TaskCompleted, task_id="t")
    assert done.attempt == 2
    assert done.replayed is False
    assert done.output == {"paymentStatus": "confirmed", "transactionId": "T2"}
    assert calls == [1, 2]

    await dispatch("Flaky", "fatal", {"orderId": "fatal", "amount": 1})
    await dispatch("Flaky", "badout", {"orderId": "badout", "amount": 1})
    (fatal,) = await events.wait(TaskFailed, task_id="fatal")
    (badout,) = await events.wait(TaskFailed, task_id="badout")
    assert (fatal.retryable, fatal.error) == (False, "NonRetryableError: card expired")
    assert badout.retryable is False
    assert badout.error == "invalid output from Flaky: transactionId: Field required"
    assert await work_left(bus) == 0


async def test_a_failure_releases_the_claim_for_another_replica(
    bus: Bus, events: EventLog, make_client: Any, dispatch: Any
) -> None:
    # The release of the claim is written with task.failed (one batch): a retry that
    # lands on another replica runs at once instead of waiting out the claim's lease.
    def replica(label: str, runs: list[str]) -> Service[PayIn, PayOut]:
        svc = Service(name="Split", description="d", input=PayIn, output=PayOut)

        @svc.handler
        async def run(task: Task[PayIn]) -> PayOut:
            runs.append(label)
            if task.attempt == 1:
                raise RuntimeError("try again")
            return PayOut(paymentStatus="ok", transactionId=label)

        return svc

    runs: list[str] = []
    first = make_client(ack_wait_s=10.0)
    await first.connect()
    await first.start(replica("first", runs))
    await dispatch("Split", "t", {"orderId": "O", "amount": 1})
    await events.wait(TaskFailed, task_id="t")
    await first.close()
    second = make_client(ack_wait_s=10.0)
    await second.connect()
    await second.start(replica("second", runs))
    started = asyncio.get_running_loop().time()
    await dispatch("Split", "t", {"orderId": "O", "amount": 1}, attempt=2)
    (done,) = await events.wait(TaskCompleted, task_id="t", timeout=15.0)
    assert asyncio.get_running_loop().time() - started < 5.0  # the lease would be 20 s
    assert done.output["transactionId"] == "second"
    assert runs == ["first", "second"]


async def test_undecodable_work_is_parked_and_the_service_keeps_going(
    bus: Bus, events: EventLog, make_client: Any, dispatch: Any
) -> None:
    client = make_client()
    await client.connect()
    await client.start(payment_service())
    await bus.js.publish(bus.topology.work("PaymentService"), b"not json")
    await dispatch("PaymentService", "after", {"orderId": "A", "amount": 1})
    await events.wait(TaskCompleted, task_id="after")

    parked = await bus.js.get_last_msg(
        bus.topology.dlq_stream, bus.topology.dead_letter(bus.topology.work("PaymentService"))
    )
    assert parked.data == b"not json"
    assert parked.headers is not None
    assert parked.headers["Orra-Dead-Letter-Reason"].startswith("MalformedEvent")
    assert await work_left(bus) == 0


# --- idempotency ---------------------------------------------------------------------------


async def test_a_retried_task_replays_the_recorded_result_even_after_a_restart(
    bus: Bus, events: EventLog, make_client: Any, dispatch: Any
) -> None:
    calls: list[Task[PayIn]] = []
    first = make_client()
    await first.connect()
    await first.start(payment_service(calls))
    await dispatch("PaymentService", "payment", {"orderId": "ORD1", "amount": 10})
    (original,) = await events.wait(TaskCompleted, attempt=1)

    # The dispatcher retries (e.g. it timed out waiting): same key, new attempt.
    await dispatch("PaymentService", "payment", {"orderId": "ORD1", "amount": 10}, attempt=2)
    (replay,) = await events.wait(TaskCompleted, attempt=2)
    assert replay.replayed is True
    assert replay.output == original.output
    assert replay.event_id == "r:o_test:payment:2"
    assert replay.started_at == original.started_at

    # A new process (same KV bucket) still knows the result; so does a redelivery of the
    # very same dispatch that slipped past the broker's duplicate window.
    await first.close()
    second = make_client()
    await second.connect()
    await second.start(payment_service(calls))
    await dispatch("PaymentService", "payment", {"orderId": "ORD1", "amount": 10}, attempt=3)
    await dispatch(
        "PaymentService", "payment", {"orderId": "ORD1", "amount": 10}, event_id="late-copy"
    )
    (third,) = await events.wait(TaskCompleted, attempt=3)
    assert third.replayed is True
    assert third.output == original.output
    replays_of_1 = await events.wait(TaskCompleted, count=2, attempt=1)
    assert replays_of_1[1].replayed is True
    assert len(calls) == 1
    assert await work_left(bus) == 0


async def test_concurrent_copies_of_a_task_run_the_handler_once(
    events: EventLog, make_client: Any, dispatch: Any
) -> None:
    """Copies of one task reach two replicas at once; only one runs, the other replays."""
    calls: list[Task[PayIn]] = []
    gate = asyncio.Event()

    def slow_service() -> Service[PayIn, PayOut]:
        svc = Service(name="Slow", description="d", input=PayIn, output=PayOut, concurrency=1)

        @svc.handler
        async def run(task: Task[PayIn]) -> PayOut:
            calls.append(task)
            await gate.wait()
            return PayOut(paymentStatus="confirmed", transactionId="T")

        return svc

    clients = [make_client(), make_client()]
    for client in clients:
        await client.connect()
        await client.start(slow_service())
    for attempt in (1, 2, 3):
        await dispatch("Slow", "t", {"orderId": "O", "amount": 1}, attempt=attempt)
    while not calls:
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.3)  # give the copies time to reach the other replica
    gate.set()
    done = await events.wait(TaskCompleted, count=3, task_id="t")
    assert len(calls) == 1
    assert sorted(e.attempt for e in done) == [1, 2, 3]
    assert sum(not e.replayed for e in done) == 1
    assert len({json.dumps(e.output) for e in done}) == 1


# --- scale-out and long tasks --------------------------------------------------------------


async def test_two_replicas_split_the_tasks_of_one_service(
    bus: Bus, events: EventLog, make_client: Any, dispatch: Any
) -> None:
    ran_on: dict[str, str] = {}

    def replica(label: str) -> Service[PayIn, PayOut]:
        svc = Service(name="Split", description="d", input=PayIn, output=PayOut, concurrency=2)

        @svc.handler
        async def run(task: Task[PayIn]) -> PayOut:
            assert task.task_id not in ran_on
            ran_on[task.task_id] = label
            await asyncio.sleep(0.02)
            return PayOut(paymentStatus="confirmed", transactionId=label)

        return svc

    for label in ("a", "b"):
        client = make_client()
        await client.connect()
        await client.start(replica(label))
    for i in range(20):
        await dispatch("Split", f"t{i}", {"orderId": str(i), "amount": 1})
    done = await events.wait(TaskCompleted, count=20)

    assert len({e.task_id for e in done}) == 20
    assert sorted(ran_on.values()).count("a") >= 2
    assert sorted(ran_on.values()).count("b") >= 2
    consumers = await bus.js.consumers_info(bus.topology.work_stream)
    assert [c.name for c in consumers] == ["svc_Split"]


async def test_concurrency_is_bounded_per_service(
    events: EventLog, make_client: Any, dispatch: Any
) -> None:
    running = 0
    peak = 0
    svc = Service(name="Bounded", description="d", input=PayIn, output=PayOut, concurrency=3)

    @svc.handler
    async def run(task: Task[PayIn]) -> PayOut:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.03)
        running -= 1
        return PayOut(paymentStatus="ok", transactionId=task.task_id)

    client = make_client()
    await client.connect()
    await client.start(svc)
    for i in range(12):
        await dispatch("Bounded", f"t{i}", {"orderId": str(i), "amount": 1})
    await events.wait(TaskCompleted, count=12)
    assert peak == 3


async def test_in_progress_acks_keep_a_long_task_from_being_redelivered(
    bus: Bus, events: EventLog, make_client: Any, dispatch: Any
) -> None:
    calls: list[Task[PayIn]] = []
    svc = Service(name="Long", description="d", input=PayIn, output=PayOut)

    @svc.handler
    async def run(task: Task[PayIn]) -> PayOut:
        calls.append(task)
        await asyncio.sleep(2.6)  # more than twice the ack wait
        return PayOut(paymentStatus="ok", transactionId="T")

    client = make_client(ack_wait_s=1.0)
    await client.connect()
    await client.start(svc)
    await dispatch("Long", "t", {"orderId": "O", "amount": 1})
    (done,) = await events.wait(TaskCompleted, task_id="t")

    assert done.replayed is False
    assert done.duration_ms >= 2600
    assert [t.deliveries for t in calls] == [1]
    assert await work_left(bus) == 0
    info = await bus.js.consumer_info(bus.topology.work_stream, "svc_Long")
    assert info.num_redelivered == 0
    assert info.num_ack_pending == 0
    assert info.config.ack_wait == 1.0


async def test_a_task_finishing_while_the_client_stops_is_kept_alive(
    bus: Bus, events: EventLog, make_client: Any, dispatch: Any
) -> None:
    # While a client drains, its running handlers keep their message and claim alive:
    # another replica must not get the task (and run it a second time).
    started = asyncio.Event()
    calls: list[str] = []

    def replica(label: str) -> Service[PayIn, PayOut]:
        svc = Service(name="Draining", description="d", input=PayIn, output=PayOut)

        @svc.handler
        async def run(task: Task[PayIn]) -> PayOut:
            calls.append(label)
            started.set()
            await asyncio.sleep(3.0)  # three ack waits, within the drain
            return PayOut(paymentStatus="ok", transactionId=label)

        return svc

    leaving = make_client(ack_wait_s=1.0, drain_timeout_s=6.0)
    await leaving.connect()
    await leaving.start(replica("leaving"))
    await dispatch("Draining", "t", {"orderId": "O", "amount": 1})
    await started.wait()
    staying = make_client(ack_wait_s=1.0)
    await staying.connect()
    await staying.start(replica("staying"))
    await leaving.close()
    (done,) = await events.wait(TaskCompleted, task_id="t")
    assert done.output["transactionId"] == "leaving"
    await asyncio.sleep(1.5)
    assert calls == ["leaving"]
    assert await work_left(bus) == 0


async def test_stopping_abandons_a_running_task_to_another_replica(
    events: EventLog, make_client: Any, dispatch: Any
) -> None:
    started = asyncio.Event()
    runs: list[str] = []

    def replica(label: str, hang: bool) -> Service[PayIn, PayOut]:
        svc = Service(name="Handover", description="d", input=PayIn, output=PayOut)

        @svc.handler
        async def run(task: Task[PayIn]) -> PayOut:
            runs.append(label)
            started.set()
            if hang:
                await asyncio.Event().wait()
            return PayOut(paymentStatus="ok", transactionId=label)

        return svc

    leaving = make_client(drain_timeout_s=0.1)
    await leaving.connect()
    await leaving.start(replica("leaving", hang=True))
    await dispatch("Handover", "t", {"orderId": "O", "amount": 1})
    await started.wait()
    await leaving.close()

    staying = make_client()
    await staying.connect()
    await staying.start(replica("staying", hang=False))
    (done,) = await events.wait(TaskCompleted, task_id="t")
    assert done.output["transactionId"] == "staying"
    assert runs == ["leaving", "staying"]
    assert not events.of(TaskFailed)


async def test_one_process_hosts_several_services(
    bus: Bus, events: EventLog, make_client: Any, dispatch: Any
) -> None:
    class StockIn(BaseModel):
        productId: str

    class StockOut(BaseModel):
        inStock: bool

    stock = Service(name="InventoryService", description="stock", input=StockIn, output=StockOut)

    @stock.handler
    async def check(task: Task[StockIn]) -> StockOut:
        return StockOut(inStock=task.input.productId != "none")

    client = make_client()
    await client.connect()
    await client.start(payment_service(), stock)
    await dispatch("PaymentService", "payment", {"orderId": "O", "amount": 2})
    await dispatch("InventoryService", "inventory", {"productId": "PROD456"})

    (pay,) = await events.wait(TaskCompleted, task_id="payment")
    (inv,) = await events.wait(TaskCompleted, task_id="inventory")
    assert pay.service == "PaymentService"
    assert inv.output == {"inStock": True}
    for name in ("PaymentService", "InventoryService"):
        registered, _ = await last_registration(bus, name)
        assert registered.service == name


@pytest.mark.parametrize("concurrency", [0, -1])
def test_bad_definitions_are_refused(concurrency: int) -> None:
    from orra_sdk import ServiceDefinitionError

    with pytest.raises(ServiceDefinitionError, match="concurrency"):
        Service(name="S", description="d", input=PayIn, output=PayOut, concurrency=concurrency)
