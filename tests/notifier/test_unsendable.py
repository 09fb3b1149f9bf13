"""Webhook URLs the HTTP client cannot send, and deliveries still being retried.

Issue 16, item 5: ``http://127.000.000.001:…`` and ``http://0177.0.0.1:…`` reached the
notifier, ``httpx`` refused them (``InvalidURL``), and the notifier took that for a
temporary failure: a traceback per attempt for 24 hours, and no webhook in the API. Such
URLs are now a permanent failure at the first attempt, reported once.

Item 7: a delivery being retried was invisible until it ended; each failed attempt that
is retried now appends ``webhook.retrying`` (attempts so far, next try), which the
projection folds into a ``retrying`` row.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from orra_events import Bus, Event, WebhookDelivered, WebhookFailed, WebhookRetrying, decode
from orra_events.projection import fold
from orra_notifier.delivery import Deliverer
from tests.planner.json_logs import json_logs

from .conftest import StartNotifier
from .helpers import done, fast_settings
from .receiver import Receiver, script


async def history(bus: Bus, orch: str, until: type[Event], timeout: float = 15.0) -> list[Event]:
    """The orchestration's events, up to the first ``until`` (then anything stored after)."""
    sub = await bus.js.subscribe(
        bus.topology.history_of(orch), stream=bus.topology.events_stream, ordered_consumer=True
    )
    events: list[Event] = []
    try:
        while not any(isinstance(e, until) for e in events):
            events.append(decode((await sub.next_msg(timeout=timeout)).data))
        while True:  # whatever else is stored already (a repeated report would show here)
            try:
                events.append(decode((await sub.next_msg(timeout=0.5)).data))
            except TimeoutError:
                break
    finally:
        await sub.unsubscribe()
    return events


@pytest.mark.parametrize("host", ["127.000.000.001", "0177.0.0.1"])
async def test_a_url_httpx_refuses_fails_once_for_good(
    bus: Bus, start_notifier: StartNotifier, host: str
) -> None:
    async with Receiver() as receiver:
        url = f"http://{host}:{receiver.port}/webhooks/orra"
        with json_logs("notifier") as logs:
            await start_notifier()  # private targets allowed: only sendability is at stake
            await bus.publish(done("o_bad1", url))
            events = await history(bus, "o_bad1", WebhookFailed)
            await asyncio.sleep(1.0)  # time for a retry, had there been one (backoff 0.05 s)
        assert receiver.requests == []
    [failed] = [e for e in events if isinstance(e, WebhookFailed)]
    assert failed.attempts == 1
    assert "cannot be sent" in failed.error
    assert "not a valid IPv4 address" in failed.error
    assert not [e for e in events if isinstance(e, WebhookRetrying)]
    [warning] = logs.where(event="webhook failed")
    assert warning["attempt"] == 1
    assert not logs.where(event="delivery step failed; will retry")
    assert not [line for line in logs.lines if "exception" in line or "Traceback" in str(line)]
    [view] = fold(events).values()
    assert [(w.url, w.status, w.attempts) for w in view.webhooks] == [(url, "failed", 1)]


async def test_every_spelling_of_a_private_address_is_refused_without_a_request(
    start_notifier: StartNotifier,
) -> None:
    async with Receiver() as receiver:
        deliverer = Deliverer(fast_settings(allow_private=False))
        try:
            for host in ("0x7f.0.0.1", "2130706433", "127.1", "0177.1"):
                url = f"http://{host}:{receiver.port}/hook"
                result = await deliverer.check_url(url)
                assert result is not None, host
                assert result.kind == "refused"
                assert "127.0.0.1" in (result.error or "")
            # and httpx refusing a URL is a refusal, not an error that is retried
            refused = await deliverer.post("http://[::1/hook", b"{}", {})
            assert refused.kind == "refused"
        finally:
            await deliverer.aclose()
        assert receiver.requests == []


async def test_a_delivery_being_retried_shows_its_attempts_and_next_try(
    bus: Bus, start_notifier: StartNotifier
) -> None:
    async with Receiver(script(503, 500, 200)) as receiver:
        await start_notifier(backoff_base_s=0.3, backoff_max_s=0.6)
        started = time.time()
        await bus.publish(done("o_pending1", receiver.url()))
        events = await history(bus, "o_pending1", WebhookDelivered)
    retrying = [e for e in events if isinstance(e, WebhookRetrying)]
    assert [(e.attempt, e.status_code) for e in retrying] == [(1, 503), (2, 500)]
    first, second = retrying
    assert first.event_id.startswith("wr:o_pending1:")
    assert first.event_id.endswith(":1")
    assert started < first.at < first.next_attempt_at <= first.at + 0.6
    assert [a.status_code for a in second.attempt_log] == [503, 500]
    delivered = next(e for e in events if isinstance(e, WebhookDelivered))
    assert second.webhook_id == delivered.webhook_id
    # while it is retried, the view shows it pending; once delivered, delivered
    pending_view = fold(events[: events.index(second) + 1])["o_pending1"]
    [pending] = pending_view.webhooks
    assert (pending.status, pending.attempts, pending.status_code) == ("retrying", 2, 500)
    assert pending.next_attempt_at == second.next_attempt_at
    assert [a.status_code for a in pending.attempt_log] == [503, 500]
    [final] = fold(events)["o_pending1"].webhooks
    assert (final.status, final.attempts, final.next_attempt_at) == ("delivered", 3, None)
