"""App factory of the notifier: wires its handlers to the bus.

Two durable pull consumers (see :mod:`orra_notifier.handlers` for their ack policies):
``notifier`` on the events stream makes the first attempt of each delivery a terminal
orchestration event causes (a delivery job only for one to retry), and
``notifier_delivery`` on the notifier's ``ORRA_WEBHOOKS`` work-queue stream makes the
retries. Every replica runs both; JetStream shares the messages between them.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from orra_events.consumers import Durable, PullConsumer
from orra_events.jobs import decode_delivery_job
from orra_notifier.attempts import Attempter
from orra_notifier.delivery import Deliverer
from orra_notifier.handlers import (
    DELIVERY_CONSUMER,
    FANOUT_CONSUMER,
    DeliveryWorker,
    FanOut,
    jobs_filter,
    jobs_stream,
)
from orra_notifier.settings import NotifierSettings
from orra_notifier.stores import Stores

if TYPE_CHECKING:
    from orra_events import Bus, Topology
    from orra_events.runtime import Stop

__all__ = ["delivery_durable", "fanout_durable", "setup"]


def fanout_durable(topology: Topology, ack_wait_s: float = 30.0) -> Durable:
    """The ``notifier`` consumer: terminal orchestration events, from the first one kept.

    Its ack wait is the notifier's (``ORRA_NOTIFIER_ACK_WAIT_S``): the terminal events a
    crashed replica had taken are handed out again after it.
    """
    return Durable(
        stream=topology.events_stream,
        name=FANOUT_CONSUMER,
        filter_subjects=(
            topology.all_of("orchestration.done"),
            topology.all_of("orchestration.failed"),
            topology.all_of("orchestration.aborted"),
            topology.all_of("orchestration.compensated"),
            topology.all_of("task.approval_requested"),
        ),
        ack_wait_s=ack_wait_s,
        max_ack_pending=1000,
    )


def delivery_durable(topology: Topology, settings: NotifierSettings) -> Durable:
    """The ``notifier_delivery`` consumer: every delivery job, retried until its deadline."""
    return Durable(
        stream=jobs_stream(topology),
        name=DELIVERY_CONSUMER,
        filter_subjects=(jobs_filter(topology),),
        ack_wait_s=settings.ack_wait_s,
        max_ack_pending=settings.max_pending,
    )


async def setup(bus: Bus, settings: NotifierSettings | None = None) -> Stop:
    """Start the notifier's consumers on ``bus``; return how to stop them.

    Args:
        bus: A connected bus whose streams exist.
        settings: The notifier's settings; read from ``ORRA_*`` variables by default.

    Returns:
        A coroutine function that stops taking messages, lets attempts in hand finish (up
        to the HTTP timeout), and closes the HTTP client. Pending retries stay in JetStream.
    """
    settings = settings or NotifierSettings.from_env()
    topology = bus.topology
    stores = await Stores.open(bus, deadline_s=settings.deadline_s, follow=True)
    deliverer = Deliverer(settings)
    attempter = Attempter(bus, stores, deliverer, settings)
    worker = DeliveryWorker(bus, attempter, settings)
    # Handlers decide every redelivery themselves (Retry with their delay, Park).
    delivery = PullConsumer(
        bus,
        delivery_durable(topology, settings),
        worker,
        concurrency=settings.concurrency,
        expires_s=settings.poll_s,
        decoder=decode_delivery_job,
        max_deliver=None,
    )
    fanout = PullConsumer(
        bus,
        fanout_durable(topology, settings.ack_wait_s),
        FanOut(bus, stores, attempter),
        concurrency=settings.concurrency,
        expires_s=settings.poll_s,
        max_deliver=None,
    )
    try:
        await delivery.start()
        await fanout.start()
    except BaseException:
        await delivery.stop(timeout_s=0)
        await deliverer.aclose()
        await stores.close()
        raise

    async def stop() -> None:
        # Set before the consumers stop: an outcome the broker cannot take is then given
        # up (its message is redelivered later) instead of retried until the outage ends.
        attempter.stopping = True
        # Both make attempts (the fan-out each delivery's first one, the worker the
        # retries): they stop together, each letting its requests in hand finish.
        await asyncio.gather(
            fanout.stop(timeout_s=settings.timeout_s + 1.0),
            delivery.stop(timeout_s=settings.timeout_s + 1.0),
        )
        await deliverer.aclose()
        await stores.close()

    return stop
