"""The gateway and the notifier agree on the shared KV records (``orra_events.records``).

Both run in-process against the real nats-server: the gateway (uvicorn in a thread, as in
the gateway tests) takes the webhook and the secret rotation over HTTP; the notifier
(:func:`orra_notifier.setup`) delivers a terminal event to a real HTTP receiver, signed
with what the gateway returned.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import httpx
import pytest

from orra_events import Bus, WebhookDelivered
from orra_gateway import create_app
from orra_notifier.signing import HDR_ID, HDR_SIGNATURE, HDR_TIMESTAMP, sign, verify
from tests.gateway.conftest import BOOTSTRAP_KEY, ServerThread, gateway_settings

from .conftest import StartNotifier
from .helpers import done, outcomes
from .receiver import Receiver, Request

_GATEWAY_BUCKETS = ("apikeys", "idempotency")


@pytest.fixture
async def gateway(bus: Bus, nats_url: str, namespace: str) -> AsyncIterator[httpx.AsyncClient]:
    """The real gateway app over HTTP, with a client of the bootstrap key (project default)."""
    settings = gateway_settings(nats_url, namespace, allow_private_webhooks=True)
    server = await asyncio.to_thread(ServerThread(create_app(settings)).start)
    try:
        async with httpx.AsyncClient(
            base_url=server.url,
            headers={"Authorization": f"Bearer {BOOTSTRAP_KEY}"},
            timeout=20.0,
        ) as client:
            yield client
    finally:
        await asyncio.to_thread(server.stop)
        for name in _GATEWAY_BUCKETS:
            with contextlib.suppress(Exception):
                await bus.js.delete_key_value(bus.topology.bucket(name))


def signatures(request: Request) -> list[str]:
    return request.headers[HDR_SIGNATURE].split(" ")


def expected_signature(secret: str, request: Request) -> str:
    return sign(secret, request.headers[HDR_ID], int(request.headers[HDR_TIMESTAMP]), request.body)


async def test_a_webhook_and_rotation_made_through_the_gateway_reach_the_notifier(
    bus: Bus, gateway: httpx.AsyncClient, start_notifier: StartNotifier
) -> None:
    async with Receiver() as receiver:
        added = await gateway.post("/webhooks", json={"url": receiver.url("/project")})
        assert added.status_code == 201, added.text
        old = (await gateway.get("/webhooks/secret")).json()["secret"]
        rotated = await gateway.post("/webhooks/secret/rotate")
        assert rotated.status_code == 200, rotated.text
        new = rotated.json()["secret"]
        assert new != old

        await start_notifier()
        await bus.publish(done("o_gw1", None, project="default"))
        [outcome] = await outcomes(bus, "o_gw1")
        [request] = receiver.requests

    assert isinstance(outcome, WebhookDelivered)
    assert outcome.url == receiver.url("/project")
    assert request.path == "/project"
    assert b'"orchestrationId":"o_gw1"' in request.body
    verify(new, request.headers, request.body, now=time.time())
    # within the grace period the previous secret signs too, after the current one
    verify(old, request.headers, request.body, now=time.time())
    assert signatures(request) == [
        expected_signature(new, request),
        expected_signature(old, request),
    ]


async def test_a_secret_the_notifier_creates_first_is_the_one_the_gateway_shows(
    bus: Bus, gateway: httpx.AsyncClient, start_notifier: StartNotifier
) -> None:
    async with Receiver() as receiver:
        hook = (await gateway.post("/webhooks", json={"url": receiver.url("/project")})).json()
        await start_notifier()
        await bus.publish(done("o_gw2", receiver.url("/action"), project="default"))
        found = await outcomes(bus, "o_gw2", count=2)
        assert all(isinstance(o, WebhookDelivered) for o in found)

        shown = (await gateway.get("/webhooks/secret")).json()["secret"]
        for request in receiver.requests:
            verify(shown, request.headers, request.body, now=time.time())
            assert signatures(request) == [expected_signature(shown, request)]
        assert sorted(r.path for r in receiver.requests) == ["/action", "/project"]

        # a webhook removed through the gateway gets no more results
        assert (await gateway.delete(f"/webhooks/{hook['id']}")).status_code == 204
        await bus.publish(done("o_gw3", receiver.url("/action"), project="default"))
        [outcome] = await outcomes(bus, "o_gw3")
        await asyncio.sleep(0.3)
        later = receiver.requests[2:]

    assert isinstance(outcome, WebhookDelivered)
    assert [r.path for r in later] == ["/action"]
