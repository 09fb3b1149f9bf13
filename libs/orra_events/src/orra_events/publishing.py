"""What the broker answers to a publish: acks, refusals, and compare-and-set conflicts.

:func:`is_cas_conflict` is the one test of a refused optimistic-concurrency write
(``Nats-Expected-Last-Subject-Sequence`` or a KV update with a stale revision): the planner,
the dispatcher's snapshot store, the SDK's result store and its registration all ask it,
whether the refusal came as nats-py's ``APIError`` or as a :class:`PublishError` of the
connection's pipelined publisher (``Bus.publisher``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

import msgspec

from orra_events.errors import OrraEventsError

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = [
    "WRONG_LAST_SEQUENCE",
    "PubAck",
    "PublishError",
    "Result",
    "is_cas_conflict",
    "raise_first_error",
]

WRONG_LAST_SEQUENCE: Final = frozenset({10071, 10164})
"""JetStream ``err_code`` values of a refused expected last (subject) sequence: ``10071``
(wrong last sequence, with the sequence in the description) and ``10164`` (the same refusal
as newer servers word it)."""


def is_cas_conflict(err_code: int | None) -> bool:
    """Whether a JetStream error code is a compare-and-set conflict (wrong last sequence).

    Args:
        err_code: The ``err_code`` of the broker's error (``None`` when it had none).
    """
    return err_code in WRONG_LAST_SEQUENCE


class PubAck(msgspec.Struct, frozen=True):
    """The broker's acknowledgement of one stored message.

    Attributes:
        stream: The stream that stored it.
        seq: Its sequence in that stream (for a KV bucket: the key's new revision).
        duplicate: Whether the stream already had a message with its ``Nats-Msg-Id``
            within the duplicate window (nothing new was stored).
    """

    stream: str = ""
    seq: int = 0
    duplicate: bool = False


class PublishError(OrraEventsError):
    """The broker refused a message (or nobody stored it).

    Attributes:
        code: HTTP-like status (400, 404, 503...).
        err_code: JetStream error code (``10071``: wrong last sequence).
        description: The broker's description.
    """

    def __init__(self, code: int, err_code: int, description: str) -> None:
        super().__init__(f"publish refused ({code}/{err_code}): {description}")
        self.code = code
        self.err_code = err_code
        self.description = description

    @property
    def conflict(self) -> bool:
        """Whether this is a compare-and-set conflict (see :func:`is_cas_conflict`)."""
        return is_cas_conflict(self.err_code)


Result = PubAck | PublishError
"""What a batch of publishes holds for each of its messages."""


def raise_first_error(results: Iterable[Result]) -> list[PubAck]:
    """Return the acks of a batch, or raise the first :class:`PublishError` among them.

    Raises:
        PublishError: a message of the batch was refused.
    """
    acks: list[PubAck] = []
    for result in results:
        if isinstance(result, PublishError):
            raise result
        acks.append(result)
    return acks
