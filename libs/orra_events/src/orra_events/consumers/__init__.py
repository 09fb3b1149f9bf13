"""The two ways Orra consumes a JetStream stream, with one ack policy.

* :class:`PushConsumer`: a push-group consumer for the hot paths (the dispatcher's intake,
  the planner): the broker pushes, a callback handles, replicas share one deliver group.
* :class:`PullConsumer`: a bounded pull consumer (the SDK's workers, the notifier): each
  replica asks for as many messages as it has free slots, through a callback on an inbox.

Both create or update their :class:`Durable`, decode each message, park what cannot be
decoded on ``dlq.<subject>``, and settle each message by the same rules (see
:class:`Consumer`): ack when the handler returns, redeliver on :class:`Retry` or an error,
park on :class:`Park` or after ``max_deliver`` deliveries, hand back what arrives while
stopping.
"""

from orra_events.consumers._base import (
    DELIVER_PREFIX,
    Consumer,
    Decoder,
    Durable,
    Handler,
    Park,
    Retry,
    delivery,
    ensure_durable,
)
from orra_events.consumers.pull import PullConsumer
from orra_events.consumers.push import PushConsumer

__all__ = [
    "DELIVER_PREFIX",
    "Consumer",
    "Decoder",
    "Durable",
    "Handler",
    "Park",
    "PullConsumer",
    "PushConsumer",
    "Retry",
    "delivery",
    "ensure_durable",
]
