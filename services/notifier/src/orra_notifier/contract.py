"""What the notifier receives and sends, declared once for the AsyncAPI document.

Read by :mod:`orra_events.asyncapi` (entry point ``orra.asyncapi``); the notifier never
imports this module. Its subscriptions are read from the durable consumers it runs
(:func:`orra_notifier.app.fanout_durable`, :func:`orra_notifier.app.delivery_durable`).
"""

from __future__ import annotations

from orra_events import EVENT_TYPES, Topology, WebhookDelivered, WebhookFailed, WebhookRetrying
from orra_events.asyncapi import Declarations
from orra_events.jobs import DeliveryJob
from orra_notifier.app import delivery_durable, fanout_durable
from orra_notifier.settings import NotifierSettings

__all__ = ["JOBS", "NOTIFIER"]

_TOPOLOGY = Topology()
JOBS = "notifier.delivery.{orchestrationId}"
"""Address of the delivery jobs (one per orchestration and target URL)."""

NOTIFIER = Declarations("notifier")
"""The notifier's subscriptions and publications."""

_FANOUT = fanout_durable(_TOPOLOGY)
for _subject in _FANOUT.filter_subjects:
    NOTIFIER.receive(
        EVENT_TYPES[_subject.removesuffix(".*")],
        how="pull",
        stream=_FANOUT.stream,
        consumer=_FANOUT.name,
        description="Fanned out into one delivery job per target URL.",
    )
_DELIVERY = delivery_durable(_TOPOLOGY, NotifierSettings())
NOTIFIER.receive(
    DeliveryJob,
    how="pull",
    family=JOBS,
    stream=_DELIVERY.stream,
    consumer=_DELIVERY.name,
    description="One webhook delivery: signed, POSTed, retried with backoff until its "
    "deadline; the unacknowledged job is the pending retry.",
)
NOTIFIER.send(
    DeliveryJob,
    family=JOBS,
    description="The delivery jobs of a result (work-queue stream ORRA_WEBHOOKS).",
)
for _sent in (WebhookDelivered, WebhookFailed, WebhookRetrying):
    NOTIFIER.send(_sent)
NOTIFIER.send(None)
