"""API key roles over real HTTP: admin keys manage, member keys run orchestrations.

Issue 16, item 3: a key created without privileges could revoke the bootstrap key for
good and rotate the webhook signing secret.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import msgspec
import pytest

from orra_events import Bus
from orra_events.apikeys import api_key_id, hash_api_key
from orra_gateway import GatewaySettings
from tests.gateway.conftest import BOOTSTRAP_KEY, ServerThread
from tests.gateway.test_api import assert_problem, body

pytestmark = pytest.mark.timeout(90)


@asynccontextmanager
async def as_key(server: ServerThread, key: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=server.url, headers={"Authorization": f"Bearer {key}"}, timeout=20.0
    ) as c:
        yield c


async def new_key(client: httpx.AsyncClient, **fields: str) -> dict[str, str]:
    created = await client.post("/api-keys", json=fields)
    assert created.status_code == 201, created.text
    answer: dict[str, str] = created.json()
    return answer


async def bootstrap_id(client: httpx.AsyncClient) -> str:
    return api_key_id(BOOTSTRAP_KEY)


@pytest.mark.usefixtures("planner")
async def test_a_member_key_runs_orchestrations_but_manages_nothing(
    client: httpx.AsyncClient, server: ServerThread
) -> None:
    member = await new_key(client, name="ci")
    assert member["role"] == "member"
    secret_before = (await client.get("/webhooks/secret")).json()["secret"]
    async with as_key(server, member["apiKey"]) as ci:
        # what a member does
        created = await ci.post("/orchestrations", json=body())
        assert created.status_code == 201, created.text
        orch = created.json()["id"]
        assert (await ci.get("/orchestrations")).status_code == 200
        assert (await ci.get(f"/orchestrations/{orch}")).status_code == 200
        assert (await ci.get("/services")).status_code == 200
        assert (await ci.get("/compensation-failures")).status_code == 200
        assert (await ci.post(f"/orchestrations/{orch}/abort")).json()["status"] == "aborted"
        me = (await ci.get("/me")).json()
        assert (me["id"], me["role"], me["project"], me["admin"]) == (
            member["id"],
            "member",
            "default",
            False,
        )
        # what it may not: every answer a 403 problem that says what is needed
        forbidden = [
            await ci.delete(f"/api-keys/{await bootstrap_id(client)}"),
            await ci.post("/webhooks/secret/rotate"),
            await ci.get("/webhooks/secret"),
            await ci.post("/api-keys", json={"name": "mine", "role": "admin"}),
            await ci.post("/api-keys", json={}),
            await ci.get("/api-keys"),
            await ci.post("/webhooks", json={"url": "https://example.com/hook"}),
            await ci.get("/webhooks"),
            await ci.delete("/webhooks/wh_x"),
            await ci.post("/compensation-failures/o_x/t/resolve"),
            await ci.post("/compensation-failures/o_x/t/ignore"),
        ]
        for response in forbidden:
            problem = assert_problem(response, 403)
            assert problem["type"] == "urn:orra:problem:forbidden"
            assert "admin key" in problem["detail"]
            assert member["id"] in problem["detail"]
    # nothing happened: the bootstrap key works, the secret is the same
    assert (await client.get("/api-keys")).status_code == 200
    assert (await client.get("/webhooks/secret")).json()["secret"] == secret_before


async def test_roles_are_listed_and_an_admin_key_can_be_made(
    client: httpx.AsyncClient, server: ServerThread
) -> None:
    me = (await client.get("/me")).json()
    assert (me["name"], me["role"], me["admin"]) == ("bootstrap", "admin", True)
    ops = await new_key(client, name="ops", role="admin")
    assert ops["role"] == "admin"
    assert ops["id"] == api_key_id(ops["apiKey"])
    listed = {k["name"]: k["role"] for k in (await client.get("/api-keys")).json()["items"]}
    assert listed == {"bootstrap": "admin", "ops": "admin"}
    async with as_key(server, ops["apiKey"]) as admin:
        assert (await admin.get("/webhooks/secret")).status_code == 200
        assert (await admin.post("/api-keys", json={"name": "x"})).status_code == 201
    problem = assert_problem(await client.post("/api-keys", json={"role": "owner"}), 400)
    assert problem["errors"][0]["field"] == "role"


async def test_the_last_admin_key_of_a_project_cannot_be_revoked(
    client: httpx.AsyncClient, server: ServerThread, settings: GatewaySettings
) -> None:
    from tests.gateway.conftest import _start

    boot = await bootstrap_id(client)
    problem = assert_problem(await client.delete(f"/api-keys/{boot}"), 409)
    assert "last admin key" in problem["detail"]
    assert "--role admin" in problem["detail"]
    member = await new_key(client, name="member")
    assert_problem(await client.delete(f"/api-keys/{boot}"), 409)  # a member is no admin
    ops = await new_key(client, name="ops", role="admin")
    assert (await client.delete(f"/api-keys/{boot}")).status_code == 204
    async with as_key(server, ops["apiKey"]) as admin:
        assert_problem(await admin.delete(f"/api-keys/{ops['id']}"), 409)
        assert (await admin.delete(f"/api-keys/{member['id']}")).status_code == 204
    await asyncio.to_thread(server.stop)
    restarted = await _start(settings)  # offered the revoked bootstrap key again
    try:
        async with as_key(restarted, ops["apiKey"]) as admin:
            keys = (await admin.get("/api-keys")).json()["items"]
            assert [(k["name"], k["role"]) for k in keys] == [("ops", "admin")]
            assert_problem(await admin.delete(f"/api-keys/{ops['id']}"), 409)
    finally:
        await asyncio.to_thread(restarted.stop)


async def test_racing_revocations_never_leave_a_project_without_an_admin(
    client: httpx.AsyncClient, server: ServerThread, bus: Bus
) -> None:
    for _ in range(3):
        ops = await new_key(client, name="ops", role="admin")
        async with as_key(server, ops["apiKey"]) as other:
            answers = await asyncio.gather(
                client.delete(f"/api-keys/{ops['id']}"),
                other.delete(f"/api-keys/{await bootstrap_id(client)}"),
            )
        codes = sorted(a.status_code for a in answers)
        assert codes in ([204, 409], [409, 409]), codes
        kv = await bus.kv("apikeys")
        admins = []
        for stored in await kv.keys():
            record = msgspec.json.decode((await kv.get(stored)).value or b"")
            if record.get("role") == "admin":
                admins.append(record["id"])
        assert len(admins) >= 1
        if api_key_id(BOOTSTRAP_KEY) not in admins:
            return  # the bootstrap key went; the test client cannot go on
        if ops["id"] in admins:
            assert (await client.delete(f"/api-keys/{ops['id']}")).status_code == 204


async def test_keys_stored_before_roles_keep_what_they_could_do(
    client: httpx.AsyncClient, server: ServerThread, bus: Bus
) -> None:
    kv = await bus.kv("apikeys")
    old = {"admin": "orra_" + "a" * 43, "plain": "orra_" + "p" * 43}
    for name, key in old.items():
        record = {
            "id": api_key_id(key),
            "project": "default",
            "prefix": key[:12],
            "name": name,
            "createdAt": time.time(),
            "admin": name == "admin",
        }
        await kv.put(hash_api_key(key), msgspec.json.encode(record))
    async with as_key(server, old["admin"]) as admin, as_key(server, old["plain"]) as plain:
        assert (await admin.get("/me")).json()["role"] == "admin"
        assert (await admin.get("/webhooks/secret")).status_code == 200
        assert (await plain.get("/me")).json()["role"] == "member"
        assert_problem(await plain.get("/webhooks/secret"), 403)
    roles = {k["name"]: k["role"] for k in (await client.get("/api-keys")).json()["items"]}
    assert roles == {"bootstrap": "admin", "admin": "admin", "plain": "member"}


async def test_only_admins_of_the_default_project_create_keys_elsewhere(
    client: httpx.AsyncClient, server: ServerThread
) -> None:
    acme_admin = await new_key(client, project="acme", role="admin")
    assert (acme_admin["project"], acme_admin["role"]) == ("acme", "admin")
    async with as_key(server, acme_admin["apiKey"]) as acme:
        problem = assert_problem(await acme.post("/api-keys", json={"project": "default"}), 403)
        assert "'default' project" in problem["detail"]
        assert_problem(await acme.post("/api-keys", json={"project": "beta"}), 403)
        mine = await acme.post("/api-keys", json={"role": "member"})
        assert mine.json()["project"] == "acme"
        listed = (await acme.get("/api-keys")).json()["items"]
        assert {k["project"] for k in listed} == {"acme"}
        # the default project's keys are out of reach
        assert_problem(await acme.delete(f"/api-keys/{await bootstrap_id(client)}"), 404)
