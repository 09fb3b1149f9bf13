"""Search in the orchestration list (``GET /orchestrations?q=``) over real HTTP.

The search runs in the gateway over its list index, newest first, so it finds an
orchestration however old it is: here one submitted before 10,000 newer ones (the
console's former search only looked at the newest 10,000, in the browser).
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from orra_events import ActionSubmitted, Bus, DataField, encode
from tests.gateway.test_api import assert_problem

NEWER = 10_000


async def submitted(bus: Bus, actions: list[tuple[str, str]]) -> None:
    """``action.submitted`` of each (id, action), in this order, straight into the log."""
    for start in range(0, len(actions), 2_000):
        futures = []
        for n, (oid, action) in enumerate(actions[start : start + 2_000], start):
            event = ActionSubmitted(
                event_id=f"a:{oid}",
                orchestration_id=oid,
                action=action,
                data=[DataField("n", n)],
                project="default",
                at=1_000.0 + n,
            )
            futures.append(
                await bus.js.publish_async(
                    bus.topology.subject_for(event),
                    encode(event),
                    headers={"Nats-Msg-Id": event.event_id},
                )
            )
        await asyncio.gather(*futures)


async def search(client: httpx.AsyncClient, **params: Any) -> tuple[list[str], int]:
    """Every id the search finds, following its cursors; and the requests it took."""
    ids: list[str] = []
    cursor = None
    requests = 0
    while True:
        resp = await client.get(
            "/orchestrations", params={**params, **({"cursor": cursor} if cursor else {})}
        )
        requests += 1
        assert resp.status_code == 200, resp.text
        page = resp.json()
        ids += [item["id"] for item in page["items"]]
        cursor = page["nextCursor"]
        if cursor is None:
            return ids, requests


async def test_a_search_finds_an_old_orchestration_behind_ten_thousand_newer_ones(
    bus: Bus, client: httpx.AsyncClient
) -> None:
    actions = [("o_oldwalrus0001", "Reconcile the Walrus ledger for March")]
    actions += [(f"o_filler{n:07d}", f"Process order {n} and notify") for n in range(NEWER)]
    actions[NEWER // 2] = ("o_midwalrus0001", "walrus LEDGER check, second run")
    await submitted(bus, actions)

    found, _ = await search(client, q="walrus ledger", limit=50)
    assert found == ["o_midwalrus0001", "o_oldwalrus0001"]  # newest first
    # by (part of) an id; words in any order and case
    assert (await search(client, q="OLDWALRUS"))[0] == ["o_oldwalrus0001"]
    assert (await search(client, q="march reconcile"))[0] == ["o_oldwalrus0001"]
    assert (await search(client, q="walrus nothing-has-this"))[0] == []
    # a search pages like the list: one line a page still finds both, newest first
    assert (await search(client, q="walrus", limit=1))[0] == ["o_midwalrus0001", "o_oldwalrus0001"]
    # with the status filter too (they are all still planning)
    assert (await search(client, q="walrus", status="planning"))[0] == [
        "o_midwalrus0001",
        "o_oldwalrus0001",
    ]
    assert (await search(client, q="walrus", status="completed"))[0] == []
    # the items are the list's lines
    page = (await client.get("/orchestrations", params={"q": "o_oldwalrus0001"})).json()
    assert page["items"][0]["action"] == "Reconcile the Walrus ledger for March"


async def test_a_bad_search_is_a_400_naming_q(client: httpx.AsyncClient) -> None:
    for q, says in (
        ("", "at least one word"),
        ("   ", "at least one word"),
        ("x" * 201, "at most 200 characters"),
        (" ".join(f"w{n}" for n in range(9)), "at most 8 words"),
        ("walrus\x00", "control characters"),
    ):
        problem = assert_problem(await client.get("/orchestrations", params={"q": q}), 400, "q")
        assert says in problem["errors"][0]["message"], (q, problem)
