"""Settings of the notifier, read once from ``ORRA_*`` environment variables."""

from __future__ import annotations

import os
from dataclasses import dataclass

from orra_events.runtime import env_bool, env_float, env_int
from orra_notifier.errors import InvalidSettings

__all__ = ["NotifierSettings"]


@dataclass(frozen=True)
class NotifierSettings:
    """How the notifier delivers webhooks.

    Attributes:
        deadline_s: ``ORRA_NOTIFIER_DEADLINE_S``; how long after its first attempt a
            delivery keeps being retried before it is given up (24 h by default).
        timeout_s: ``ORRA_NOTIFIER_TIMEOUT_S``; the whole time one HTTP attempt may take.
        backoff_base_s: ``ORRA_NOTIFIER_BACKOFF_BASE_S``; delay before the second attempt;
            it doubles on every further attempt (with jitter).
        backoff_max_s: ``ORRA_NOTIFIER_BACKOFF_MAX_S``; the longest delay between two
            attempts (a ``Retry-After`` header may ask for more, up to the deadline).
        allow_private: ``ORRA_ALLOW_PRIVATE_WEBHOOKS``; deliver to loopback, private,
            link-local and other non-public addresses (``orra up`` turns it on; production
            keeps it off so that a webhook cannot reach the cluster's own network).
        concurrency: ``ORRA_NOTIFIER_CONCURRENCY``; HTTP attempts one replica runs at once.
        max_pending: ``ORRA_NOTIFIER_MAX_PENDING``; deliveries that may wait for a retry
            at once across replicas (JetStream ``max_ack_pending``).
        ack_wait_s: ``ORRA_NOTIFIER_ACK_WAIT_S``; after this long without news from a
            crashed replica JetStream hands its delivery to another one.
        poll_s: ``ORRA_NOTIFIER_POLL_S``; how long one pull request waits for messages
            before the notifier asks again.
        user_agent: The ``User-Agent`` of every request.
    """

    deadline_s: float = 86_400.0
    timeout_s: float = 10.0
    backoff_base_s: float = 5.0
    backoff_max_s: float = 3_600.0
    allow_private: bool = False
    concurrency: int = 32
    max_pending: int = 10_000
    ack_wait_s: float = 30.0
    poll_s: float = 1.0
    user_agent: str = "Orra-Webhooks/1"

    def __post_init__(self) -> None:
        """Refuse settings the notifier cannot work with.

        Raises:
            InvalidSettings: naming the setting.
        """
        if self.deadline_s <= 0 or self.timeout_s <= 0 or self.backoff_base_s <= 0:
            raise InvalidSettings("deadline, timeout and backoff base must be positive")
        if self.backoff_max_s < self.backoff_base_s:
            raise InvalidSettings("ORRA_NOTIFIER_BACKOFF_MAX_S must be >= the backoff base")
        if self.concurrency < 1 or self.max_pending < 1:
            raise InvalidSettings("concurrency and max pending must be at least 1")
        if not 0 < self.poll_s <= 30:
            raise InvalidSettings("ORRA_NOTIFIER_POLL_S must be in (0, 30]")
        if self.ack_wait_s < 1:
            raise InvalidSettings("ORRA_NOTIFIER_ACK_WAIT_S must be at least 1 second")

    @classmethod
    def from_env(cls) -> NotifierSettings:
        """Read the settings from the environment; unset variables keep their defaults."""
        d = cls()
        return cls(
            deadline_s=env_float("ORRA_NOTIFIER_DEADLINE_S", d.deadline_s),
            timeout_s=env_float("ORRA_NOTIFIER_TIMEOUT_S", d.timeout_s),
            backoff_base_s=env_float("ORRA_NOTIFIER_BACKOFF_BASE_S", d.backoff_base_s),
            backoff_max_s=env_float("ORRA_NOTIFIER_BACKOFF_MAX_S", d.backoff_max_s),
            allow_private=env_bool("ORRA_ALLOW_PRIVATE_WEBHOOKS", default=d.allow_private),
            concurrency=env_int("ORRA_NOTIFIER_CONCURRENCY", d.concurrency),
            max_pending=env_int("ORRA_NOTIFIER_MAX_PENDING", d.max_pending),
            ack_wait_s=env_float("ORRA_NOTIFIER_ACK_WAIT_S", d.ack_wait_s),
            poll_s=env_float("ORRA_NOTIFIER_POLL_S", d.poll_s),
            user_agent=os.environ.get("ORRA_NOTIFIER_USER_AGENT", d.user_agent),
        )
