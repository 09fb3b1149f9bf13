"""Canary: the nats-py internals that ``orra_events._fastpub`` writes are still what it expects.

``_fastpub`` appends protocol commands to nats-py's pending buffer and wakes its flusher,
and marks acknowledged messages as nats-py does (see its module docstring). A nats-py
upgrade that changes any of this must fail here, loudly and by name, before anything
subtler breaks: then update ``libs/orra_events/src/orra_events/_fastpub.py`` (or pin
nats-py below the breaking version). The last test tells when nats.py#985, the reason the
dispatcher and the SDK cannot use ``publish_async``, is fixed.
"""

from __future__ import annotations

import asyncio
import inspect
from importlib.metadata import version

import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.errors import MsgAlreadyAckdError

from orra_events import Bus, encode
from orra_events._fastpub import INTERNALS, FastPublisher
from tests.factories import task_completed

NATS_PY = version("nats-py")


def _broken(what: str) -> str:
    return (
        f"nats-py {NATS_PY} changed {what}: orra_events._fastpub relies on it "
        "(libs/orra_events/src/orra_events/_fastpub.py, module docstring); adapt it or pin "
        "nats-py to the last version this test passed with"
    )


async def test_the_client_has_the_pending_buffer_and_flusher_fastpub_writes_to(bus: Bus) -> None:
    nc = bus.nc
    for name in INTERNALS:
        assert hasattr(nc, name), _broken(f"Client.{name} (it is gone)")
    assert isinstance(nc._pending, list), _broken("Client._pending (no longer a list of bytes)")
    assert all(isinstance(cmd, bytes) for cmd in nc._pending), _broken("Client._pending items")
    assert isinstance(nc._pending_data_size, int), _broken("Client._pending_data_size")
    assert isinstance(nc._max_pending_size, int), _broken("Client._max_pending_size")
    assert nc._max_pending_size > 0, _broken("Client._max_pending_size (the buffer limit)")
    assert isinstance(nc._flush_queue, asyncio.Queue), _broken("Client._flush_queue")
    assert isinstance(nc._flusher_task, asyncio.Task), _broken("Client._flusher_task")
    assert not nc._flusher_task.done(), _broken("Client._flusher_task (not running)")
    assert inspect.iscoroutinefunction(Client._flush_pending), _broken("Client._flush_pending")


async def test_a_command_appended_to_the_pending_buffer_leaves_with_the_flusher(bus: Bus) -> None:
    # What FastPublisher.send does: append to _pending, wake the flusher through
    # _flush_queue, no flush() call. The message must reach a subscriber on its own.
    nc = bus.nc
    got: asyncio.Queue[Msg] = asyncio.Queue()

    async def on_msg(msg: Msg) -> None:
        await got.put(msg)

    sub = await nc.subscribe("canary.flusher", cb=on_msg)
    await nc.flush()
    publisher = FastPublisher(nc)
    publisher.send("canary.flusher", b"through the flusher")
    msg = await asyncio.wait_for(got.get(), 2.0)
    assert msg.data == b"through the flusher", _broken("the flusher (it did not write _pending)")
    assert nc._pending_data_size == 0, _broken("Client._pending_data_size (not reset by a flush)")
    await sub.unsubscribe()


async def test_nats_py_still_publishes_through_the_same_buffer(bus: Bus) -> None:
    # Client.publish itself appends to _pending and counts its size: the invariant
    # FastPublisher keeps when it writes there too. Checked with a wake-up already queued
    # (as after another publish of the same turn), so that nothing is written meanwhile.
    nc = bus.nc
    queued: asyncio.Queue[asyncio.Future[None]] = asyncio.Queue()
    queued.put_nowait(asyncio.get_running_loop().create_future())
    queue, nc._flush_queue = nc._flush_queue, queued
    try:
        before = nc._pending_data_size
        await nc.publish("canary.same.buffer", b"x")
        assert nc._pending, _broken("Client.publish (it no longer appends to _pending)")
        assert nc._pending[-1].startswith(b"PUB canary.same.buffer"), _broken("Client._pending")
        assert nc._pending_data_size == before + len(nc._pending[-1]), _broken(
            "Client._pending_data_size (no longer the bytes in _pending)"
        )
    finally:
        nc._flush_queue = queue
        await nc.flush()


async def test_a_fastpub_ack_marks_the_message_acked_for_nats_py(bus: Bus) -> None:
    # FastPublisher.ack sets Msg._ackd, so nats-py's own Msg.ack() refuses a second ack.
    event = task_completed()
    await bus.publish(event)
    sub = await bus.js.pull_subscribe(
        bus.topology.subject_for(event), "canary_acks", bus.topology.events_stream
    )
    (msg,) = await sub.fetch(1, timeout=2.0)
    assert getattr(msg, "_ackd", None) is False, _broken(
        "Msg._ackd (gone, or not False on delivery)"
    )
    bus.publisher.ack(msg)
    assert msg._ackd is True
    with pytest.raises(MsgAlreadyAckdError):
        await msg.ack()  # nats-py reads the same flag
    await sub.unsubscribe()


async def test_publish_async_still_leaves_a_refused_publish_unanswered(bus: Bus) -> None:
    """nats.py#985: ``publish_async``'s future of a publish the broker refuses never ends.

    When this fails, nats-py resolves that future: the pipelined publisher's reason to
    exist for compare-and-set writes is gone, and ``_fastpub`` may be reconsidered (after
    measuring both against each other in one benchmark run).
    """
    event = task_completed()
    future = await bus.js.publish_async(
        bus.topology.subject_for(event),
        encode(event),
        headers={"Nats-Expected-Last-Subject-Sequence": "99"},  # refused: wrong last sequence
    )
    done, _ = await asyncio.wait({future}, timeout=1.0)
    future.cancel()
    assert not done, (
        f"nats.py#985 looks fixed in nats-py {NATS_PY}: publish_async answered a refused "
        "publish; see orra_events._fastpub's module docstring"
    )
