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


async def test_published_outcomes_are_counted_and_consumer_lag_is_polled(bus) -> None:
    from nats.js.api import ConsumerConfig

    from orra_events import OrchestrationDone, TaskCompleted
    from orra_events.metrics import ConsumerLag
    from tests.factories import task_completed

    before = METRICS.counters.get(("orra_orchestrations_total", (("status", "completed"),)), 0.0)
    await bus.publish(
        OrchestrationDone(event_id="end:o_m1", orchestration_id="o_m1", results={}, outputs={})
    )
    await bus.publish(
        task_completed(orchestration_id="o_m1", service="MetricsSvc", duration_ms=20.0)
    )
    assert METRICS.counters[("orra_orchestrations_total", (("status", "completed"),))] == before + 1
    text = METRICS.render()
    assert (
        'orra_task_duration_seconds_bucket{outcome="completed",service="MetricsSvc",le="0.025"} 1'
        in text
    )
    assert isinstance(task_completed(), TaskCompleted)

    await bus.js.add_consumer(
        bus.topology.events_stream,
        ConsumerConfig(
            durable_name="lagging", filter_subject=bus.topology.all_of("orchestration.done")
        ),
    )
    lag = ConsumerLag(bus)
    await lag.poll()
    assert lag.pending[(bus.topology.events_stream, "lagging")] == 1
    assert (
        f'orra_consumer_pending{{consumer="lagging",stream="{bus.topology.events_stream}"}} 1.0'
        in METRICS.render()
    )
