"""Private targets checked at delivery: the address checked is the address connected to."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import httpcore
import pytest

from orra_notifier.delivery import Deliverer, PinnedBackend
from orra_notifier.errors import UnsafeWebhookUrl

from .helpers import fast_settings
from .receiver import Receiver

PUBLIC = "93.184.216.34"
RESPONSE = [b"HTTP/1.1 204 No Content\r\n", b"Content-Length: 0\r\n", b"\r\n"]


class Recording(httpcore.AsyncNetworkBackend):
    """Records where it is asked to connect; answers with a canned HTTP response."""

    def __init__(self) -> None:
        self.connected: list[tuple[str, int]] = []

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        del timeout, local_address, socket_options
        self.connected.append((host, port))
        return httpcore.AsyncMockStream(list(RESPONSE))

    async def sleep(self, seconds: float) -> None:
        del seconds


class Rebinding:
    """A DNS answer that changes: public the first time, loopback afterwards."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    async def __call__(self, host: str, port: int) -> list[str]:
        del port
        self.calls.append(host)
        return [PUBLIC] if len(self.calls) == 1 else ["127.0.0.1"]


async def test_the_socket_goes_to_the_checked_address_and_a_rebound_name_is_refused() -> None:
    resolver, inner = Rebinding(), Recording()
    backend = PinnedBackend(resolver, inner)

    await backend.connect_tcp("hooks.example", 443)
    assert inner.connected == [(PUBLIC, 443)]  # the address checked, not the name again
    assert resolver.calls == ["hooks.example"]  # resolved once for the check and the connect

    with pytest.raises(UnsafeWebhookUrl, match=r"127\.0\.0\.1.*ORRA_ALLOW_PRIVATE_WEBHOOKS"):
        await backend.connect_tcp("hooks.example", 443)
    assert inner.connected == [(PUBLIC, 443)]


async def test_an_http_request_through_the_pinned_backend_keeps_the_host_name() -> None:
    inner = Recording()

    async def resolve(host: str, port: int) -> list[str]:
        del host, port
        return [PUBLIC]

    pool = httpcore.AsyncConnectionPool(network_backend=PinnedBackend(resolve, inner))
    async with pool:
        response = await pool.request("POST", "http://hooks.example:8080/in", content=b"{}")
    assert response.status == 204
    assert inner.connected == [(PUBLIC, 8080)]


async def test_the_deliverer_refuses_a_name_resolving_to_loopback_without_sending() -> None:
    async def to_loopback(host: str, port: int) -> list[str]:
        del host, port
        return ["127.0.0.1"]

    async with Receiver(contract=False) as receiver:  # gets a bare `{}`, not a delivery
        url = f"http://hooks.example:{receiver.port}/webhooks/orra"
        refusing = Deliverer(fast_settings(allow_private=False), resolver=to_loopback)
        try:
            assert await refusing.check_url(url) is None  # well formed: decided at connect
            result = await refusing.post(url, b"{}", {})
        finally:
            await refusing.aclose()
        assert result.kind == "refused"
        assert result.error is not None
        assert "127.0.0.1" in result.error
        assert receiver.requests == []

        allowing = Deliverer(fast_settings(allow_private=True))
        try:
            ok = await allowing.post(receiver.url(), b"{}", {})
        finally:
            await allowing.aclose()
        assert (ok.kind, ok.status_code) == ("response", 200)


async def test_a_name_that_does_not_resolve_is_a_connection_error_and_retried() -> None:
    async def nowhere(host: str, port: int) -> list[str]:
        raise OSError(f"no such host {host}:{port}")

    deliverer = Deliverer(fast_settings(allow_private=False), resolver=nowhere)
    try:
        result = await deliverer.post("http://gone.example/hook", b"{}", {})
    finally:
        await deliverer.aclose()
    assert result.kind == "connection"
    assert result.error is not None
    assert "cannot resolve gone.example" in result.error
