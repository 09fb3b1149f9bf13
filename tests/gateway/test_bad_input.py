"""Inputs that used to answer 500, sent as raw bytes over real HTTP to the real gateway.

Issue 16: invalid UTF-8 and JSON nested ~1,000 levels gave 500 (``UnicodeDecodeError`` /
``RecursionError``), ``text/plain`` bodies were read as JSON, webhook URLs that the
notifier's HTTP client refuses were accepted, and a non-ASCII ``Idempotency-Key`` was
stored garbled. Every one is now a 4xx problem that names what is wrong.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from orra_events import Bus
from tests.gateway.conftest import BOOTSTRAP_KEY, _start, gateway_settings
from tests.gateway.test_api import assert_problem

pytestmark = [pytest.mark.timeout(90), pytest.mark.usefixtures("planner")]

JSON = {"content-type": "application/json"}


def nested(depth: int, leaf: bytes = b"1") -> bytes:
    return b"[" * depth + leaf + b"]" * depth


def with_value(value: bytes) -> bytes:
    return b'{"action":{"content":"Process order"},"data":[{"field":"v","value":' + value + b"}]}"


async def post(client: httpx.AsyncClient, raw: bytes, **headers: str) -> httpx.Response:
    return await client.post("/orchestrations", content=raw, headers={**JSON, **headers})


async def test_invalid_utf8_is_a_400_naming_the_byte(client: httpx.AsyncClient) -> None:
    response = await post(client, b'{"action":{"content":"\xff\xfe"},"data":[]}')
    problem = assert_problem(response, 400, "body")
    assert "not valid UTF-8" in problem["detail"]
    assert "byte 0" in problem["errors"][0]["message"]
    for path, raw in (
        ("/webhooks", b'{"url":"https://example.com/\xff"}'),
        ("/api-keys", b'{"name":"\xc3"}'),
        ("/orchestrations/o_x/abort", b'{"reason":"\xed\xa0\x80"}'),
    ):
        assert_problem(await client.post(path, content=raw, headers=JSON), 400, "body")


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (nested(1000), "body[0][0][0]"),
        (b'{"action":' + nested(1000) + b',"data":[]}', "action[0][0]"),
        (with_value(nested(1000)), "data[0].value"),
        (with_value(b'{"a":' * 1000 + b"1" + b"}" * 1000), "data[0].value"),
        (with_value(nested(33)), "data[0].value"),
        (with_value(nested(600)), "data[0].value"),
        (b'{"action":{"content":"x"},"data":[],"webhook":' + nested(5000) + b"}", "webhook[0][0]"),
    ],
    ids=["top", "action", "value-1000", "object-1000", "value-33", "value-600", "webhook-5000"],
)
async def test_deep_json_is_a_400_naming_where(
    client: httpx.AsyncClient, raw: bytes, field: str
) -> None:
    problem = assert_problem(await post(client, raw), 400, field)
    assert "nested" in problem["detail"]
    message = problem["errors"][0]["message"]
    assert "deeper than 35 levels" in message
    assert "ORRA_GATEWAY_MAX_DATA_DEPTH" in message


async def test_data_values_nest_up_to_the_limit(client: httpx.AsyncClient) -> None:
    # brackets inside strings do not count
    deep_string = b'"' + b"[{" * 500 + b'"'
    ok = await post(client, with_value(nested(32, deep_string)))
    assert ok.status_code == 201, ok.text
    detail = (await client.get(f"/orchestrations/{ok.json()['id']}")).json()
    value: Any = detail["data"][0]["value"]
    for _ in range(32):
        value = value[0]
    assert value == "[{" * 500


async def test_the_nesting_limit_is_a_setting(bus: Bus, nats_url: str, namespace: str) -> None:
    server = await _start(gateway_settings(nats_url, namespace, max_data_depth=2))
    try:
        async with httpx.AsyncClient(
            base_url=server.url, headers={"Authorization": f"Bearer {BOOTSTRAP_KEY}"}
        ) as client:
            assert (await post(client, with_value(b'{"a":[1]}'))).status_code == 201
            problem = assert_problem(await post(client, with_value(b'{"a":[[1]]}')), 400)
            assert problem["errors"] == [
                {
                    "field": "data[0].value",
                    "message": "JSON is nested deeper than 5 levels (a data value may nest at "
                    "most 2: ORRA_GATEWAY_MAX_DATA_DEPTH)",
                }
            ]
    finally:
        await asyncio.to_thread(server.stop)


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "text/plain; charset=utf-8", "text/json"],
)
async def test_a_body_that_is_not_json_is_415(client: httpx.AsyncClient, content_type: str) -> None:
    raw = b'{"action":{"content":"Process order"},"data":[]}'
    response = await client.post(
        "/orchestrations", content=raw, headers={"content-type": content_type}
    )
    problem = assert_problem(response, 415)
    assert "application/json" in problem["detail"]
    assert (await client.get("/orchestrations")).json()["items"] == []
    for media in ("application/json; charset=utf-8", "application/merge-patch+json"):
        accepted = await client.post(
            "/orchestrations", content=raw, headers={"content-type": media}
        )
        assert accepted.status_code == 201, accepted.text


@pytest.mark.parametrize(
    "url",
    [
        "http://127.000.000.001:9000/hook",
        "http://0177.0.0.1:9000/hook",
        "http://1.2.3.256/hook",
        "http://example.com:99999/hook",
        "http://exa%41mple.com/hook",
    ],
)
async def test_webhook_urls_the_notifier_cannot_send_are_refused_even_when_private_is_allowed(
    bus: Bus, nats_url: str, namespace: str, url: str
) -> None:
    server = await _start(gateway_settings(nats_url, namespace, allow_private_webhooks=True))
    try:
        async with httpx.AsyncClient(
            base_url=server.url, headers={"Authorization": f"Bearer {BOOTSTRAP_KEY}"}
        ) as client:
            submitted = await client.post(
                "/orchestrations",
                json={"action": {"content": "Process order"}, "data": [], "webhook": url},
            )
            assert_problem(submitted, 422, "webhook")
            assert_problem(await client.post("/webhooks", json={"url": url}), 422, "url")
            assert (
                await client.post("/webhooks", json={"url": "http://127.0.0.1:9000/hook"})
            ).status_code == 201
    finally:
        await asyncio.to_thread(server.stop)


@pytest.mark.parametrize(
    "url",
    [
        "http://0x7f.0.0.1:9000/hook",
        "http://2130706433:9000/hook",
        "http://127.1:9000/hook",
        "http://0/hook",
        "http://0xa9fea9fe/latest/meta-data",
    ],
)
async def test_every_spelling_of_a_private_address_is_refused(
    client: httpx.AsyncClient, url: str
) -> None:
    submitted = await client.post(
        "/orchestrations", json={"action": {"content": "Process order"}, "data": [], "webhook": url}
    )
    problem = assert_problem(submitted, 422, "webhook")
    assert "loopback or private" in problem["detail"]
    assert_problem(await client.post("/webhooks", json={"url": url}), 422, "url")


@pytest.mark.parametrize(
    "key",
    ["cl\u00e9".encode(), b"order 123", b"tab\there", "\u00e9".encode("latin-1")],
    ids=["utf8", "space", "tab", "latin1"],
)
async def test_an_idempotency_key_must_be_visible_ascii(
    client: httpx.AsyncClient, key: bytes
) -> None:
    raw = b'{"action":{"content":"Process order"},"data":[]}'
    response = await client.post(
        "/orchestrations",
        content=raw,
        headers=[(b"content-type", b"application/json"), (b"idempotency-key", key)],
    )
    problem = assert_problem(response, 400, "Idempotency-Key")
    assert "visible ASCII" in problem["errors"][0]["message"]
    assert (await client.get("/orchestrations")).json()["items"] == []
    good = await client.post(
        "/orchestrations", content=raw, headers={**JSON, "Idempotency-Key": "order-123_~!"}
    )
    assert good.status_code == 201
    assert (await client.get(f"/orchestrations/{good.json()['id']}")).json()[
        "idempotencyKey"
    ] == "order-123_~!"
