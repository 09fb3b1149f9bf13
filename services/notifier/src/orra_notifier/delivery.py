"""HTTP side of the notifier: check a webhook URL, then POST one signed attempt.

One shared :class:`httpx.AsyncClient` serves every attempt of a process (connection
pooling, bounded connections). Redirects are not followed (a receiver that moved must be
re-registered, and a redirect could point at a private address); proxies from the
environment are ignored for the same reason. Every attempt is bounded as a whole by
``ORRA_NOTIFIER_TIMEOUT_S``, not only per socket operation.

Private targets. Unless ``ORRA_ALLOW_PRIVATE_WEBHOOKS`` is on, the host of a webhook URL is
resolved when the connection is opened, every address it resolves to must be public, and
the socket is connected to one of *those* addresses (:class:`PinnedBackend`, the network
backend of the client's connection pool): no second resolution happens between the check
and the connection, so a name whose DNS answer changes (DNS rebinding) cannot slip a
private address in. TLS still verifies the certificate against the URL's host name (SNI),
and connections are pooled per host name. A refusal is final (``webhook.failed``).

Unsendable URLs. Before any attempt, the URL goes through the rule the gateway applied when
it accepted it (:mod:`orra_events.webhook_urls`): a URL the HTTP client cannot send (an IPv4
address with leading zeros, a host name that cannot resolve, an invalid port) or, unless
allowed, a private IP address in any spelling (``0x7f.1``, ``2130706433``), is refused for
good at the first attempt and reported once by ``webhook.failed``, never retried.
``httpx`` refusing a URL anyway (``InvalidURL``) is treated the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

import httpcore
import httpx

from orra_events import tracing
from orra_events.webhook_urls import InvalidWebhookUrl, is_private_address, parse_webhook_url
from orra_notifier.domain import (
    AttemptResult,
    non_public_refusal,
    parse_retry_after,
)
from orra_notifier.errors import UnsafeWebhookUrl

if TYPE_CHECKING:
    from orra_notifier.settings import NotifierSettings

__all__ = ["Deliverer", "PinnedBackend", "Resolver", "system_resolver"]

_DRAIN_LIMIT = 64 * 1024
"""Bytes of a receiver's answer read at most so that its connection can be reused."""
_DRAIN_TIMEOUT_S = 1.0
"""Seconds spent at most reading a receiver's answer after its status line."""

Resolver = Callable[[str, int], Awaitable[list[str]]]
"""Resolves a host and port to its IP addresses."""


async def system_resolver(host: str, port: int) -> list[str]:
    """Every address the system resolver gives for ``host``, in its order of preference.

    Raises:
        OSError: the host does not resolve.
    """
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class PinnedBackend(httpcore.AsyncNetworkBackend):
    """Connects only to public addresses, and to the very addresses it checked.

    Args:
        resolver: How host names are resolved.
        inner: The backend that opens the sockets (anyio's by default).

    ``connect_tcp`` raises :class:`~orra_notifier.errors.UnsafeWebhookUrl` when any
    address of the host is not public, and :class:`httpcore.ConnectError` when the host
    does not resolve.
    """

    def __init__(
        self, resolver: Resolver, inner: httpcore.AsyncNetworkBackend | None = None
    ) -> None:
        self._resolver = resolver
        self._inner = inner or httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        """Resolve ``host``, refuse it unless every address is public, connect to one."""
        try:
            addresses = await self._resolver(host, port)
        except UnicodeError as exc:  # the resolver's IDNA codec: this name can never resolve
            raise UnsafeWebhookUrl(f"host {host!r} cannot be resolved: {exc}") from None
        except OSError as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from exc
        refusal = non_public_refusal(host, addresses)
        if refusal is not None:
            raise UnsafeWebhookUrl(refusal)
        error: Exception | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    address,
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc
        assert error is not None  # addresses is not empty: non_public_refusal checked it
        raise error

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ARG002 - the interface's signature
        socket_options: Iterable[Any] | None = None,  # noqa: ARG002
    ) -> httpcore.AsyncNetworkStream:
        """Never: webhooks go to TCP hosts."""
        raise UnsafeWebhookUrl(f"webhooks are not delivered to unix sockets ({path})")

    async def sleep(self, seconds: float) -> None:
        """Sleep as the inner backend does."""
        await self._inner.sleep(seconds)


def _instrument(client: httpx.AsyncClient) -> None:
    """Trace each POST with the official httpx instrumentation, when it is installed.

    Its client span (a child of the attempt's span) then sets the ``traceparent`` the
    receiver sees; without it the attempt's span does (:mod:`orra_notifier.handlers`).
    """
    try:
        from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
    except ImportError:
        return
    HTTPXClientInstrumentor.instrument_client(client)


def _transport(settings: NotifierSettings, resolver: Resolver) -> httpx.AsyncHTTPTransport:
    """The client's transport, connecting through :class:`PinnedBackend` unless allowed not to."""
    limits = httpx.Limits(
        max_connections=settings.concurrency,
        max_keepalive_connections=min(settings.concurrency, 20),
    )
    transport = httpx.AsyncHTTPTransport(limits=limits, trust_env=False)
    if not settings.allow_private:
        # httpx takes no network backend; the pool is built as httpx builds it, plus one.
        transport._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=PinnedBackend(resolver),
        )
    return transport


async def _drain(response: httpx.Response, deadline: asyncio.Timeout) -> None:
    """Read the answer's body so that its connection goes back to the pool.

    httpcore reuses a connection only once the body has been read; left unread, the
    connection is closed and every delivery pays a new TCP connect, even to a keep-alive
    receiver. The answer is already known, so a body longer than :data:`_DRAIN_LIMIT`
    bytes, an error while reading it, or a body still arriving shortly before the
    attempt's deadline only costs the connection, never the attempt's result.
    """
    when = deadline.when()
    budget = (
        _DRAIN_TIMEOUT_S
        if when is None
        else min(_DRAIN_TIMEOUT_S, (when - asyncio.get_running_loop().time()) / 2)
    )
    read = 0
    with contextlib.suppress(httpx.HTTPError, TimeoutError):
        async with asyncio.timeout(max(budget, 0.0)):
            async for chunk in response.aiter_raw():
                read += len(chunk)
                if read > _DRAIN_LIMIT:
                    return


class Deliverer:
    """Checks webhook URLs and sends attempts.

    Args:
        settings: Timeout, private-address policy and user agent.
        client: An HTTP client to use instead of the one made here (closed by its owner).
        resolver: How hosts are resolved for the private-address check.
    """

    def __init__(
        self,
        settings: NotifierSettings,
        *,
        client: httpx.AsyncClient | None = None,
        resolver: Resolver = system_resolver,
    ) -> None:
        self._settings = settings
        self._owns_client = client is None
        self._client = client or httpx.AsyncClient(
            timeout=httpx.Timeout(settings.timeout_s, connect=min(settings.timeout_s, 5.0)),
            transport=_transport(settings, resolver),
            follow_redirects=False,
            trust_env=False,
            headers={"user-agent": settings.user_agent},
        )
        if tracing.on():
            _instrument(self._client)

    async def check_url(self, url: str) -> AttemptResult | None:
        """Whether ``url`` can be sent (``None``), or a ``refused`` result (not retried).

        Refused: what the HTTP client cannot send, and, unless private targets are allowed,
        a private IP address in any spelling. Whether a host name may be called is decided
        when the connection opens (see the module): the addresses checked are the ones
        connected to.
        """
        try:
            target = parse_webhook_url(url)
        except InvalidWebhookUrl as exc:
            return AttemptResult(kind="refused", error=f"webhook URL cannot be sent: {exc}")
        address = target.address
        if not self._settings.allow_private and address and is_private_address(address):
            return AttemptResult(
                kind="refused",
                error=non_public_refusal(target.host, [str(address)]),
            )
        return None

    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> AttemptResult:
        """POST ``body`` to ``url`` once and report what happened; never raises for I/O."""
        all_headers = {"content-type": "application/json", **headers}
        try:
            async with (
                asyncio.timeout(self._settings.timeout_s) as deadline,
                self._client.stream("POST", url, content=body, headers=all_headers) as response,
            ):
                result = AttemptResult(
                    kind="response",
                    status_code=response.status_code,
                    retry_after_s=parse_retry_after(
                        response.headers.get("retry-after"), time.time()
                    ),
                )
                await _drain(response, deadline)
                return result
        except (TimeoutError, httpx.TimeoutException):
            return AttemptResult(
                kind="timeout", error=f"no response within {self._settings.timeout_s:g}s"
            )
        except (httpx.UnsupportedProtocol, httpx.InvalidURL, UnsafeWebhookUrl) as exc:
            return AttemptResult(kind="refused", error=str(exc) or type(exc).__name__)
        except (httpx.TransportError, OSError) as exc:
            return AttemptResult(kind="connection", error=str(exc) or type(exc).__name__)

    async def aclose(self) -> None:
        """Close the HTTP client if this deliverer made it."""
        if self._owns_client:
            await self._client.aclose()
