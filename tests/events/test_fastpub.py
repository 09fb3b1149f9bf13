"""FastPublisher against a real nats-server: batches, dedupe, CAS errors, acks, timeouts."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path

import psutil
import pytest

from orra_events import Bus, Topology, decode, encode
from orra_events._fastpub import FastPublisher
from orra_events.consumers import delivery
from orra_events.embedded import EmbeddedNats
from orra_events.errors import OrraEventsError
from orra_events.publishing import PubAck, PublishError, raise_first_error
from tests.factories import task_completed


@pytest.fixture
async def publisher(bus: Bus) -> AsyncIterator[FastPublisher]:
    pub = FastPublisher(bus.nc)
    await pub.start()
    try:
        yield pub
    finally:
        await pub.stop()


async def test_a_batch_resolves_with_every_ack_in_order(bus: Bus, publisher: FastPublisher) -> None:
    events = [task_completed(task_id=f"t{i}") for i in range(5)]
    batch = publisher.batch()
    for event in events:
        batch.add(bus.topology.subject_for(event), encode(event), msg_id=event.event_id)
    acks = raise_first_error(await batch.send())
    assert [type(a) for a in acks] == [PubAck] * 5
    assert [a.seq for a in acks] == sorted(a.seq for a in acks)
    assert all(a.stream == bus.topology.events_stream for a in acks)
    assert not any(a.duplicate for a in acks)
    assert publisher.pending == 0
    # Stored as published, with their Nats-Msg-Id.
    stored = await bus.js.get_msg(bus.topology.events_stream, acks[2].seq)
    assert decode(stored.data or b"") == events[2]
    assert stored.headers is not None
    assert stored.headers["Nats-Msg-Id"] == events[2].event_id


async def test_a_repeated_msg_id_is_acked_as_duplicate(bus: Bus, publisher: FastPublisher) -> None:
    event = task_completed()
    subject = bus.topology.subject_for(event)
    (first,) = await publisher.publish(subject, encode(event), msg_id=event.event_id)
    (again,) = await publisher.publish(subject, encode(event), msg_id=event.event_id)
    assert isinstance(first, PubAck)
    assert isinstance(again, PubAck)
    assert not first.duplicate
    assert again.duplicate
    assert again.seq == first.seq


async def test_compare_and_set_conflicts_are_answers_not_hangs(
    bus: Bus, publisher: FastPublisher
) -> None:
    kv = await bus.kv("fastpub_test")
    subject = f"{kv._pre}key"
    expected = "Nats-Expected-Last-Subject-Sequence"
    (created,) = await publisher.publish(subject, b"1", {expected: "0"})
    assert isinstance(created, PubAck)
    batch = publisher.batch()
    batch.add(subject, b"2", {expected: "0"})  # stale: the key exists
    batch.add(subject, b"3", {expected: str(created.seq)})  # right revision
    stale, updated = await asyncio.wait_for(batch.send(), 5)
    assert isinstance(stale, PublishError)
    assert stale.conflict
    assert stale.err_code in (10071, 10164)
    assert isinstance(updated, PubAck)
    assert (await kv.get("key")).value == b"3"
    with pytest.raises(PublishError):
        raise_first_error([updated, stale])


async def test_a_subject_no_stream_stores_is_refused(publisher: FastPublisher) -> None:
    (result,) = await asyncio.wait_for(publisher.publish("nostream.anywhere", b"x"), 5)
    assert isinstance(result, PublishError)
    assert result.code == 503
    assert not result.conflict


async def test_requests_get_their_reply(bus: Bus, publisher: FastPublisher) -> None:
    event = task_completed()
    await bus.publish(event)
    stream = bus.topology.events_stream
    reply = await publisher.request(
        f"$JS.API.DIRECT.GET.{stream}",
        b'{"last_by_subj": "%s"}' % bus.topology.subject_for(event).encode(),
    )
    assert decode(reply.data) == event
    missing = await publisher.request(
        f"$JS.API.DIRECT.GET.{stream}", b'{"last_by_subj": "nothing.here"}'
    )
    assert missing.headers is not None
    assert missing.headers.get("Status") == "404"


async def test_acks_and_naks_of_consumed_messages(bus: Bus, publisher: FastPublisher) -> None:
    event = task_completed()
    await bus.publish(event)
    stream = bus.topology.events_stream
    sub = await bus.js.pull_subscribe(bus.topology.subject_for(event), "fastpub_acks", stream)
    (msg,) = await sub.fetch(1, timeout=5)
    assert delivery(msg)[0] == 1
    publisher.nak(msg, 0.1)
    (msg,) = await sub.fetch(1, timeout=5)
    count, stored_at = delivery(msg)
    assert count == 2
    assert stored_at == pytest.approx(msg.metadata.timestamp.timestamp(), abs=1e-3)
    publisher.in_progress(msg)
    publisher.ack(msg)
    publisher.ack(msg)  # a second ack is a no-op
    await bus.nc.flush()
    for _ in range(50):
        info = await bus.js.consumer_info(stream, "fastpub_acks")
        if info.num_ack_pending == 0:
            break
        await asyncio.sleep(0.05)
    assert info.num_ack_pending == 0


async def test_an_unanswered_batch_times_out(bus: Bus) -> None:
    publisher = FastPublisher(bus.nc, timeout_s=0.2)
    await publisher.start()
    try:
        # A plain subscriber that never replies: the request waits for nobody's answer.
        sub = await bus.nc.subscribe("fastpub.silent")
        future = publisher.request("fastpub.silent", b"?")
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(future, 5)
        await sub.unsubscribe()
        assert publisher.pending == 0
    finally:
        await publisher.stop()


async def test_bad_subjects_and_headers_are_refused_before_sending(
    publisher: FastPublisher,
) -> None:
    batch = publisher.batch()
    with pytest.raises(ValueError, match="subject"):
        batch.add("has space", b"x")
    with pytest.raises(ValueError, match="header"):
        batch.add("ok.subject", b"x", {"Bad:Name": "v"})
    with pytest.raises(ValueError, match="Nats-Msg-Id"):
        batch.add("ok.subject", b"x", msg_id="a\r\nInjected: 1")
    assert len(batch) == 0
    assert await batch.send() == []
    assert publisher.pending == 0


async def test_it_must_be_started(bus: Bus) -> None:
    publisher = FastPublisher(bus.nc)
    with pytest.raises(OrraEventsError, match="start"):
        publisher.publish("x.y", b"")


async def test_writes_on_a_lost_connection_fail_once_it_is_back_not_at_their_timeout(
    tmp_path: Path,
) -> None:
    """A broker that hangs, then dies: what was written to it can never be answered. The
    batch fails as soon as the client has reconnected (so a caller that keeps a result and
    retries is not held for the whole timeout, during which another delivery could take its
    claim over), while a write buffered during the outage is answered after it."""
    server = EmbeddedNats(tmp_path / "store").start()
    try:
        bus = await Bus.connect(server.url, Topology(namespace="lost"), name="test")
        await bus.ensure_streams()
        publisher = FastPublisher(bus.nc, timeout_s=60.0)
        await publisher.start()
        try:
            event = task_completed(orchestration_id="o_lost")
            subject = bus.topology.subject_for(event)
            assert server.pid is not None
            os.kill(server.pid, signal.SIGSTOP)  # hangs: the write goes into its socket
            while psutil.Process(server.pid).status() != psutil.STATUS_STOPPED:
                await asyncio.sleep(0.01)  # a stop takes effect a moment after the signal
            lost = publisher.publish(subject, encode(event), msg_id=event.event_id)
            await asyncio.sleep(0.3)
            server.kill()
            while bus.connected:
                await asyncio.sleep(0.02)
            buffered = publisher.publish(subject, encode(event), msg_id="buffered")
            server.start()
            t0 = time.monotonic()
            with pytest.raises(TimeoutError, match="connection was lost"):
                await asyncio.wait_for(lost, 10)
            assert time.monotonic() - t0 < 5.0
            (ack,) = await asyncio.wait_for(buffered, 10)
            assert isinstance(ack, PubAck)
        finally:
            await publisher.stop()
            await bus.close()
    finally:
        server.stop()
