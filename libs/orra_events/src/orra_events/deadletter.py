"""The dead-letter stream's headers: what a parked copy of a message carries.

A message that cannot be handled (undecodable, not for its consumer, or failing too many
times) is copied to ``dlq.<original subject>`` (``ORRA_DLQ``) with its reason, then dropped
from where it was. :func:`dead_letter_headers` is the one place that builds the copy's
headers; :meth:`orra_events.Bus.park` and the registry followers
(:func:`orra_events.registry.park_registry_message`) use it.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Final

from orra_events.ids import dead_letter_id

if TYPE_CHECKING:
    from nats.aio.msg import Msg

__all__ = [
    "HDR_ORIGINAL_SEQUENCE",
    "HDR_ORIGINAL_STREAM",
    "HDR_ORIGINAL_SUBJECT",
    "HDR_REASON",
    "MAX_REASON",
    "dead_letter_headers",
]

HDR_REASON: Final = "Orra-Dead-Letter-Reason"
HDR_ORIGINAL_SUBJECT: Final = "Orra-Original-Subject"
HDR_ORIGINAL_STREAM: Final = "Orra-Original-Stream"
HDR_ORIGINAL_SEQUENCE: Final = "Orra-Original-Sequence"
MAX_REASON: Final = 2000
"""Characters of the reason kept in its header."""


def dead_letter_headers(msg: Msg, reason: str) -> dict[str, str]:
    """The headers of the parked copy of ``msg``.

    The copy keeps the application headers of the original and gains
    ``Orra-Dead-Letter-Reason`` (cut to :data:`MAX_REASON` characters) and
    ``Orra-Original-Subject``; for a JetStream message also ``Orra-Original-Stream``,
    ``Orra-Original-Sequence`` and ``Nats-Msg-Id`` ``dlq:<stream>:<sequence>``, so a message
    parked twice (its consumer died between parking and dropping it, or two followers park
    it at once) is stored once. The broker's own ``Nats-*`` headers of the original (its
    message id, optimistic-concurrency expectations) are dropped: they would be applied to
    the dead-letter stream.
    """
    headers = {k: v for k, v in (msg.headers or {}).items() if not k.startswith("Nats-")}
    headers[HDR_REASON] = reason[:MAX_REASON]
    headers[HDR_ORIGINAL_SUBJECT] = msg.subject
    with contextlib.suppress(Exception):  # a plain NATS message has no metadata
        meta = msg.metadata
        headers[HDR_ORIGINAL_STREAM] = meta.stream
        headers[HDR_ORIGINAL_SEQUENCE] = str(meta.sequence.stream)
        headers["Nats-Msg-Id"] = dead_letter_id(meta.stream, meta.sequence.stream)
    return headers
