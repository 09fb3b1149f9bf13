"""The probe and metrics server every service runs when ORRA_HEALTH_PORT is set."""

from __future__ import annotations

import httpx

from orra_events.embedded import free_port
from orra_events.health import METRICS, HealthServer, Metrics


async def test_probes_and_metrics_over_http() -> None:
    ready = {"value": True}
    port = free_port()
    server = HealthServer(port, ready=lambda: ready["value"], host="127.0.0.1")
    await server.start()
    METRICS.inc("orra_test_events_total", help_="events seen", kind="x")
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            assert (await client.get("/healthz")).status_code == 200
            assert (await client.get("/readyz")).status_code == 200
            ready["value"] = False
            not_ready = await client.get("/readyz")
            assert not_ready.status_code == 503
            assert "broker" in not_ready.json()["status"]
            metrics = await client.get("/metrics")
            assert metrics.status_code == 200
            assert 'orra_test_events_total{kind="x"} 1.0' in metrics.text
            assert (await client.get("/nope")).status_code == 404
    finally:
        await server.stop()


def test_histogram_renders_cumulative_buckets() -> None:
    m = Metrics()
    for value in (0.003, 0.02, 7.0):
        m.observe("orra_task_seconds", value, help_="task latency", service="P")
    text = m.render()
    assert "# TYPE orra_task_seconds histogram" in text
    assert 'orra_task_seconds_bucket{service="P",le="0.005"} 1' in text
    assert 'orra_task_seconds_bucket{service="P",le="0.025"} 2' in text
    assert 'orra_task_seconds_bucket{service="P",le="+Inf"} 3' in text
    assert 'orra_task_seconds_count{service="P"} 3' in text
