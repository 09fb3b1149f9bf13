"""Helpers of the notifier tests: fast settings, terminal events, waiting for outcomes."""

from __future__ import annotations

import asyncio
from typing import Any

from orra_events import Bus, OrchestrationDone, WebhookDelivered, WebhookFailed, decode
from orra_notifier import NotifierSettings

Outcome = WebhookDelivered | WebhookFailed


def fast_settings(**overrides: Any) -> NotifierSettings:
    fields: dict[str, Any] = {
        "backoff_base_s": 0.05,
        "backoff_max_s": 0.4,
        "timeout_s": 2.0,
        "allow_private": True,
        "ack_wait_s": 5.0,
        "deadline_s": 60.0,
        "poll_s": 0.2,
    }
    fields.update(overrides)
    return NotifierSettings(**fields)


def done(orch: str, webhook: str | None, **fields: Any) -> OrchestrationDone:
    """``orchestration.done``; ``results`` (the flat view) is one task's output by default."""
    results = fields.pop("results", {"orderStatus": "processed"})
    return OrchestrationDone(
        event_id=f"end:{orch}",
        orchestration_id=orch,
        results=results,
        outputs=fields.pop("outputs", {"notify": dict(results)}),
        webhook=webhook,
        **fields,
    )


async def outcomes(bus: Bus, orch: str, count: int = 1, timeout: float = 15.0) -> list[Outcome]:
    """The first ``count`` webhook outcome events of an orchestration, waiting for them."""
    sub = await bus.js.subscribe(
        bus.topology.history_of(orch), stream=bus.topology.events_stream, ordered_consumer=True
    )
    found: list[Outcome] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    try:
        while len(found) < count:
            msg = await sub.next_msg(timeout=max(0.05, deadline - loop.time()))
            event = decode(msg.data)
            if isinstance(event, WebhookDelivered | WebhookFailed):
                found.append(event)
    finally:
        await sub.unsubscribe()
    return found
