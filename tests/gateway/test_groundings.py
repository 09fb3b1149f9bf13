"""``/groundings`` over real HTTP: admin keys store what the planner reads, members cannot."""

from __future__ import annotations

import httpx
import pytest

from orra_events import Bus
from orra_events.grounding import GroundingStore
from tests.gateway.conftest import ServerThread
from tests.gateway.test_api import assert_problem
from tests.gateway.test_roles import as_key, new_key

pytestmark = pytest.mark.timeout(90)

SHOP = {
    "name": "shop",
    "use-cases": [{"action": "Process order {orderId}", "services": ["PaymentService"]}],
    "constraints": ["Never ship before the payment is confirmed"],
}


async def test_stored_groundings_are_what_the_planner_reads(
    client: httpx.AsyncClient, bus: Bus
) -> None:
    applied = await client.post("/groundings", json={"groundings": [SHOP]})
    assert applied.status_code == 200, applied.text
    assert applied.json() == {"applied": ["shop"]}
    stored = await (await GroundingStore.open(bus)).get("shop")
    assert stored is not None
    assert stored.use_cases[0].action == "Process order {orderId}"
    assert stored.constraints == ["Never ship before the payment is confirmed"]

    listed = (await client.get("/groundings")).json()["items"]
    assert [g["name"] for g in listed] == ["shop"]
    one = await client.get("/groundings/shop")
    assert one.json()["use_cases"][0]["services"] == ["PaymentService"]

    assert (await client.delete("/groundings/shop")).status_code == 204
    assert await (await GroundingStore.open(bus)).get("shop") is None
    assert_problem(await client.delete("/groundings/shop"), 404)
    assert_problem(await client.get("/groundings/shop"), 404)


async def test_one_bad_document_stores_none_and_names_it(
    client: httpx.AsyncClient, bus: Bus
) -> None:
    bad = {"name": "bad name!", "use-cases": [{"action": "x"}]}
    problem = assert_problem(
        await client.post("/groundings", json={"groundings": [SHOP, bad]}), 422, "groundings[1]"
    )
    assert "bad name!" in problem["detail"]
    unknown = {"name": "x", "use-cases": [{"action": "y", "colour": "red"}]}
    assert_problem(
        await client.post("/groundings", json={"groundings": [unknown]}), 422, "groundings[0]"
    )
    assert_problem(await client.post("/groundings", json={"groundings": []}), 422)
    assert_problem(await client.post("/groundings", json={"grounding": [SHOP]}), 400)
    assert await (await GroundingStore.open(bus)).list() == []


async def test_a_member_key_cannot_touch_groundings(
    client: httpx.AsyncClient, server: ServerThread
) -> None:
    member = await new_key(client, name="ci")
    async with as_key(server, member["apiKey"]) as ci:
        assert_problem(await ci.get("/groundings"), 403)
        assert_problem(await ci.post("/groundings", json={"groundings": [SHOP]}), 403)
        assert_problem(await ci.delete("/groundings/shop"), 403)
