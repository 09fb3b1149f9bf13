"""The front door's webhook receiver: Standard Webhooks verification and its two modes."""

from __future__ import annotations

import base64
import json
import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import standardwebhooks
from bench.receiver import Arrival, Receiver, verify_signature

SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()
OTHER = "whsec_" + base64.b64encode(b"another secret of thirty-two b..").decode()


def signed(
    body: bytes, secret: str = SECRET, msg_id: str = "msg_1", at: datetime | None = None
) -> dict[str, str]:
    """Headers as the reference library (standardwebhooks) signs them."""
    when = at or datetime.now(tz=UTC)
    signature = standardwebhooks.Webhook(secret).sign(msg_id, when, body.decode())
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(when.timestamp())),
        "webhook-signature": signature,
    }


def payload(orchestration_id: str = "o_1", status: str = "completed") -> bytes:
    return json.dumps({"orchestrationId": orchestration_id, "status": status}).encode()


def test_a_signature_made_by_the_reference_library_verifies() -> None:
    body = payload()
    assert verify_signature(SECRET, signed(body), body)


@pytest.mark.parametrize(
    "tamper",
    [
        lambda h, b: (h, b + b" "),
        lambda h, b: ({**h, "webhook-id": "msg_2"}, b),
        lambda h, b: ({**h, "webhook-timestamp": str(int(h["webhook-timestamp"]) + 1)}, b),
        lambda h, b: ({k: v for k, v in h.items() if k != "webhook-signature"}, b),
        lambda h, b: ({**h, "webhook-signature": "v2," + h["webhook-signature"][3:]}, b),
    ],
    ids=["body", "id", "timestamp", "no-signature", "unknown-version"],
)
def test_anything_changed_after_signing_fails(tamper: object) -> None:
    body = payload()
    headers, changed = tamper(signed(body), body)  # type: ignore[operator]
    assert not verify_signature(SECRET, headers, changed)


def test_another_secret_fails_and_any_of_several_signatures_passes() -> None:
    body = payload()
    assert not verify_signature(OTHER, signed(body), body)
    both = signed(body)
    both["webhook-signature"] = (
        signed(body, OTHER)["webhook-signature"] + " " + both["webhook-signature"]
    )
    assert verify_signature(SECRET, both, body)


def test_a_timestamp_older_than_five_minutes_fails() -> None:
    body = payload()
    old = datetime.now(tz=UTC) - timedelta(minutes=6)
    assert not verify_signature(SECRET, signed(body, at=old), body)
    assert verify_signature(SECRET, signed(body, at=old), body, now=old.timestamp() + 1)


async def _receiver(mode: str) -> tuple[Receiver, list[tuple[str, Arrival]]]:
    got: list[tuple[str, Arrival]] = []
    receiver = Receiver(lambda o, a: got.append((o, a)), mode=mode)  # type: ignore[arg-type]
    receiver.secret = SECRET
    await receiver.start()
    return receiver, got


async def test_keep_alive_mode_keeps_one_connection_for_many_deliveries() -> None:
    receiver, got = await _receiver("keep-alive")
    try:
        async with httpx.AsyncClient() as client:
            for i in range(3):
                body = payload(f"o_{i}")
                response = await client.post(
                    receiver.url, content=body, headers=signed(body, msg_id=f"m{i}")
                )
                assert response.status_code == 204
                assert response.headers.get("connection") != "close"
    finally:
        await receiver.stop()
    assert receiver.connections == 1
    assert [o for o, _ in got] == ["o_0", "o_1", "o_2"]
    assert [a.new_connection for _, a in got] == [True, False, False]
    assert all(a.head_at <= a.verified_at <= time.time() for _, a in got)
    assert got[0][1].webhook_id == "m0"
    assert got[0][1].status == "completed"


async def test_closing_mode_closes_every_connection() -> None:
    receiver, got = await _receiver("closing")
    try:
        async with httpx.AsyncClient() as client:
            for i in range(3):
                body = payload(f"o_{i}")
                response = await client.post(receiver.url, content=body, headers=signed(body))
                assert response.status_code == 204
                assert response.headers["connection"] == "close"
    finally:
        await receiver.stop()
    assert receiver.connections == 3
    assert [a.new_connection for _, a in got] == [True, True, True]


async def test_an_unsigned_delivery_is_refused_and_not_reported() -> None:
    receiver, got = await _receiver("keep-alive")
    try:
        async with httpx.AsyncClient() as client:
            body = payload()
            response = await client.post(receiver.url, content=body, headers=signed(body, OTHER))
            assert response.status_code == 401
            response = await client.post(receiver.url, content=body)
            assert response.status_code == 401
    finally:
        await receiver.stop()
    assert receiver.refused == 2
    assert got == []


async def test_stop_ends_the_handlers_of_idle_keep_alive_connections() -> None:
    receiver, got = await _receiver("keep-alive")
    async with httpx.AsyncClient() as client:
        body = payload()
        assert (await client.post(receiver.url, content=body, headers=signed(body))).status_code
        await receiver.stop()  # the client still holds its connection open
        assert receiver._open == {}
    assert len(got) == 1
