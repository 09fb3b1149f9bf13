"""A small client of the gateway's HTTP API, for the MCP server's tools.

Every call carries one API key (the bearer of the MCP request, or the key ``orra mcp
serve`` was started with), so what an agent may do is exactly what that key may do over
HTTP: the gateway authenticates, checks roles and projects, validates and answers problem
details, which become :class:`~orra_mcp.errors.ApiError` with the gateway's ``detail``.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import quote

import httpx

from orra_mcp.errors import ApiError

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

__all__ = ["TERMINAL_EVENTS", "TERMINAL_STATUSES", "GatewayApi", "SseEvent"]

TERMINAL_STATUSES: Final = frozenset({"completed", "failed", "aborted", "not_actionable"})
"""Statuses after which an orchestration changes no more (but for late compensation)."""

TERMINAL_EVENTS: Final = frozenset(
    {"orchestration.done", "orchestration.failed", "orchestration.aborted", "plan.failed"}
)
"""Event types that end an orchestration."""


class SseEvent:
    """One event of ``GET /orchestrations/{id}/events``: its stream sequence, type and JSON."""

    __slots__ = ("data", "seq", "type")

    def __init__(self, seq: int, type_: str, data: dict[str, Any]) -> None:
        self.seq = seq
        self.type = type_
        self.data = data


class GatewayApi:
    """The gateway's HTTP API, with one API key.

    Args:
        base_url: The gateway (``ORRA_GATEWAY_URL``).
        api_key: The bearer key of every request.
        timeout_s: Timeout of one request (streams have no read timeout).
    """

    def __init__(self, base_url: str, api_key: str, *, timeout_s: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {api_key}"}
        self._timeout = timeout_s

    async def request(self, method: str, path: str, body: Any = None) -> Any:
        """Send one request; return its JSON body.

        Raises:
            ApiError: the gateway answered an error or could not be reached.
        """
        try:
            async with httpx.AsyncClient(timeout=self._timeout) as client:
                response = await client.request(
                    method,
                    self.base_url + path,
                    headers=self._headers,
                    json=body if body is not None else None,
                )
        except httpx.HTTPError as exc:
            raise ApiError(
                0, f"the Orra gateway at {self.base_url} cannot be reached: {exc}"
            ) from None
        return _json(response)

    async def me(self) -> dict[str, Any]:
        """``GET /me``: the key's id, project and role."""
        result: dict[str, Any] = await self.request("GET", "/me")
        return result

    async def events(self, orchestration_id: str, after: int = 0) -> AsyncIterator[SseEvent]:
        """The orchestration's events (after sequence ``after``), then live ones, for ever.

        Raises:
            ApiError: the stream could not be opened (unknown orchestration, bad key...).
        """
        headers = dict(self._headers)
        if after:
            headers["Last-Event-ID"] = str(after)
        timeout = httpx.Timeout(self._timeout, read=None)
        url = f"{self.base_url}/orchestrations/{quote(orchestration_id, safe='')}/events"
        try:
            async with (
                httpx.AsyncClient(timeout=timeout) as client,
                client.stream("GET", url, headers=headers) as response,
            ):
                if response.status_code != httpx.codes.OK:
                    await response.aread()
                    _json(response)
                fields: dict[str, str] = {}
                async for line in response.aiter_lines():
                    if line:
                        name, _, value = line.partition(":")
                        fields[name] = value.removeprefix(" ")
                        continue
                    if "data" in fields and "event" in fields:
                        yield SseEvent(
                            int(fields.get("id", "0") or 0),
                            fields["event"],
                            json.loads(fields["data"]),
                        )
                    fields = {}
        except httpx.HTTPError as exc:
            raise ApiError(0, f"the event stream of {orchestration_id} broke: {exc}") from None


def _json(response: httpx.Response) -> Any:
    try:
        body = response.json() if response.content else None
    except ValueError:
        body = None
    if response.is_success:
        return body
    problem = body if isinstance(body, dict) else {}
    detail = str(problem.get("detail") or problem.get("title") or response.reason_phrase)
    errors = problem.get("errors")
    if isinstance(errors, list) and errors:
        detail += (
            " ("
            + "; ".join(
                f"{e.get('field')}: {e.get('message')}" for e in errors if isinstance(e, dict)
            )
            + ")"
        )
    reasons = problem.get("reasons")
    if isinstance(reasons, list) and reasons:
        detail += ": " + "; ".join(str(r) for r in reasons)
    raise ApiError(response.status_code, detail, problem)
