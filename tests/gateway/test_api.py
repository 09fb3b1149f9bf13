"""The gateway's HTTP API over real HTTP, against a real nats-server.

The planner is simulated (the ``planner`` fixture) by answering ``action.submitted`` with
``plan.created`` / ``plan.failed`` on the bus.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import msgspec
import pytest

from orra_events import (
    PREVIOUS_SECRET_GRACE_S,
    Bus,
    ServiceHeartbeat,
    ServiceRegistered,
    TaskCompleted,
    TaskDispatched,
)
from orra_gateway import GatewaySettings
from tests.gateway.conftest import BOOTSTRAP_KEY, ServerThread

pytestmark = pytest.mark.timeout(60)

# The seed's curl body, byte for byte.
SEED_BODY = b"""{
    "action": {
      "content": "Process order payment and update inventory"
    },
    "data": [
      {"field": "orderId", "value": "ORD123"},
      {"field": "amount", "value": "299.99"},
      {"field": "productId", "value": "PROD456"}
    ],
    "webhook": "https://your-app.com/webhooks/orra"
  }"""


def body(content: str = "Process order payment and update inventory", **extra: Any) -> Any:
    return {
        "action": {"content": content},
        "data": [{"field": "orderId", "value": "ORD1"}],
        **extra,
    }


def assert_problem(response: httpx.Response, status: int, field: str | None = None) -> Any:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["status"] == status
    assert problem["title"]
    assert problem["type"]
    if field is not None:
        assert field in [e["field"] for e in problem.get("errors", [])], problem
    return problem


async def eventually(check: Any, timeout_s: float = 5.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


# --- submitting -------------------------------------------------------------------------------


@pytest.mark.usefixtures("planner")
async def test_seed_curl_body_returns_the_plan(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/orchestrations", content=SEED_BODY, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 201, response.text
    plan = response.json()
    assert plan["status"] == "running"
    assert plan["orchestrationId"] == plan["id"]
    assert plan["id"].startswith("o_")
    assert response.headers["location"] == f"/orchestrations/{plan['id']}"
    assert [t["id"] for t in plan["tasks"]] == ["payment", "inventory", "delivery", "notify"]
    assert plan["tasks"][0] == {
        "id": "payment",
        "service": "PaymentService",
        "input": {"orderId": "ORD123", "amount": "299.99"},
        "serves": None,  # this test's scripted planner says nothing of coverage
    }
    assert plan["uncovered"] == []
    assert plan["parallel_groups"] == [["payment", "inventory"], ["delivery", "notify"]]

    detail = (await client.get(f"/orchestrations/{plan['id']}")).json()
    assert detail["action"] == "Process order payment and update inventory"
    assert detail["data"][0] == {"field": "orderId", "value": "ORD123"}
    assert detail["webhook"] == "https://your-app.com/webhooks/orra"
    assert detail["plan"]["planner"] == "offline"
    delivery = next(t for t in detail["tasks"] if t["id"] == "delivery")
    assert delivery["group"] == 1
    assert delivery["dependsOn"] == ["inventory"]
    assert delivery["status"] == "pending"


@pytest.mark.usefixtures("planner")
async def test_any_json_value_and_mode_are_accepted(client: httpx.AsyncClient) -> None:
    items = [{"id": "PROD789", "quantity": 2}]
    response = await client.post(
        "/orchestrations",
        json={
            "action": {"content": "Process new order and arrange optimal delivery"},
            "data": [
                {"field": "items", "value": items},
                {"field": "count", "value": 3},
                {"field": "gift", "value": None},
            ],
            "mode": "eager",
        },
    )
    assert response.status_code == 201, response.text
    detail = (await client.get(f"/orchestrations/{response.json()['id']}")).json()
    assert detail["data"][0]["value"] == items
    assert detail["mode"] == "eager"


async def test_202_when_the_plan_is_not_ready_in_time(
    bus: Bus, nats_url: str, namespace: str
) -> None:
    from tests.gateway.conftest import _start, gateway_settings

    server = await _start(gateway_settings(nats_url, namespace, plan_wait_s=0.3))
    try:
        async with httpx.AsyncClient(
            base_url=server.url, headers={"Authorization": f"Bearer {BOOTSTRAP_KEY}"}
        ) as client:
            response = await client.post("/orchestrations", json=body("a slow action"))
            assert response.status_code == 202, response.text
            answer = response.json()
            assert answer["status"] == "planning"
            assert answer["tasks"] == []
            assert answer["parallel_groups"] == []
            detail = (await client.get(f"/orchestrations/{answer['id']}")).json()
            assert detail["status"] == "planning"
    finally:
        await asyncio.to_thread(server.stop)


@pytest.mark.usefixtures("planner")
async def test_422_with_the_planners_reasons(client: httpx.AsyncClient) -> None:
    response = await client.post("/orchestrations", json=body("you cannot fly to the moon"))
    problem = assert_problem(response, 422)
    assert problem["reasons"] == ["no registered service can fly to the moon"]
    assert problem["orchestrationId"].startswith("o_")
    detail = (await client.get(f"/orchestrations/{problem['orchestrationId']}")).json()
    assert detail["status"] == "not_actionable"
    assert detail["reasons"] == problem["reasons"]


@pytest.mark.usefixtures("planner")
async def test_idempotency_key_returns_the_first_orchestration(
    client: httpx.AsyncClient,
) -> None:
    headers = {"Idempotency-Key": "order-ORD1-attempt"}
    first = await client.post("/orchestrations", json=body(), headers=headers)
    second = await client.post("/orchestrations", json=body(), headers=headers)
    assert first.status_code == second.status_code == 201
    assert first.json()["id"] == second.json()["id"]
    assert second.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers

    other = await client.post("/orchestrations", json=body("something else"), headers=headers)
    assert_problem(other, 422, "Idempotency-Key")

    listed = (await client.get("/orchestrations")).json()["items"]
    assert [item["id"] for item in listed] == [first.json()["id"]]


# --- authentication and projects ------------------------------------------------------------


async def test_auth_failures_are_401_problems(server: ServerThread) -> None:
    async with httpx.AsyncClient(base_url=server.url) as anonymous:
        for headers in (
            {},
            {"Authorization": "Bearer not-a-key"},
            {"Authorization": f"Basic {BOOTSTRAP_KEY}"},
            {"Authorization": "Bearer"},
        ):
            for method, path in (
                ("POST", "/orchestrations"),
                ("GET", "/orchestrations"),
                ("GET", "/orchestrations/o_x"),
                ("GET", "/services"),
                ("GET", "/api-keys"),
                ("GET", "/webhooks/secret"),
            ):
                response = await anonymous.request(
                    method, path, headers=headers, json=body() if method == "POST" else None
                )
                assert_problem(response, 401)
                assert response.headers["www-authenticate"].startswith("Bearer")
        assert (await anonymous.get("/healthz")).json() == {"status": "ok"}
        ready = await anonymous.get("/readyz")
        assert ready.status_code == 200
        assert ready.json()["status"] == "ready"
        schema = await anonymous.get("/schema/openapi.json")
        assert "/orchestrations" in schema.json()["paths"]


@pytest.mark.usefixtures("planner")
async def test_projects_never_see_each_other(
    client: httpx.AsyncClient, server: ServerThread, bus: Bus
) -> None:
    created = await client.post(
        "/api-keys", json={"project": "acme", "name": "acme ci", "role": "admin"}
    )
    assert created.status_code == 201, created.text
    acme_key = created.json()["apiKey"]
    assert created.json()["project"] == "acme"

    mine = (await client.post("/orchestrations", json=body())).json()["id"]
    await bus.publish(
        ServiceRegistered(
            event_id="reg:PaymentService:1",
            service="PaymentService",
            description="Takes payments",
            input_schema={},
            output_schema={},
        )
    )
    await eventually(lambda: _services(client))

    async with httpx.AsyncClient(
        base_url=server.url, headers={"Authorization": f"Bearer {acme_key}"}
    ) as acme:
        assert_problem(await acme.get(f"/orchestrations/{mine}"), 404)
        assert_problem(await acme.get(f"/orchestrations/{mine}/events"), 404)
        assert_problem(await acme.get(f"/orchestrations/{mine}/history"), 404)
        assert_problem(await acme.post(f"/orchestrations/{mine}/abort"), 404)
        assert (await acme.get("/orchestrations")).json()["items"] == []
        assert (await acme.get("/services")).json()["items"] == []
        assert [k["project"] for k in (await acme.get("/api-keys")).json()["items"]] == ["acme"]
        # an admin key of another project than 'default' cannot create keys elsewhere
        assert_problem(await acme.post("/api-keys", json={"project": "default"}), 403)
        theirs = await acme.post("/orchestrations", json=body())
        assert theirs.status_code == 201
        assert_problem(await client.get(f"/orchestrations/{theirs.json()['id']}"), 404)
        # the same Idempotency-Key in two projects makes two orchestrations
        headers = {"Idempotency-Key": "shared"}
        a = (await acme.post("/orchestrations", json=body(), headers=headers)).json()["id"]
        b = (await client.post("/orchestrations", json=body(), headers=headers)).json()["id"]
        assert a != b


async def _services(client: httpx.AsyncClient) -> list[Any]:
    items: list[Any] = (await client.get("/services")).json()["items"]
    return items


async def test_api_keys_are_shown_once_and_stored_as_hashes(
    client: httpx.AsyncClient, server: ServerThread, bus: Bus
) -> None:
    created = await client.post("/api-keys", json={"name": "laptop"})
    assert created.status_code == 201
    key = created.json()["apiKey"]
    assert key.startswith("orra_")
    assert key.startswith(created.json()["prefix"])

    listed = (await client.get("/api-keys")).json()["items"]
    assert {item["name"] for item in listed} == {"bootstrap", "laptop"}
    assert key not in str(listed)
    assert all("apiKey" not in item for item in listed)

    kv = await bus.kv("apikeys")
    for stored in await kv.keys():
        entry = await kv.get(stored)
        assert key not in (entry.value or b"").decode()
        assert stored != key
        assert len(stored) == 64

    async with httpx.AsyncClient(
        base_url=server.url, headers={"Authorization": f"Bearer {key}"}
    ) as laptop:
        assert (await laptop.get("/orchestrations")).status_code == 200
        revoked = await client.delete(f"/api-keys/{created.json()['id']}")
        assert revoked.status_code == 204
        assert_problem(await laptop.get("/orchestrations"), 401)
    assert_problem(await client.delete("/api-keys/k_nope"), 404)


# --- reading --------------------------------------------------------------------------------


@pytest.mark.usefixtures("planner")
async def test_list_is_newest_first_with_cursor_and_status_filter(
    client: httpx.AsyncClient,
) -> None:
    ids = [(await client.post("/orchestrations", json=body())).json()["id"] for _ in range(3)]
    failed = await client.post("/orchestrations", json=body("cannot do it"))
    assert failed.status_code == 422
    page1 = (await client.get("/orchestrations", params={"limit": 2})).json()
    assert [i["id"] for i in page1["items"]] == [failed.json()["orchestrationId"], ids[2]]
    page2 = (
        await client.get("/orchestrations", params={"limit": 2, "cursor": page1["nextCursor"]})
    ).json()
    assert [i["id"] for i in page2["items"]] == [ids[1], ids[0]]
    assert page2["nextCursor"] is None
    item = page2["items"][0]
    assert item["status"] == "running"
    assert item["taskCount"] == 4
    assert item["action"]
    assert item["createdAt"] > 0
    running = (await client.get("/orchestrations", params={"status": "running"})).json()
    assert [i["id"] for i in running["items"]] == ids[::-1]
    assert_problem(await client.get("/orchestrations", params={"cursor": "???"}), 422, "cursor")
    assert_problem(await client.get("/orchestrations", params={"status": "nope"}), 400, "status")
    assert_problem(await client.get("/orchestrations", params={"limit": 0}), 400, "limit")


@pytest.mark.usefixtures("planner")
async def test_events_stream_history_live_and_resume(client: httpx.AsyncClient, bus: Bus) -> None:
    orch = (await client.post("/orchestrations", json=body())).json()["id"]

    async def read(lines: Any, count: int) -> list[dict[str, str]]:
        events: list[dict[str, str]] = []
        current: dict[str, str] = {}
        while True:
            line = await anext(lines)
            if not line:
                if "data" in current:
                    events.append(current)
                    if len(events) == count:
                        return events
                current = {}
                continue
            if line.startswith(":"):
                continue
            name, _, value = line.partition(":")
            current[name] = value.removeprefix(" ")

    async with client.stream("GET", f"/orchestrations/{orch}/events") as stream:
        lines = stream.aiter_lines()
        assert stream.status_code == 200
        assert stream.headers["content-type"].startswith("text/event-stream")
        history = await read(lines, 2)
        assert [e["event"] for e in history] == ["action.submitted", "plan.created"]
        assert msgspec.json.decode(history[0]["data"])["orchestration_id"] == orch
        await bus.publish(
            TaskDispatched(
                event_id=f"d:{orch}:payment:1",
                orchestration_id=orch,
                task_id="payment",
                service="PaymentService",
                input={"orderId": "ORD123"},
                attempt=1,
                idempotency_key=f"{orch}:payment",
                timeout_s=30,
            )
        )
        live = await read(lines, 1)
        assert live[0]["event"] == "task.dispatched"
        assert int(live[0]["id"]) > int(history[1]["id"]) > int(history[0]["id"])

    await bus.publish(
        TaskCompleted(
            event_id=f"r:{orch}:payment:1",
            orchestration_id=orch,
            task_id="payment",
            service="PaymentService",
            output={"status": "confirmed"},
            attempt=1,
            idempotency_key=f"{orch}:payment",
            started_at=time.time(),
            duration_ms=12.0,
        )
    )
    async with client.stream(
        "GET", f"/orchestrations/{orch}/events", headers={"Last-Event-ID": history[1]["id"]}
    ) as stream:
        resumed = await read(stream.aiter_lines(), 2)
        assert [e["event"] for e in resumed] == ["task.dispatched", "task.completed"]
        assert resumed[0]["id"] == live[0]["id"]

    detail = (await client.get(f"/orchestrations/{orch}")).json()
    payment = next(t for t in detail["tasks"] if t["id"] == "payment")
    assert payment["status"] == "completed"
    assert payment["output"] == {"status": "confirmed"}
    assert payment["durationMs"] == 12.0
    assert_problem(
        await client.get(f"/orchestrations/{orch}/events", headers={"Last-Event-ID": "x"}),
        422,
        "Last-Event-ID",
    )
    assert_problem(await client.get("/orchestrations/o_missing/events"), 404)
    # The same events as JSON, with the stream's ids as seq (issue 20's history route).
    history_json = (await client.get(f"/orchestrations/{orch}/history")).json()["items"]
    assert [e["type"] for e in history_json] == [
        "action.submitted",
        "plan.created",
        "task.dispatched",
        "task.completed",
    ]
    assert [str(e["seq"]) for e in history_json[:2]] == [h["id"] for h in history]
    assert history_json[3]["event"]["output"] == {"status": "confirmed"}
    assert_problem(await client.get("/orchestrations/o_missing/history"), 404)


@pytest.mark.usefixtures("planner")
async def test_abort(client: httpx.AsyncClient) -> None:
    orch = (await client.post("/orchestrations", json=body())).json()["id"]
    aborted = await client.post(f"/orchestrations/{orch}/abort", json={"reason": "changed mind"})
    assert aborted.status_code == 200, aborted.text
    assert aborted.json()["status"] == "aborted"
    detail = (await client.get(f"/orchestrations/{orch}")).json()
    assert detail["status"] == "aborted"
    assert detail["error"] == "changed mind"
    assert detail["finishedAt"] is not None
    assert_problem(await client.post(f"/orchestrations/{orch}/abort"), 409)
    assert_problem(await client.post("/orchestrations/o_unknown/abort"), 404)

    other = (await client.post("/orchestrations", json=body())).json()["id"]
    no_body = await client.post(f"/orchestrations/{other}/abort")
    assert no_body.status_code == 200
    assert no_body.json()["reason"] == "aborted by user"


async def test_services_with_health(client: httpx.AsyncClient, bus: Bus) -> None:
    now = time.time()
    for name in ("Fresh", "Stale", "Silent"):
        await bus.publish(
            ServiceRegistered(
                event_id=f"reg:{name}:1",
                service=name,
                description=f"{name} service",
                input_schema={"type": "object"},
                output_schema={"type": "object"},
                kind="agent" if name == "Silent" else "service",
            )
        )
    await bus.publish(
        ServiceHeartbeat(event_id="hb1", service="Fresh", instance_id="i1", interval_s=5, at=now)
    )
    await bus.publish(
        ServiceHeartbeat(
            event_id="hb2", service="Stale", instance_id="i2", interval_s=5, at=now - 60
        )
    )

    async def all_three() -> list[Any]:
        items = await _services(client)
        beats = [item for item in items if item["lastHeartbeatAt"]]
        return items if len(items) == 3 and len(beats) == 2 else []

    items = await eventually(all_three)
    health = {item["name"]: item["health"] for item in items}
    assert health == {"Fresh": "healthy", "Stale": "unhealthy", "Silent": "unknown"}
    assert [item["name"] for item in items] == ["Fresh", "Silent", "Stale"]
    fresh = items[0]
    assert fresh["description"] == "Fresh service"
    assert fresh["inputSchema"] == {"type": "object"}
    assert fresh["heartbeatIntervalS"] == 5
    assert items[1]["kind"] == "agent"


async def test_services_show_examples_versions_and_down(
    client: httpx.AsyncClient, bus: Bus
) -> None:
    now = time.time()

    def registered(name: str, version: str, *, at: float, **kw: Any) -> ServiceRegistered:
        return ServiceRegistered(
            event_id=f"reg:{name}:{version}:{kw.get('description', '')}",
            service=name,
            description=str(kw.pop("description", f"{name} v{version}")),
            input_schema={"type": "object"},
            output_schema={"type": "object"},
            version=version,
            at=at,
            **kw,
        )

    await bus.publish(registered("Pay", "1", at=now - 3600, examples=["bill the card"]))
    await bus.publish(registered("Pay", "2", at=now - 30, examples=["charge the card"]))
    await bus.publish(registered("Gone", "1", at=now - 3600))
    # another definition of Pay 1, published as older SDKs did: refused, Pay 1 stays
    await bus.publish(
        registered("Pay", "1", at=now - 20, description="Charges gift cards"),
        subject=bus.topology.service_subject("service.registered", "Pay", None),
    )
    for name, version, at in (("Pay", "2", now), ("Pay", "1", now - 900), ("Gone", "1", now - 600)):
        await bus.publish(
            ServiceHeartbeat(
                event_id=f"hb:{name}:{version}",
                service=name,
                instance_id="i",
                interval_s=5,
                at=at,
                version=version,
            )
        )

    async def both() -> list[Any]:
        items = await _services(client)
        beats = [item for item in items if item["lastHeartbeatAt"]]
        return items if len(items) == 2 and len(beats) == 2 else []

    gone, pay = await eventually(both)
    assert (pay["name"], pay["version"], pay["health"]) == ("Pay", "2", "healthy")
    assert pay["examples"] == ["charge the card"]
    assert pay["description"] == "Pay v2"
    assert [(v["version"], v["health"]) for v in pay["versions"]] == [
        ("2", "healthy"),
        ("1", "down"),
    ]
    assert (gone["name"], gone["health"]) == ("Gone", "down")
    assert gone["versions"][0]["lastHeartbeatAt"] == pytest.approx(now - 600)


# --- bad input ----------------------------------------------------------------------------------


async def test_bad_bodies_are_4xx_problems_naming_the_field(client: httpx.AsyncClient) -> None:
    cases: list[tuple[Any, int, str]] = [
        ({**body(), "colour": "red"}, 400, "colour"),
        ({"action": {"content": "x", "colour": 1}}, 400, "action.colour"),
        ({"action": {"content": 5}}, 400, "action.content"),
        ({"action": "just a string"}, 400, "action"),
        ({"action": {"content": "x"}, "data": [{"field": "a"}]}, 400, "data[0].value"),
        ({"action": {"content": "x"}, "data": {"field": "a"}}, 400, "data"),
        ({"data": []}, 400, "action"),
        ({"action": {"content": "x"}, "mode": "fastest"}, 400, "mode"),
        ({"action": {"content": "   "}}, 422, "action.content"),
        ({"action": {"content": ""}}, 422, "action.content"),
        ({"action": {"content": "x"}, "allowPartial": "yes"}, 400, "allowPartial"),
        (
            {"action": {"content": "x"}, "data": [{"field": "a", "value": 1}] * 2},
            422,
            "data[1].field",
        ),
        ({"action": {"content": "x"}, "webhook": "ftp://example.com/hook"}, 422, "webhook"),
        ({"action": {"content": "x"}, "webhook": "http://127.0.0.1:3000/hook"}, 422, "webhook"),
        ({"action": {"content": "x"}, "webhook": "http://10.1.2.3/hook"}, 422, "webhook"),
        ({"action": {"content": "x"}, "webhook": "http://localhost/hook"}, 422, "webhook"),
        ({"action": {"content": "x"}, "webhook": "not a url"}, 422, "webhook"),
    ]
    for payload, status, field in cases:
        response = await client.post("/orchestrations", json=payload)
        assert_problem(response, status, field)

    not_json = await client.post(
        "/orchestrations", content=b"{nope", headers={"Content-Type": "application/json"}
    )
    assert_problem(not_json, 400)
    huge = {"action": {"content": "x"}, "data": [{"field": "blob", "value": "x" * 300_000}]}
    assert_problem(await client.post("/orchestrations", json=huge), 413)
    assert_problem(await client.get("/no/such/route"), 404)
    assert_problem(await client.delete("/orchestrations"), 405)


async def test_webhooks_and_signing_secret(client: httpx.AsyncClient, bus: Bus) -> None:
    added = await client.post("/webhooks", json={"url": "https://example.com/orra"})
    assert added.status_code == 201, added.text
    hook = added.json()
    assert hook["url"] == "https://example.com/orra"
    assert hook["id"].startswith("wh_")
    again = await client.post("/webhooks", json={"url": "https://example.com/orra"})
    assert again.json()["id"] == hook["id"]
    assert_problem(await client.post("/webhooks", json={"url": "http://192.168.1.4/x"}), 422, "url")
    assert_problem(await client.post("/webhooks", json={"uri": "https://a.com"}), 400, "uri")
    assert (await client.get("/webhooks")).json()["items"] == [hook]

    kv = await bus.kv("webhooks")
    stored = msgspec.json.decode((await kv.get("default")).value or b"")
    assert stored == {"webhooks": [hook]}

    secret = (await client.get("/webhooks/secret")).json()
    assert secret["secret"].startswith("whsec_")
    assert (await client.get("/webhooks/secret")).json() == secret
    rotated = (await client.post("/webhooks/secret/rotate")).json()
    assert rotated["secret"] != secret["secret"]
    secrets_kv = await bus.kv("webhook_secrets")
    record = msgspec.json.decode((await secrets_kv.get("default")).value or b"")
    assert record["secret"] == rotated["secret"]
    assert record["createdAt"] == rotated["createdAt"] == record["rotatedAt"]
    assert record["previousSecret"] == secret["secret"]
    assert record["previousExpiresAt"] == record["rotatedAt"] + PREVIOUS_SECRET_GRACE_S

    assert (await client.delete(f"/webhooks/{hook['id']}")).status_code == 204
    assert (await client.get("/webhooks")).json()["items"] == []
    assert_problem(await client.delete(f"/webhooks/{hook['id']}"), 404)


# --- replicas and the broker ----------------------------------------------------------------------


@pytest.mark.usefixtures("planner")
async def test_a_second_replica_rebuilds_the_same_answers(
    client: httpx.AsyncClient, nats_url: str, namespace: str, bus: Bus
) -> None:
    from tests.gateway.conftest import _start, gateway_settings

    ids = [(await client.post("/orchestrations", json=body())).json()["id"] for _ in range(3)]
    await client.post(f"/orchestrations/{ids[0]}/abort")
    replica = await _start(gateway_settings(nats_url, namespace))
    try:
        async with httpx.AsyncClient(
            base_url=replica.url, headers={"Authorization": f"Bearer {BOOTSTRAP_KEY}"}
        ) as other:
            assert (await other.get("/orchestrations")).json() == (
                await client.get("/orchestrations")
            ).json()
            for orch in ids:
                assert (await other.get(f"/orchestrations/{orch}")).json() == (
                    await client.get(f"/orchestrations/{orch}")
                ).json()
    finally:
        await asyncio.to_thread(replica.stop)


async def test_broker_down_is_503(tmp_path: Any) -> None:
    from orra_events.embedded import EmbeddedNats
    from tests.gateway.conftest import _start, gateway_settings

    nats = EmbeddedNats(tmp_path / "store").start()
    server: ServerThread | None = None
    try:
        server = await _start(
            gateway_settings(nats.url, "down", key_cache_s=60.0, publish_timeout_s=1.0)
        )
        async with httpx.AsyncClient(
            base_url=server.url,
            headers={"Authorization": f"Bearer {BOOTSTRAP_KEY}"},
            timeout=20,
        ) as client:
            assert (await client.get("/orchestrations")).status_code == 200
            nats.stop()
            assert_problem(await client.get("/readyz"), 503)
            response = await client.post("/orchestrations", json=body())
            problem = assert_problem(response, 503)
            assert response.headers["retry-after"] == "1"
            assert "broker" in problem["detail"] or "recorded" in problem["detail"]
            assert (await client.get("/healthz")).status_code == 200
    finally:
        if server is not None:
            await asyncio.to_thread(server.stop)
        nats.stop()


@pytest.mark.usefixtures("planner")
async def test_a_restart_starts_from_the_saved_index(
    nats_url: str, namespace: str, bus: Bus
) -> None:
    from tests.gateway.conftest import _start, gateway_settings

    first = await _start(gateway_settings(nats_url, namespace))
    headers = {"Authorization": f"Bearer {BOOTSTRAP_KEY}"}
    try:
        async with httpx.AsyncClient(base_url=first.url, headers=headers) as c:
            ids = [(await c.post("/orchestrations", json=body())).json()["id"] for _ in range(3)]
            await c.post(f"/orchestrations/{ids[1]}/abort")
            listed = (await c.get("/orchestrations")).json()
            details = [(await c.get(f"/orchestrations/{o}")).json() for o in ids]
    finally:
        await asyncio.to_thread(first.stop)  # saves the index

    second = await _start(gateway_settings(nats_url, namespace))
    try:
        async with httpx.AsyncClient(base_url=second.url, headers=headers) as c:
            ready = (await c.get("/readyz")).json()
            assert ready == {"status": "ready", "broker": "connected", "indexCaughtUp": True}
            assert (await c.get("/orchestrations")).json() == listed
            assert [(await c.get(f"/orchestrations/{o}")).json() for o in ids] == details
    finally:
        await asyncio.to_thread(second.stop)


async def test_a_revoked_bootstrap_key_stays_revoked_after_a_restart(
    client: httpx.AsyncClient, server: ServerThread, settings: GatewaySettings
) -> None:
    from tests.gateway.conftest import _start

    other = (await client.post("/api-keys", json={"name": "ops", "role": "admin"})).json()["apiKey"]
    keys = (await client.get("/api-keys")).json()["items"]
    bootstrap = next(k for k in keys if k["name"] == "bootstrap")
    assert (await client.delete(f"/api-keys/{bootstrap['id']}")).status_code == 204
    await asyncio.to_thread(server.stop)
    restarted = await _start(settings)  # offered the same bootstrap key again
    try:
        async with httpx.AsyncClient(base_url=restarted.url) as c:
            old = await c.get("/api-keys", headers={"Authorization": f"Bearer {BOOTSTRAP_KEY}"})
            assert old.status_code == 401
            ops = await c.get("/api-keys", headers={"Authorization": f"Bearer {other}"})
            assert ops.status_code == 200
            assert "bootstrap" not in {k["name"] for k in ops.json()["items"]}
    finally:
        await asyncio.to_thread(restarted.stop)
