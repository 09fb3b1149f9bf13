"""App factory of the notifier: wires its handlers to the bus.

Two durable pull consumers (see :mod:`orra_notifier.handlers` for their ack policies):
``notifier`` on the events stream fans terminal orchestration events out into delivery
jobs, and ``notifier_delivery`` on the notifier's ``ORRA_WEBHOOKS`` work-queue stream
delivers them. Every replica runs both; JetStream shares the messages between them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from orra_notifier.consumer import PullConsumer
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

__all__ = ["delivery_consumer_config", "fanout_consumer_config", "setup"]

_FANOUT_CONCURRENCY = 16
_FANOUT_GRACE_S = 5.0


def fanout_consumer_config(topology: Topology, ack_wait_s: float = 30.0) -> ConsumerConfig:
    """The ``notifier`` consumer: terminal orchestration events, from the first one kept.

    Its ack wait is the notifier's (``ORRA_NOTIFIER_ACK_WAIT_S``): the terminal events a
    crashed replica had fetched are handed out again after it.
    """
    return ConsumerConfig(
        name=FANOUT_CONSUMER,
        durable_name=FANOUT_CONSUMER,
        ack_policy=AckPolicy.EXPLICIT,
        ack_wait=ack_wait_s,
        max_deliver=-1,
        max_ack_pending=1000,
        deliver_policy=DeliverPolicy.ALL,
        filter_subjects=[
            topology.all_of("orchestration.done"),
            topology.all_of("orchestration.failed"),
            topology.all_of("orchestration.aborted"),
            topology.all_of("orchestration.compensated"),
        ],
    )


def delivery_consumer_config(topology: Topology, settings: NotifierSettings) -> ConsumerConfig:
    """The ``notifier_delivery`` consumer: every delivery job, retried until its deadline."""
    return ConsumerConfig(
        name=DELIVERY_CONSUMER,
        durable_name=DELIVERY_CONSUMER,
        ack_policy=AckPolicy.EXPLICIT,
        ack_wait=settings.ack_wait_s,
        max_deliver=-1,
        max_ack_pending=settings.max_pending,
        deliver_policy=DeliverPolicy.ALL,
        filter_subject=jobs_filter(topology),
    )


async def setup(bus: Bus, settings: NotifierSettings | None = None) -> Stop:
    """Start the notifier's consumers on ``bus``; return how to stop them.

    Args:
        bus: A connected bus whose streams exist.
        settings: The notifier's settings; read from ``ORRA_*`` variables by default.

    Returns:
        A coroutine function that stops fetching, lets attempts in hand finish (up to the
        HTTP timeout), and closes the HTTP client. Pending retries stay in JetStream.
    """
    settings = settings or NotifierSettings.from_env()
    topology = bus.topology
    stores = await Stores.open(bus, deadline_s=settings.deadline_s)
    deliverer = Deliverer(settings)
    worker = DeliveryWorker(bus, stores, deliverer, settings)
    delivery = PullConsumer(
        bus,
        stream=jobs_stream(topology),
        config=delivery_consumer_config(topology, settings),
        handler=worker,
        concurrency=settings.concurrency,
        poll_s=settings.poll_s,
    )
    fanout = PullConsumer(
        bus,
        stream=topology.events_stream,
        config=fanout_consumer_config(topology, settings.ack_wait_s),
        handler=FanOut(bus, stores),
        concurrency=_FANOUT_CONCURRENCY,
        poll_s=settings.poll_s,
    )
    try:
        await delivery.start()
        await fanout.start()
    except BaseException:
        await delivery.stop(grace_s=0)
        await deliverer.aclose()
        raise

    async def stop() -> None:
        await fanout.stop(grace_s=_FANOUT_GRACE_S)
        worker.stopping = True
        await delivery.stop(grace_s=settings.timeout_s + 1.0)
        await deliverer.aclose()

    return stop
