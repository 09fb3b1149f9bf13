"""The Bus against a real nats-server: publish, dedupe, concurrency, consume, park, KV."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from nats.aio.msg import Msg
from nats.js.errors import APIError

from orra_events import (
    BrokerUnavailable,
    Bus,
    Event,
    Retry,
    Topology,
    decode,
    encode,
)
from orra_events.bus import BROKER_PATIENCE_S, HDR_ORIGINAL_SUBJECT, HDR_REASON
from orra_events.embedded import EmbeddedNats, free_port
from orra_events.publishing import PublishError
from tests.factories import task_completed


async def wait_until(
    predicate: Callable[[], Awaitable[bool]] | Callable[[], bool], timeout: float = 10.0
) -> None:
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


async def dlq_messages(bus: Bus) -> list[Any]:
    info = await bus.js.stream_info(bus.topology.dlq_stream)
    return [
        await bus.js.get_msg(bus.topology.dlq_stream, seq)
        for seq in range(info.state.first_seq, info.state.last_seq + 1)
        if info.state.messages
    ]


class Recorder:
    """A handler that records events, and fails the first ``fail`` calls per event."""

    def __init__(self, fail: int = 0, exc: BaseException | None = None) -> None:
        self.fail = fail
        self.exc = exc or RuntimeError("boom")
        self.calls: list[tuple[Event, int]] = []
        self.handled: list[Event] = []

    async def __call__(self, event: Event, msg: Msg) -> None:
        self.calls.append((event, msg.metadata.num_delivered))
        if sum(1 for e, _ in self.calls if e == event) <= self.fail:
            raise self.exc
        self.handled.append(event)


async def consume_events(bus: Bus, handler: Any, durable: str = "c1", **kw: Any) -> None:
    await bus.consume(
        stream=bus.topology.events_stream,
        durable=durable,
        filter_subjects=[bus.topology.all_of("task.completed")],
        handler=handler,
        **kw,
    )


# --- publishing ----------------------------------------------------------------------------


async def test_publish_sets_the_message_id_and_subject(bus: Bus) -> None:
    event = task_completed(orchestration_id="o_1")
    ack = await bus.publish(event)
    assert ack.stream == bus.topology.events_stream
    stored = await bus.js.get_msg(bus.topology.events_stream, ack.seq)
    assert stored.headers is not None
    assert stored.headers["Nats-Msg-Id"] == event.event_id
    assert stored.subject == bus.topology.subject_for(event)
    assert decode(stored.data or b"") == event


async def test_a_retried_publish_is_stored_once(bus: Bus) -> None:
    event = task_completed(event_id="r:o_1:payment:1", orchestration_id="o_1")
    first = await bus.publish(event)
    again = await bus.publish(event)
    (together,) = await bus.publish_all([event])
    assert not first.duplicate
    assert again.duplicate
    assert together.duplicate
    assert again.seq == first.seq
    info = await bus.js.stream_info(bus.topology.events_stream)
    assert info.state.messages == 1


async def test_publish_all_appends_every_event_in_order(bus: Bus) -> None:
    events = [task_completed(event_id=f"e{i}", orchestration_id="o_1") for i in range(20)]
    acks = await bus.publish_all(events)
    assert [a.seq for a in acks] == list(range(1, 21))
    stored = await bus.js.get_msg(bus.topology.events_stream, 7)
    assert stored.headers is not None
    assert stored.headers["Nats-Msg-Id"] == "e6"


async def test_publish_all_raises_when_the_broker_stores_nothing(bus: Bus) -> None:
    # A namespace without streams: nobody stores the events (no responders).
    elsewhere = Bus(bus.nc, Topology(namespace="nostreams"), name="elsewhere")
    with pytest.raises(PublishError) as info:
        await elsewhere.publish_all([task_completed(event_id="e1", orchestration_id="o_1")])
    assert info.value.code == 503


async def test_expected_last_subject_seq_refuses_a_stale_write(bus: Bus) -> None:
    first = await bus.publish(
        task_completed(event_id="a", orchestration_id="o_1"), expected_last_subject_seq=0
    )
    await bus.publish(
        task_completed(event_id="b", orchestration_id="o_1"), expected_last_subject_seq=first.seq
    )
    with pytest.raises(APIError) as info:  # the writer that read seq `first` lost the race
        await bus.publish(
            task_completed(event_id="c", orchestration_id="o_1"),
            expected_last_subject_seq=first.seq,
        )
    assert info.value.err_code == 10071  # wrong last sequence
    with pytest.raises(APIError):
        await bus.publish(
            task_completed(event_id="d", orchestration_id="o_1"), expected_last_subject_seq=0
        )
    state = (await bus.js.stream_info(bus.topology.events_stream)).state
    assert state.messages == 2


async def test_expected_last_subject_checks_a_wildcard_subject(bus: Bus) -> None:
    """``plan.*.<orch>``-style guard: no event of any type on the filter yet (server 2.11+)."""
    t = bus.topology
    guard = t.subject("task.*", "o_1")
    await bus.publish(
        task_completed(event_id="a", orchestration_id="o_1"),
        expected_last_subject_seq=0,
        expected_last_subject=guard,
    )
    with pytest.raises(APIError) as info:  # another subject of the filter, same guard
        await bus.publish(
            task_completed(event_id="b", orchestration_id="o_1"),
            subject=t.subject("task.failed", "o_1"),
            expected_last_subject_seq=0,
            expected_last_subject=guard,
        )
    assert info.value.err_code == 10071
    await bus.publish(  # another orchestration is not guarded by it
        task_completed(event_id="c", orchestration_id="o_2"),
        expected_last_subject_seq=0,
        expected_last_subject=t.subject("task.*", "o_2"),
    )
    assert (await bus.js.stream_info(t.events_stream)).state.messages == 2


async def test_publish_to_an_explicit_subject(bus: Bus) -> None:
    event = task_completed(orchestration_id="o_1")
    ack = await bus.publish(event, subject=bus.topology.work("PaymentService"))
    assert ack.stream == bus.topology.work_stream


# --- consuming -----------------------------------------------------------------------------


async def test_handler_success_acks(bus: Bus) -> None:
    handler = Recorder()
    await consume_events(bus, handler)
    events = [task_completed(orchestration_id=f"o_{i}") for i in range(3)]
    for event in events:
        await bus.publish(event)
    await wait_until(lambda: len(handler.handled) == 3)

    async def drained() -> bool:
        info = await bus.js.consumer_info(bus.topology.events_stream, "c1")
        return info.num_ack_pending == 0 and info.num_pending == 0

    await wait_until(drained)
    assert handler.handled == events
    assert [n for _, n in handler.calls] == [1, 1, 1]


@pytest.mark.parametrize("concurrency", [1, 8])
@pytest.mark.parametrize("exc", [RuntimeError("boom"), Retry("not yet", delay_s=0.05)])
async def test_a_failing_handler_gets_the_message_again(
    bus: Bus, exc: Exception, concurrency: int
) -> None:
    handler = Recorder(fail=1, exc=exc)
    await consume_events(bus, handler, retry_delay_s=0.05, concurrency=concurrency)
    event = task_completed(orchestration_id="o_1")
    await bus.publish(event)
    await wait_until(lambda: len(handler.handled) == 1)
    assert handler.calls == [(event, 1), (event, 2)]
    assert await dlq_messages(bus) == []


@pytest.mark.parametrize("concurrency", [1, 8])
async def test_a_malformed_message_is_parked_and_the_consumer_goes_on(
    bus: Bus, concurrency: int
) -> None:
    handler = Recorder()
    await consume_events(bus, handler, concurrency=concurrency)
    bad_subject = bus.topology.subject("task.completed", "o_bad")
    await bus.js.publish(bad_subject, b"{not json", headers={"X-Trace": "t1"})
    await bus.js.publish(
        bus.topology.subject("task.completed", "o_unknown"), b'{"type": "task.exploded"}'
    )
    good = task_completed(orchestration_id="o_good")
    await bus.publish(good)
    await wait_until(lambda: handler.handled == [good])
    await wait_until(lambda: _count(bus.topology.dlq_stream, bus, 2))
    parked = await dlq_messages(bus)
    assert [m.subject for m in parked] == [
        bus.topology.dead_letter(bad_subject),
        bus.topology.dead_letter(bus.topology.subject("task.completed", "o_unknown")),
    ]
    first = parked[0]
    assert first.data == b"{not json"
    assert first.headers[HDR_ORIGINAL_SUBJECT] == bad_subject
    assert first.headers[HDR_REASON].startswith("MalformedEvent: event is not valid JSON")
    assert first.headers["X-Trace"] == "t1"  # application headers travel with it
    assert first.headers["Orra-Original-Stream"] == bus.topology.events_stream
    assert parked[1].headers[HDR_REASON].startswith("UnknownEventType: unknown event type")

    async def drained() -> bool:
        info = await bus.js.consumer_info(bus.topology.events_stream, "c1")
        return info.num_ack_pending == 0 and info.num_redelivered == 0

    await wait_until(drained)


class Gate:
    """A handler that holds every call until released, counting calls running at once."""

    def __init__(self) -> None:
        self.running = 0
        self.most = 0
        self.started: list[str] = []
        self.finished: list[str] = []
        self.cancelled: list[str] = []
        self.release = asyncio.Event()

    async def __call__(self, event: Event, msg: Msg) -> None:
        self.running += 1
        self.most = max(self.most, self.running)
        self.started.append(event.event_id)
        try:
            await self.release.wait()
        except asyncio.CancelledError:
            self.cancelled.append(event.event_id)
            raise
        finally:
            self.running -= 1
        self.finished.append(event.event_id)


async def _consumer_drained(bus: Bus, durable: str = "c1") -> bool:
    info = await bus.js.consumer_info(bus.topology.events_stream, durable)
    return info.num_ack_pending == 0 and info.num_pending == 0


async def test_a_concurrent_consumer_runs_up_to_its_limit_of_handlers_at_once(bus: Bus) -> None:
    gate = Gate()
    await consume_events(bus, gate, concurrency=4)
    events = [task_completed(event_id=f"e{i}", orchestration_id=f"o_{i}") for i in range(10)]
    for event in events:
        await bus.publish(event)
    await wait_until(lambda: gate.running == 4)
    await asyncio.sleep(0.1)
    assert gate.running == 4  # the subscription waits for a free slot
    gate.release.set()
    await wait_until(lambda: len(gate.finished) == 10)
    assert gate.most == 4
    assert sorted(gate.finished) == sorted(e.event_id for e in events)
    await wait_until(lambda: _consumer_drained(bus))  # every message acked


async def test_the_default_consumer_handles_one_message_at_a_time_in_order(bus: Bus) -> None:
    order: list[str] = []
    running = 0
    most = 0

    async def handler(event: Event, msg: Msg) -> None:
        nonlocal running, most
        running += 1
        most = max(most, running)
        await asyncio.sleep(0.01)
        order.append(event.event_id)
        running -= 1

    await consume_events(bus, handler)
    ids = [f"e{i}" for i in range(8)]
    for event_id in ids:
        await bus.publish(task_completed(event_id=event_id, orchestration_id="o_1"))
    await wait_until(lambda: len(order) == 8)
    assert order == ids
    assert most == 1


async def test_close_lets_running_handlers_finish_and_acks_them(
    bus: Bus, nats_url: str, topology: Topology
) -> None:
    consumer = await Bus.connect(nats_url, topology, name="consumer")
    gate = Gate()
    await consume_events(consumer, gate, concurrency=8)
    for i in range(3):
        await bus.publish(task_completed(event_id=f"e{i}", orchestration_id=f"o_{i}"))
    await wait_until(lambda: gate.running == 3)
    asyncio.get_running_loop().call_later(0.1, gate.release.set)
    await consumer.close(handler_timeout_s=10.0)
    assert sorted(gate.finished) == ["e0", "e1", "e2"]
    assert gate.cancelled == []
    await wait_until(lambda: _consumer_drained(bus))


async def test_close_cancels_handlers_still_running_and_their_messages_come_back(
    bus: Bus, nats_url: str, topology: Topology
) -> None:
    consumer = await Bus.connect(nats_url, topology, name="consumer")
    gate = Gate()
    await consume_events(consumer, gate, concurrency=8, ack_wait_s=0.5)
    await bus.publish(task_completed(event_id="e0", orchestration_id="o_0"))
    await wait_until(lambda: gate.running == 1)
    await consumer.close(handler_timeout_s=0.05)
    assert gate.cancelled == ["e0"]
    assert gate.finished == []
    # not acked: the next consumer of the durable gets it again
    handler = Recorder()
    await consume_events(bus, handler, concurrency=8, ack_wait_s=0.5)
    await wait_until(lambda: len(handler.handled) == 1)
    assert handler.calls[0][1] == 2  # second delivery
    await wait_until(lambda: _consumer_drained(bus))


async def test_concurrency_below_one_is_refused(bus: Bus) -> None:
    with pytest.raises(ValueError, match="concurrency"):
        await consume_events(bus, Recorder(), concurrency=0)


async def _count(stream: str, bus: Bus, n: int) -> bool:
    return (await bus.js.stream_info(stream)).state.messages == n


@pytest.mark.parametrize("concurrency", [1, 8])
async def test_a_message_failing_max_deliver_times_is_parked(bus: Bus, concurrency: int) -> None:
    handler = Recorder(fail=1000)
    await consume_events(bus, handler, max_deliver=3, retry_delay_s=0.02, concurrency=concurrency)
    event = task_completed(orchestration_id="o_1")
    await bus.publish(event)
    await wait_until(lambda: _count(bus.topology.dlq_stream, bus, 1))
    assert [n for _, n in handler.calls] == [1, 2, 3]
    (parked,) = await dlq_messages(bus)
    assert parked.headers[HDR_REASON] == "gave up after 3 deliveries: RuntimeError: boom"
    assert decode(parked.data) == event
    await asyncio.sleep(0.2)
    assert len(handler.calls) == 3  # terminated: not delivered again


async def test_parking_drops_the_originals_broker_headers(bus: Bus) -> None:
    """Originals written with optimistic concurrency still park (the header is not replayed)."""
    handler = Recorder()
    await consume_events(bus, handler)
    subject = bus.topology.subject("task.completed", "o_1")
    for i in range(3):
        await bus.publish(task_completed(event_id=f"ok{i}", orchestration_id="o_other"))
    first = await bus.js.publish(
        subject, b"bad-1", headers={"Nats-Expected-Last-Subject-Sequence": "0"}
    )
    await bus.js.publish(
        subject,
        b"bad-2",
        headers={"Nats-Expected-Last-Subject-Sequence": str(first.seq), "Nats-Msg-Id": "m2"},
    )
    await wait_until(lambda: _count(bus.topology.dlq_stream, bus, 2))
    parked = await dlq_messages(bus)
    assert [m.data for m in parked] == [b"bad-1", b"bad-2"]
    assert not any(k.startswith("Nats-Expected") for m in parked for k in m.headers)


async def test_a_message_parked_twice_is_stored_once(bus: Bus) -> None:
    parked_twice = asyncio.Event()

    async def handler(event: Event, msg: Msg) -> None:
        await bus.park(msg, "first")
        await bus.park(msg, "second")
        parked_twice.set()

    await consume_events(bus, handler)
    await bus.publish(task_completed(orchestration_id="o_1"))
    await asyncio.wait_for(parked_twice.wait(), 10)
    assert len(await dlq_messages(bus)) == 1


async def test_work_queue_message_is_removed_once_parked(bus: Bus) -> None:
    handler = Recorder()
    await bus.consume(
        stream=bus.topology.work_stream,
        durable="svc_Pay",
        filter_subjects=[bus.topology.work("Pay")],
        handler=handler,
    )
    await bus.js.publish(bus.topology.work("Pay"), b"garbage")
    await wait_until(lambda: _count(bus.topology.dlq_stream, bus, 1))
    await wait_until(lambda: _count(bus.topology.work_stream, bus, 0))


async def test_consumers_with_one_durable_share_the_messages(
    bus: Bus, nats_url: str, topology: Topology
) -> None:
    others = [await Bus.connect(nats_url, topology, name=f"replica{i}") for i in range(2)]
    handlers = [Recorder(), Recorder()]
    try:
        # both replicas start at the same moment: they must not race creating the consumer
        await asyncio.gather(
            *(consume_events(b, h, durable="shared") for b, h in zip(others, handlers, strict=True))
        )
        events = [task_completed(orchestration_id=f"o_{i}") for i in range(40)]
        for event in events:
            await bus.publish(event)
        await wait_until(lambda: sum(len(h.handled) for h in handlers) == 40)
        await asyncio.sleep(0.1)
        handled = [e.event_id for h in handlers for e in h.handled]
        assert sorted(handled) == sorted(e.event_id for e in events)  # each exactly once
        assert all(h.handled for h in handlers)  # both replicas got work
    finally:
        for other in others:
            await other.close()


async def test_a_changed_filter_updates_the_existing_consumer(
    bus: Bus, nats_url: str, topology: Topology
) -> None:
    old = await Bus.connect(nats_url, topology, name="v1")
    await consume_events(old, Recorder(), durable="svc")
    await old.close()
    handler = Recorder()
    await bus.consume(
        stream=topology.events_stream,
        durable="svc",
        filter_subjects=[topology.all_of("task.completed"), topology.all_of("task.failed")],
        handler=handler,
        ack_wait_s=12.0,
    )
    info = await bus.js.consumer_info(topology.events_stream, "svc")
    assert sorted(info.config.filter_subjects or []) == sorted(
        [topology.all_of("task.completed"), topology.all_of("task.failed")]
    )
    assert info.config.ack_wait == pytest.approx(12.0)
    await bus.publish(task_completed(orchestration_id="o_1"))
    await wait_until(lambda: len(handler.handled) == 1)


async def test_raw_event_bytes_are_what_is_stored(bus: Bus) -> None:
    event = task_completed(orchestration_id="o_1")
    ack = await bus.publish(event)
    stored = await bus.js.get_msg(bus.topology.events_stream, ack.seq)
    assert stored.data == encode(event)


# --- key-value and connection --------------------------------------------------------------


async def test_kv_creates_then_opens_the_bucket(bus: Bus) -> None:
    kv = await bus.kv("idem", history=2)
    await kv.put("o_1.payment", b"done")
    again = await bus.kv("idem")
    entry = await again.get("o_1.payment")
    assert entry.value == b"done"
    status = await again.status()
    assert status.bucket == bus.topology.bucket("idem")
    assert status.history == 2


async def test_connecting_to_no_broker_fails_fast() -> None:
    started = time.monotonic()
    with pytest.raises(BrokerUnavailable, match="cannot reach NATS"):
        await Bus.connect(
            f"nats://127.0.0.1:{free_port()}", Topology(), name="x", connect_timeout=0.5
        )
    assert time.monotonic() - started < 10


async def test_bind_streams_waits_for_streams(nats_url: str) -> None:
    bus = await Bus.connect(nats_url, Topology(namespace="nobinds"), name="b")
    try:
        with pytest.raises(BrokerUnavailable, match="does not exist"):
            await bus.bind_streams(timeout_s=0.3)
        assert bus.connected
    finally:
        await bus.close()


async def test_ensure_streams_is_idempotent(bus: Bus) -> None:
    await bus.ensure_streams()
    await bus.ensure_streams()
    await bus.bind_streams(timeout_s=1)
    names = {c.name for c in bus.topology.stream_configs()}
    for name in names:
        assert (await bus.js.stream_info(name)).config.name == name


async def test_close_does_not_wait_for_handlers_while_the_broker_is_gone(
    tmp_path: Path, namespace: str
) -> None:
    """A process must stop within its grace period even while the broker is down: handlers
    that need it cannot finish, so close() waits for them only BROKER_PATIENCE_S once it is
    unreachable, not its whole handler timeout."""
    server = EmbeddedNats(tmp_path / "store").start()
    try:
        consumer = await Bus.connect(server.url, Topology(namespace=namespace), name="consumer")
        await consumer.ensure_streams()
        gate = Gate()
        await consume_events(consumer, gate, concurrency=8)
        await consumer.publish(task_completed(event_id="e0", orchestration_id="o_0"))
        await wait_until(lambda: gate.running == 1)
        server.kill()
        t0 = time.monotonic()
        await consumer.close(handler_timeout_s=30.0)
        took = time.monotonic() - t0
        assert took < BROKER_PATIENCE_S + 2.0, f"close took {took:.1f}s"
        assert gate.cancelled == ["e0"]
    finally:
        server.stop()


async def test_waiting_for_broker_work_ends_when_it_finishes_or_its_time_is_up(
    bus: Bus,
) -> None:
    done = asyncio.get_running_loop().create_future()
    asyncio.get_running_loop().call_later(0.1, done.set_result, None)
    assert await bus.wait_while_reachable(done, 5.0)
    never = asyncio.get_running_loop().create_future()
    t0 = time.monotonic()
    assert not await bus.wait_while_reachable(never, 0.3)
    assert 0.25 < time.monotonic() - t0 < 2.0
