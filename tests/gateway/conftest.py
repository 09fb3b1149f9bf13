"""Gateway fixtures: a real uvicorn server on a free port, and a stand-in planner.

The server runs in a thread with its own event loop (so that synchronous tests such as the
schemathesis run can call it too); it talks to the test's nats-server and namespace.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import uvicorn

from orra_events import (
    ActionSubmitted,
    Bus,
    Event,
    Plan,
    PlanCreated,
    PlanFailed,
    PlanTask,
    Topology,
)
from orra_events.embedded import free_port
from orra_events.runtime import BrokerSettings
from orra_gateway import GatewaySettings, create_app

BOOTSTRAP_KEY = "orra_test-bootstrap-key-0123456789abcdefghijklmnop"

SEED_PLAN = Plan(
    tasks=[
        PlanTask(
            id="payment",
            service="PaymentService",
            input={"orderId": "ORD123", "amount": "299.99"},
        ),
        PlanTask(id="inventory", service="InventoryService", input={"productId": "PROD456"}),
        PlanTask(
            id="delivery",
            service="DeliveryAgent",
            input={"orderId": "ORD123", "inStock": "$inventory.inStock"},
        ),
        PlanTask(
            id="notify",
            service="NotificationService",
            input={"customerId": "CUST1", "paymentStatus": "$payment.status"},
        ),
    ],
    parallel_groups=[["payment", "inventory"], ["delivery", "notify"]],
)


class ServerThread:
    """uvicorn serving an app in a thread of its own."""

    def __init__(self, app: Any) -> None:
        self.port = free_port()
        self.server = uvicorn.Server(
            uvicorn.Config(
                app,
                host="127.0.0.1",
                port=self.port,
                lifespan="on",
                log_config=None,
                access_log=False,
                timeout_graceful_shutdown=2,
            )
        )
        self.thread = threading.Thread(target=self.server.run, name="gateway", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 30.0) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + timeout_s
        while not self.server.started:
            if not self.thread.is_alive():
                raise RuntimeError("the gateway did not start")
            if time.monotonic() > deadline:
                raise RuntimeError("the gateway did not start in time")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(15)


def gateway_settings(nats_url: str, namespace: str, **overrides: Any) -> GatewaySettings:
    fields: dict[str, Any] = {
        "broker": BrokerSettings(nats_url=nats_url, namespace=namespace),
        "bootstrap_key": BOOTSTRAP_KEY,
        "plan_wait_s": 3.0,
        "key_cache_s": 0.0,
        "sse_keepalive_s": 1.0,
    }
    fields.update(overrides)
    return GatewaySettings(**fields)


@pytest.fixture
def settings(nats_url: str, namespace: str) -> GatewaySettings:
    return gateway_settings(nats_url, namespace)


async def _start(settings: GatewaySettings) -> ServerThread:
    return await asyncio.to_thread(ServerThread(create_app(settings)).start)


@pytest.fixture
async def server(bus: Bus, settings: GatewaySettings) -> AsyncIterator[ServerThread]:
    """The gateway, serving over real HTTP; the bus fixture created the streams."""
    running = await _start(settings)
    try:
        yield running
    finally:
        await asyncio.to_thread(running.stop)


@pytest.fixture
async def client(server: ServerThread) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client authenticated with the bootstrap key (project ``default``)."""
    async with httpx.AsyncClient(
        base_url=server.url,
        headers={"Authorization": f"Bearer {BOOTSTRAP_KEY}"},
        timeout=20.0,
    ) as c:
        yield c


def plan_for(event: ActionSubmitted) -> Event | None:
    """What the stand-in planner answers: no plan ("slow"), a failure ("cannot"), or the
    seed's plan."""
    if "slow" in event.action:
        return None
    if "cannot" in event.action:
        return PlanFailed(
            event_id=f"p:{event.orchestration_id}",
            orchestration_id=event.orchestration_id,
            status="not_actionable",
            reasons=["no registered service can fly to the moon"],
            planner="offline",
            project=event.project,
            webhook=event.webhook,
        )
    return PlanCreated(
        event_id=f"p:{event.orchestration_id}",
        orchestration_id=event.orchestration_id,
        plan=SEED_PLAN,
        planner="offline",
        latency_ms=1.5,
        project=event.project,
        webhook=event.webhook,
        mode=event.mode,
    )


@pytest.fixture
async def planner(bus: Bus) -> None:
    """A stand-in planner on the real ``planner`` consumer: ActionSubmitted → plan event."""

    async def handle(event: Event, _msg: Any) -> None:
        if isinstance(event, ActionSubmitted):
            answer = plan_for(event)
            if answer is not None:
                await bus.publish(answer)

    topology: Topology = bus.topology
    await bus.consume(
        stream=topology.events_stream,
        durable="planner",
        filter_subjects=[topology.all_of("action.submitted")],
        handler=handle,
    )
