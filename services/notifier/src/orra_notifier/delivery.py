"""HTTP side of the notifier: check a webhook URL, then POST one signed attempt.

One shared :class:`httpx.AsyncClient` serves every attempt of a process (connection
pooling, bounded connections). Redirects are not followed (a receiver that moved must be
re-registered, and a redirect could point at a private address); proxies from the
environment are ignored for the same reason. Every attempt is bounded as a whole by
``ORRA_NOTIFIER_TIMEOUT_S``, not only per socket operation.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING

import httpx

from orra_notifier.domain import (
    AttemptResult,
    check_url_shape,
    is_public_address,
    parse_retry_after,
)
from orra_notifier.errors import UnsafeWebhookUrl

if TYPE_CHECKING:
    from orra_notifier.settings import NotifierSettings

__all__ = ["Deliverer", "Resolver", "system_resolver"]

Resolver = Callable[[str, int], Awaitable[list[str]]]
"""Resolves a host and port to its IP addresses."""


async def system_resolver(host: str, port: int) -> list[str]:
    """Every address the system resolver gives for ``host``.

    Raises:
        OSError: the host does not resolve.
    """
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return sorted({str(info[4][0]) for info in infos})


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
        self._resolver = resolver
        self._owns_client = client is None
        self._client = client or httpx.AsyncClient(
            timeout=httpx.Timeout(settings.timeout_s, connect=min(settings.timeout_s, 5.0)),
            limits=httpx.Limits(
                max_connections=settings.concurrency,
                max_keepalive_connections=min(settings.concurrency, 20),
            ),
            follow_redirects=False,
            trust_env=False,
            headers={"user-agent": settings.user_agent},
        )

    async def check_url(self, url: str) -> AttemptResult | None:
        """Whether ``url`` may be called now.

        Returns:
            ``None`` when it may; a ``refused`` result (not retried) when the URL is
            malformed or, unless private targets are allowed, when any address of its host
            is loopback, private, link-local or otherwise not public; a ``connection``
            result (retried) when the host does not resolve.
        """
        try:
            host, port = check_url_shape(url)
        except UnsafeWebhookUrl as exc:
            return AttemptResult(kind="refused", error=str(exc))
        if self._settings.allow_private:
            return None
        try:
            addresses = await self._resolver(host, port)
        except OSError as exc:
            return AttemptResult(kind="connection", error=f"cannot resolve {host}: {exc}")
        private = [a for a in addresses if not is_public_address(a)]
        if private or not addresses:
            return AttemptResult(
                kind="refused",
                error=f"webhook host {host} resolves to a non-public address "
                f"({', '.join(private) or 'none'}); private targets are not allowed "
                "(ORRA_ALLOW_PRIVATE_WEBHOOKS=false)",
            )
        return None

    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> AttemptResult:
        """POST ``body`` to ``url`` once and report what happened; never raises for I/O."""
        all_headers = {"content-type": "application/json", **headers}
        try:
            async with (
                asyncio.timeout(self._settings.timeout_s),
                self._client.stream("POST", url, content=body, headers=all_headers) as response,
            ):
                return AttemptResult(
                    kind="response",
                    status_code=response.status_code,
                    retry_after_s=parse_retry_after(
                        response.headers.get("retry-after"), time.time()
                    ),
                )
        except (TimeoutError, httpx.TimeoutException):
            return AttemptResult(
                kind="timeout", error=f"no response within {self._settings.timeout_s:g}s"
            )
        except httpx.UnsupportedProtocol as exc:
            return AttemptResult(kind="refused", error=str(exc) or type(exc).__name__)
        except (httpx.TransportError, OSError) as exc:
            return AttemptResult(kind="connection", error=str(exc) or type(exc).__name__)

    async def aclose(self) -> None:
        """Close the HTTP client if this deliverer made it."""
        if self._owns_client:
            await self._client.aclose()
