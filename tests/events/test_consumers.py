"""The bounded pull consumer of ``orra_events.consumers`` against a real nats-server.

The push consumer is what ``Bus.consume`` runs (tests/events/test_bus.py); these show the
pull consumer keeps the same rules (ack policy, parking, the durable's updates) and its
own: it never holds more messages than it has free slots.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from nats.aio.msg import Msg

from orra_events import Bus, Event, OrraEventsError, Retry, decode
from orra_events.consumers import Durable, Park, PullConsumer, PushConsumer, ensure_durable
from orra_events.deadletter import HDR_REASON
from tests.events.test_bus import dlq_messages, wait_until
from tests.factories import task_completed


def _durable(bus: Bus, name: str = "pull1", *subjects: str, **kw: Any) -> Durable:
    t = bus.topology
    return Durable(
        stream=t.events_stream,
        name=name,
        filter_subjects=subjects or (t.all_of("task.completed"),),
        **kw,
    )


async def _publish(bus: Bus, n: int, orchestration_id: str = "o_pull") -> list[Event]:
    events: list[Event] = [
        task_completed(event_id=f"e{i}", orchestration_id=f"{orchestration_id}{i}")
        for i in range(n)
    ]
    await bus.publish_all(events)
    return events


async def test_a_pull_consumer_never_runs_more_handlers_than_its_slots(bus: Bus) -> None:
    running, most, done = 0, 0, []
    release = asyncio.Event()

    async def handler(event: Event, msg: Msg) -> None:
        nonlocal running, most
        running += 1
        most = max(most, running)
        await release.wait()
        running -= 1
        done.append(event)

    consumer = PullConsumer(bus, _durable(bus), handler, concurrency=3, expires_s=1.0)
    await consumer.start()
    try:
        events = await _publish(bus, 10)
        await wait_until(lambda: running == 3)
        await asyncio.sleep(0.3)  # nothing more is handed out meanwhile
        assert consumer.inflight == 3
        info = await bus.js.consumer_info(bus.topology.events_stream, "pull1")
        assert info.num_ack_pending == 3
        release.set()
        await wait_until(lambda: len(done) == 10)
        assert most == 3
        assert sorted(e.event_id for e in done) == sorted(e.event_id for e in events)
        await wait_until(lambda: _acked(bus, 10))
    finally:
        await consumer.stop(timeout_s=1.0)


async def _acked(bus: Bus, n: int) -> bool:
    info = await bus.js.consumer_info(bus.topology.events_stream, "pull1")
    return info.ack_floor.stream_seq == n and info.num_ack_pending == 0


async def test_retry_park_and_undecodable_bytes_follow_the_ack_policy(bus: Bus) -> None:
    deliveries: dict[str, int] = {}

    async def handler(event: Event, msg: Msg) -> None:
        deliveries[event.orchestration_id] = deliveries.get(event.orchestration_id, 0) + 1
        if event.orchestration_id == "o_retry" and deliveries["o_retry"] < 3:
            raise Retry("not yet", delay_s=0.05)
        if event.orchestration_id == "o_park":
            raise Park("refused: no such service")

    consumer = PullConsumer(bus, _durable(bus), handler, concurrency=2, expires_s=1.0)
    await consumer.start()
    try:
        await bus.publish(task_completed(event_id="r", orchestration_id="o_retry"))
        await bus.publish(task_completed(event_id="p", orchestration_id="o_park"))
        await bus.js.publish(bus.topology.subject("task.completed", "o_bad"), b"{not an event")
        await wait_until(lambda: deliveries.get("o_retry") == 3)
        await wait_until(lambda: _dlq_count(bus, 2))
        parked = await dlq_messages(bus)
        reasons = sorted(m.headers[HDR_REASON] for m in parked)
        assert reasons[1] == "refused: no such service"
        assert reasons[0].startswith("MalformedEvent")
        await wait_until(lambda: _acked(bus, 3))
        await asyncio.sleep(0.2)
        assert deliveries == {"o_retry": 3, "o_park": 1}  # parked or acked: never again
    finally:
        await consumer.stop(timeout_s=1.0)


async def _dlq_count(bus: Bus, n: int) -> bool:
    return (await bus.js.stream_info(bus.topology.dlq_stream)).state.messages == n


async def test_a_failing_message_is_parked_after_max_deliver(bus: Bus) -> None:
    calls: list[int] = []

    async def handler(event: Event, msg: Msg) -> None:
        calls.append(msg.metadata.num_delivered)
        raise RuntimeError("boom")

    consumer = PullConsumer(
        bus, _durable(bus), handler, concurrency=1, max_deliver=2, retry_delay_s=0.02
    )
    await consumer.start()
    try:
        event = task_completed(orchestration_id="o_fail")
        await bus.publish(event)
        await wait_until(lambda: _dlq_count(bus, 1))
        (parked,) = await dlq_messages(bus)
        assert parked.headers[HDR_REASON] == "gave up after 2 deliveries: RuntimeError: boom"
        assert decode(parked.data) == event
        await asyncio.sleep(0.2)
        assert calls == [1, 2]
    finally:
        await consumer.stop(timeout_s=1.0)


@pytest.mark.parametrize("push", [False, True])
async def test_an_existing_durable_is_brought_to_the_new_filters(bus: Bus, push: bool) -> None:
    t = bus.topology
    old = _durable(bus, "evolving", t.all_of("task.completed"), ack_wait_s=5.0)
    await ensure_durable(bus.js, old, push=push)
    new = _durable(
        bus,
        "evolving",
        t.all_of("task.completed"),
        t.all_of("task.failed"),
        ack_wait_s=7.0,
        max_ack_pending=50,
    )
    info = await ensure_durable(bus.js, new, push=push)
    assert sorted(info.config.filter_subjects or []) == sorted(new.filter_subjects)
    assert info.config.ack_wait == pytest.approx(7.0)
    assert info.config.max_ack_pending == 50
    assert bool(info.config.deliver_subject) == push


async def test_a_durable_of_the_other_kind_is_refused_by_name(bus: Bus) -> None:
    await ensure_durable(bus.js, _durable(bus, "kind"), push=True)
    consumer = PullConsumer(bus, _durable(bus, "kind"), _never, concurrency=1)
    with pytest.raises(OrraEventsError, match="exists as a push consumer"):
        await consumer.start()
    await ensure_durable(bus.js, _durable(bus, "kind2"), push=False)
    push = PushConsumer(bus, _durable(bus, "kind2"), _never)
    with pytest.raises(OrraEventsError, match="not a push consumer"):
        await push.start()


async def _never(event: Event, msg: Msg) -> None:
    raise AssertionError("no message was expected")
