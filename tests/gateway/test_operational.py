"""Operational endpoints: metrics on their own port, probes without project data.

Issue 16, item 6: ``/metrics`` on the public API port showed figures across all projects
without a key, and ``/readyz`` counted orchestrations.
"""

from __future__ import annotations

import asyncio

import httpx
import pytest

from orra_events import Bus
from orra_events.embedded import free_port
from orra_gateway import GatewaySettings
from tests.gateway.conftest import BOOTSTRAP_KEY, ServerThread, _start, gateway_settings
from tests.gateway.test_api import body

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def settings(nats_url: str, namespace: str) -> GatewaySettings:
    return gateway_settings(nats_url, namespace, health_port=free_port())


@pytest.fixture
def metrics_url(server: ServerThread, settings: GatewaySettings) -> str:
    del server  # serving, hence listening on the metrics port too
    return f"http://127.0.0.1:{settings.health_port}"


@pytest.mark.usefixtures("planner")
async def test_metrics_are_served_on_the_metrics_port_only(
    server: ServerThread, client: httpx.AsyncClient, metrics_url: str
) -> None:
    assert (await client.post("/orchestrations", json=body())).status_code == 201
    async with httpx.AsyncClient(base_url=server.url) as anonymous:
        assert (await anonymous.get("/orchestrations/o_x")).status_code == 401
        public = await anonymous.get("/metrics")
        assert public.status_code == 404
        assert "orra_" not in public.text
        schema = (await anonymous.get("/schema/openapi.json")).json()
        assert "/metrics" not in schema["paths"]
    async with httpx.AsyncClient(base_url=metrics_url) as scraper:
        metrics = await scraper.get("/metrics")
        assert metrics.status_code == 200
        assert metrics.headers["content-type"].startswith("text/plain")
        text = metrics.text
        # requests are counted under their route template, never the raw path
        assert (
            'orra_gateway_http_requests_total{method="GET",'
            'route="/orchestrations/{orchestration_id:str}",status="4xx"}'
        ) in text
        assert "o_x" not in text
        assert "orra_gateway_http_request_duration_seconds_bucket" in text
        assert "orra_gateway_index_caught_up 1.0" in text
        assert "orra_gateway_index_seq" in text
        assert "orra_gateway_read_model_seq" in text
        assert (await scraper.get("/healthz")).json() == {"status": "ok"}
        ready = await scraper.get("/readyz")
        assert (ready.status_code, ready.json()) == (200, {"status": "ready"})


@pytest.mark.usefixtures("planner")
async def test_probes_on_the_api_port_say_nothing_about_projects(
    server: ServerThread, client: httpx.AsyncClient
) -> None:
    async with httpx.AsyncClient(base_url=server.url) as anonymous:
        before = (await anonymous.get("/readyz")).json()
        for _ in range(3):
            assert (await client.post("/orchestrations", json=body())).status_code == 201
        after = await anonymous.get("/readyz")
        health = await anonymous.get("/healthz")
    assert after.status_code == 200
    assert (
        before == after.json() == {"status": "ready", "broker": "connected", "indexCaughtUp": True}
    )
    assert health.json() == {"status": "ok"}


async def test_no_metrics_port_unless_set(bus: Bus, nats_url: str, namespace: str) -> None:
    assert GatewaySettings().health_port == 0
    server = await _start(gateway_settings(nats_url, namespace))
    try:
        async with httpx.AsyncClient(
            base_url=server.url, headers={"Authorization": f"Bearer {BOOTSTRAP_KEY}"}
        ) as c:
            assert (await c.get("/metrics")).status_code == 404
    finally:
        await asyncio.to_thread(server.stop)
