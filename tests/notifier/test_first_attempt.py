"""The fan-out's first attempt: a replica dying at each step of it (docs/guarantees.md).

The replica that holds the terminal event makes each delivery's first attempt. It "dies"
here by losing its connection at one step (nothing more leaves it: no ack, no event), and
a second replica, started then, takes the terminal event once JetStream hands it out
again (after the ack wait).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import pytest

from orra_events import Bus, WebhookDelivered
from orra_notifier.attempts import Attempter
from orra_notifier.delivery import Deliverer
from orra_notifier.handlers import DELIVERY_CONSUMER, FANOUT_CONSUMER, jobs_stream

from .helpers import done, outcomes
from .receiver import Receiver

if TYPE_CHECKING:
    from .conftest import StartNotifier

ACK_WAIT_S = 1.0


async def _settled(bus: Bus, *, job: bool) -> None:
    """Until the terminal event was taken twice and acked (and the job, if any, acked)."""
    topology = bus.topology
    for _ in range(150):
        fan = await bus.js.consumer_info(topology.events_stream, FANOUT_CONSUMER)
        jobs = await bus.js.consumer_info(jobs_stream(topology), DELIVERY_CONSUMER)
        if (
            fan.num_ack_pending == 0
            and fan.ack_floor.consumer_seq >= 2
            and jobs.num_ack_pending == 0
            and (jobs.ack_floor.consumer_seq >= 1) == job
        ):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"not settled: {fan}, {jobs}")


@pytest.mark.parametrize(
    ("step", "posts"),
    [
        ("before the post", 1),  # held the event, then died: the next holder posts once
        ("after the post, before the outcome is recorded", 2),  # the known repeat
        ("after the outcome is recorded, before the ack", 1),  # never posted again
    ],
)
async def test_a_replica_dying_during_a_first_attempt(
    bus: Bus,
    nats_url: str,
    start_notifier: StartNotifier,
    monkeypatch: pytest.MonkeyPatch,
    step: str,
    posts: int,
) -> None:
    victim = await Bus.connect(nats_url, bus.topology, name="victim")
    died = asyncio.Event()

    async def die() -> None:
        died.set()
        await victim.nc.close()  # no ack, nothing appended after this point
        await asyncio.Event().wait()  # the "process" is gone: its handler never returns

    real_post, real_finish = Deliverer.post, Attempter._finish_soon

    async def post(self: Deliverer, *args: Any) -> Any:
        if died.is_set():
            return await real_post(self, *args)
        if step == "before the post":
            await die()
        result = await real_post(self, *args)
        if step.startswith("after the post"):
            await die()
        return result

    async def finish(self: Attempter, *args: Any) -> None:
        await real_finish(self, *args)
        if not died.is_set() and step.startswith("after the outcome"):
            await die()

    monkeypatch.setattr(Deliverer, "post", post)
    monkeypatch.setattr(Attempter, "_finish_soon", finish)
    try:
        async with Receiver() as receiver:
            await start_notifier(on=victim, ack_wait_s=ACK_WAIT_S, timeout_s=0.5)
            await bus.publish(done("o_die1", receiver.url()))
            await asyncio.wait_for(died.wait(), 10)
            await start_notifier(ack_wait_s=ACK_WAIT_S)
            [outcome] = await outcomes(bus, "o_die1")
            # the second holder queues a job (an attempt may have been made): the worker
            # posts only when no outcome is recorded
            await _settled(bus, job=True)
            await asyncio.sleep(0.2)
            requests = list(receiver.requests)
        subject = bus.topology.subject("webhook.delivered", "o_die1")
        info = await bus.js.stream_info(bus.topology.events_stream, subjects_filter=subject)
    finally:
        await victim.close()

    assert isinstance(outcome, WebhookDelivered)
    assert info.state.subjects == {subject: 1}  # one outcome event
    assert len(requests) == posts
    assert len({r.headers["webhook-id"] for r in requests}) == 1
