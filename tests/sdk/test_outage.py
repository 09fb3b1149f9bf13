"""A broker that does not store a finished result never makes the SDK run the handler again.

Regression tests of issue 16, item 2: a long broker outage made the SDK drop results its
handlers had produced (``no reply from the broker in time``), and the redelivered tasks ran
their side effects a second time. The fault suite's ``test_broker.py`` shows the whole
story against a broker that hangs and dies; these cases pin each part down.
"""

from __future__ import annotations

import asyncio
import time

import msgspec
import pytest
from pydantic import BaseModel

from orra_events import Bus, TaskCompleted
from orra_events._fastpub import FastPublisher
from orra_sdk import Service, Task
from orra_sdk._results import Busy, Claimed, Record, ResultStore, kv_key
from orra_sdk.client import RESULTS_BUCKET
from tests.faults.harness import read_messages
from tests.sdk.conftest import Dispatch, work_left

pytestmark = pytest.mark.e2e


class In(BaseModel):
    n: int


class Out(BaseModel):
    n: int


async def test_a_result_the_broker_cannot_store_is_kept_and_the_handler_runs_once(
    bus: Bus, make_client: object, dispatch: Dispatch
) -> None:
    """JetStream answers 503 for the result (its streams are gone) for longer than the ack
    wait and the claim's lease; the SDK keeps the result, keeps the task in progress and
    records it once the stream is back. Before, it dropped the result and naked the task,
    which came back to the same process and ran the handler again."""
    svc = Service(name="Keeper", description="d", input=In, output=Out)
    runs: list[int] = []
    finish = asyncio.Event()

    @svc.handler
    async def run(task: Task[In]) -> Out:
        runs.append(task.attempt)
        await finish.wait()
        return Out(n=task.input.n)

    client = make_client(ack_wait_s=1.0)  # type: ignore[operator]
    await client.connect()
    await client.start(svc)
    await dispatch("Keeper", "t", {"n": 3}, orchestration_id="o_keep")
    async with asyncio.timeout(10):
        while not runs:
            await asyncio.sleep(0.02)
    # Neither the result record nor task.completed can be stored: "no responders" (503).
    events_stream = bus.topology.events_stream
    results_stream = f"KV_{bus.topology.bucket(RESULTS_BUCKET)}"
    configs = [(await bus.js.stream_info(s)).config for s in (events_stream, results_stream)]
    for config in configs:
        assert config.name is not None
        await bus.js.delete_stream(config.name)
    finish.set()
    await asyncio.sleep(4.0)  # > 2 ack waits (redeliveries) and > the 2 s lease
    for config in configs:
        await bus.ensure_stream(config)
    assert await work_left(bus, timeout=15.0) == 0, "the task was not acknowledged"
    stored = [
        msgspec.json.decode(m.data)
        for m in await read_messages(bus, events_stream, [f"{bus.topology.namespace}.task.>"])
    ]
    completed = [e for e in stored if e["type"] == TaskCompleted.TYPE]
    assert runs == [1], f"the handler ran {len(runs)} times"
    assert len(completed) == 1, stored
    assert completed[0]["output"] == {"n": 3}
    entry = await (await bus.kv(RESULTS_BUCKET)).get(kv_key("Keeper", "o_keep:t"))
    assert entry.value is not None
    assert msgspec.json.decode(entry.value, type=Record).state == "done"


async def test_an_expired_claim_is_taken_over_only_once_seen_unchanged_for_a_while(
    bus: Bus,
) -> None:
    """A lease that ran out during an outage does not prove its holder dead: it may be
    about to record its result. Another instance takes the claim over only after it saw it
    unchanged for ``takeover_after_s``; a renewal meanwhile starts the wait again."""
    kv = await bus.kv(RESULTS_BUCKET)
    publisher = FastPublisher(bus.nc)
    await publisher.start()
    try:
        holder = ResultStore(kv, holder="i_holder", publisher=publisher)
        other = ResultStore(kv, holder="i_other", publisher=publisher, takeover_after_s=1.0)
        key = kv_key("Svc", "o_lease:t")
        claim = await holder.claim(key, attempt=1, lease_s=0.05)
        assert isinstance(claim, Claimed)
        await asyncio.sleep(0.1)  # the lease has run out
        assert isinstance(await other.claim(key, attempt=1, lease_s=5.0), Busy)
        await asyncio.sleep(0.6)
        # The holder is back: it renews (still with a lease that has run out by now).
        assert await holder.renew(claim, attempt=1, lease_s=0.05)
        await asyncio.sleep(0.6)  # 1.2 s since the first look, 0.6 s since the renewal
        assert isinstance(await other.claim(key, attempt=1, lease_s=5.0), Busy)
        t0 = time.monotonic()
        while not isinstance(taken := await other.claim(key, attempt=1, lease_s=5.0), Claimed):
            assert time.monotonic() - t0 < 3.0, "never taken over"
            await asyncio.sleep(0.1)
        assert isinstance(taken, Claimed)
        # The renewal counted: not before 1 s after it.
        assert time.monotonic() - t0 >= 0.8
        assert not await holder.renew(claim, attempt=1, lease_s=5.0)  # taken over
    finally:
        await publisher.stop()


async def test_a_renewal_whose_own_earlier_write_was_stored_keeps_the_claim(bus: Bus) -> None:
    """A renewal whose ack was lost (a broker restart) but which was stored makes the next
    compare-and-set conflict with this instance's own write: the claim is read back and
    renewed, not given up (which would let another instance take it over)."""
    kv = await bus.kv(RESULTS_BUCKET)
    publisher = FastPublisher(bus.nc)
    await publisher.start()
    try:
        store = ResultStore(kv, holder="i_me", publisher=publisher)
        key = kv_key("Svc", "o_renew:t")
        claim = await store.claim(key, attempt=1, lease_s=5.0)
        assert isinstance(claim, Claimed)
        stale = Claimed(key, claim.revision)
        assert await store.renew(claim, attempt=1, lease_s=5.0)  # stored; "stale" missed it
        assert await store.renew(stale, attempt=1, lease_s=5.0)
        assert stale.revision > claim.revision
    finally:
        await publisher.stop()
