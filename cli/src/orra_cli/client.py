"""A small synchronous client of the gateway's HTTP API (docs/architecture.md).

Every failure becomes a :class:`~orra_cli.errors.CliError` whose message says what to do
next: an unreachable gateway, a refused key, a missing orchestration, a problem-details
response.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any

from orra_cli.errors import CliError

if TYPE_CHECKING:
    import ssl
    from collections.abc import Iterator
    from types import ModuleType

    import httpx

__all__ = ["GatewayClient", "GatewayUnreachable", "PlanRejected", "SseEvent", "problem_lines"]


class PlanRejected(CliError):
    """The gateway answered 422: the action could not be planned or the input is invalid."""


class GatewayUnreachable(CliError):
    """No HTTP answer came from the gateway (refused, reset, timed out)."""


class SseEvent:
    """One Server-Sent Event.

    Attributes:
        id: The ``id:`` field (the stream sequence).
        event: The ``event:`` field (the event type).
        data: The ``data:`` field.
    """

    __slots__ = ("data", "event", "id")

    def __init__(self, id: str | None, event: str | None, data: str) -> None:  # noqa: A002
        self.id = id
        self.event = event
        self.data = data


def problem_lines(body: Any) -> tuple[str | None, list[str]]:
    """Title and detail lines of a problem-details (or Litestar error) body."""
    if not isinstance(body, dict):
        return (str(body)[:500] if body else None), []
    title = body.get("title") or body.get("detail") or body.get("message")
    lines: list[str] = []
    detail = body.get("detail")
    if detail and detail != title:
        lines.append(str(detail))
    reasons = body.get("reasons")
    if reasons is None and isinstance(body.get("extra"), dict):
        reasons = body["extra"].get("reasons")
    if isinstance(reasons, list):
        lines.extend(str(r) for r in reasons if str(r) not in lines)
    elif isinstance(body.get("extra"), list):
        for item in body["extra"]:
            if isinstance(item, dict):
                key = item.get("key")
                msg = item.get("message", item)
                lines.append(f"{key}: {msg}" if key else str(msg))
    return (str(title) if title else None), lines


class GatewayClient:
    """Calls the gateway with a bearer key.

    Args:
        base_url: Gateway URL, e.g. ``http://127.0.0.1:8005``.
        api_key: Bearer key (``None`` for the unauthenticated routes).
        timeout_s: Per-request timeout.
    """

    def __init__(self, base_url: str, api_key: str | None, *, timeout_s: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        headers = {"Accept": "application/json", "User-Agent": "orra-cli"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        lib = _httpx()  # here, not at import: `orra --help` does not load it
        self._http: httpx.Client = lib.Client(
            base_url=self.base_url, headers=headers, timeout=timeout_s, verify=_tls(self.base_url)
        )

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> GatewayClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # --- transport ----------------------------------------------------------------------

    def _unreachable(self, exc: Exception) -> CliError:
        return GatewayUnreachable(
            f"cannot reach the gateway at {self.base_url}: start it with `orra up` "
            f"or set ORRA_GATEWAY_URL ({type(exc).__name__}: {exc})"
        )

    def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        not_found: str | None = None,
    ) -> httpx.Response:
        """Send a request; return the response when its status is below 400.

        Args:
            method: HTTP method.
            path: Path under the base URL.
            json_body: JSON body, if any.
            params: Query parameters; ``None`` values are dropped.
            headers: Extra headers.
            not_found: Message for a 404 (a generic one otherwise).

        Raises:
            PlanRejected: the gateway answered 422.
            CliError: the gateway is unreachable or answered another error.
        """
        lib = _httpx()
        query = {k: v for k, v in (params or {}).items() if v is not None}
        try:
            resp = self._http.request(
                method, path, json=json_body, params=query or None, headers=headers
            )
        except lib.TransportError as exc:
            raise self._unreachable(exc) from None
        if resp.status_code < 400:
            return resp
        raise self._error(resp, not_found)

    def _error(self, resp: httpx.Response, not_found: str | None) -> CliError:
        try:
            body: Any = resp.json()
        except ValueError:
            body = resp.text
        title, lines = problem_lines(body)
        code = resp.status_code
        data: dict[str, Any] = {"httpStatus": code}
        if isinstance(body, dict):
            data["problem"] = body
            if body.get("orchestrationId"):
                data["orchestrationId"] = body["orchestrationId"]
            if isinstance(body.get("reasons"), list):
                data["reasons"] = body["reasons"]
        if code == 403:
            return CliError(
                f"the gateway at {self.base_url} refused: "
                f"{body.get('detail') if isinstance(body, dict) else title}",
                details=[],
                data=data,
            )
        if code == 401:
            return CliError(
                f"the gateway at {self.base_url} refused the API key ({code}"
                f"{': ' + title if title else ''}): run `orra up` to write the local key, "
                "or set ORRA_API_KEY, or pass --api-key",
                details=lines,
                data=data,
            )
        if code == 404:
            return CliError(
                not_found or f"not found: {title or resp.url.path}", details=lines, data=data
            )
        if code == 422:
            return PlanRejected(
                f"the gateway rejected the request (422): {title or 'unprocessable'}",
                details=lines,
                data=data,
            )
        hint = "" if code < 500 else "; check the gateway's logs (`orra up` prints them)"
        return CliError(
            f"the gateway answered {code} {resp.reason_phrase}"
            f"{': ' + title if title else ''}{hint}",
            details=lines,
            data=data,
        )

    def get_json(self, path: str, **kwargs: Any) -> Any:
        """GET ``path`` and return its JSON body."""
        return self._json(self.request("GET", path, **kwargs))

    def post_json(self, path: str, body: Any = None, **kwargs: Any) -> Any:
        """POST ``body`` to ``path`` and return the JSON answer (``None`` when empty)."""
        return self._json(self.request("POST", path, json_body=body, **kwargs))

    def delete(self, path: str, **kwargs: Any) -> Any:
        """DELETE ``path``; return the JSON answer (``None`` for the usual 204)."""
        return self._json(self.request("DELETE", path, **kwargs))

    def _json(self, resp: httpx.Response) -> Any:
        if not resp.content:
            return None
        try:
            return resp.json()
        except ValueError:
            raise CliError(
                f"the gateway at {self.base_url} answered {resp.request.url.path} with "
                "something that is not JSON: is ORRA_GATEWAY_URL the Orra gateway?"
            ) from None

    # --- API ----------------------------------------------------------------------------

    def submit(
        self,
        action: str,
        data: list[dict[str, Any]],
        *,
        webhook: str | None = None,
        idempotency_key: str | None = None,
        mode: str | None = None,
        pause_grace_s: float | None = None,
        allow_partial: bool = False,
        execute: bool = True,
    ) -> tuple[int, dict[str, Any]]:
        """POST /orchestrations; return the status code and the body.

        ``mode`` (``groups`` / ``eager``) and ``pause_grace_s`` (``pauseGraceS``) are sent
        only when given: the gateway's defaults apply otherwise. ``allow_partial`` sends
        ``allowPartial: true``; ``execute`` false sends ``execute: false`` (plan only).
        """
        body: dict[str, Any] = {"action": {"content": action}, "data": data}
        if webhook:
            body["webhook"] = webhook
        if mode is not None:
            body["mode"] = mode
        if pause_grace_s is not None:
            body["pauseGraceS"] = pause_grace_s
        if allow_partial:
            body["allowPartial"] = True
        if not execute:
            body["execute"] = False
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        resp = self.request("POST", "/orchestrations", json_body=body, headers=headers)
        payload = self._json(resp)
        if not isinstance(payload, dict):
            raise CliError("the gateway answered POST /orchestrations without a JSON object")
        return resp.status_code, payload

    def orchestration(self, orchestration_id: str) -> dict[str, Any]:
        """GET /orchestrations/{id}."""
        payload = self.get_json(
            f"/orchestrations/{orchestration_id}",
            not_found=f"orchestration {orchestration_id} not found: list them with `orra ps`",
        )
        if not isinstance(payload, dict):
            raise CliError(f"the gateway answered /orchestrations/{orchestration_id} oddly")
        return payload

    def events(self, orchestration_id: str) -> Iterator[SseEvent]:
        """Stream GET /orchestrations/{id}/events (Server-Sent Events) until it closes."""
        lib = _httpx()
        path = f"/orchestrations/{orchestration_id}/events"
        try:
            with self._http.stream(
                "GET", path, headers={"Accept": "text/event-stream"}, timeout=None
            ) as resp:
                if resp.status_code >= 400:
                    resp.read()
                    raise self._error(
                        resp,
                        f"orchestration {orchestration_id} not found: list them with `orra ps`",
                    )
                yield from _parse_sse(resp.iter_lines())
        except lib.TransportError as exc:
            raise self._unreachable(exc) from None


def _httpx() -> ModuleType:
    """The httpx module, imported without its own command line.

    ``import httpx`` also imports ``httpx._main`` (its CLI: click, rich.progress, pygments,
    ~30-70 ms) whenever those are installed, as they are here; the gateway client never uses
    it. A ``None`` entry in ``sys.modules`` makes that import fail, which httpx catches (it
    defines a stub ``main`` then); the entry is removed again afterwards.
    """
    if "httpx" not in sys.modules and "httpx._main" not in sys.modules:
        sys.modules["httpx._main"] = None  # type: ignore[assignment]
        try:
            import httpx
        finally:
            if sys.modules.get("httpx._main", ...) is None:
                del sys.modules["httpx._main"]
    import httpx

    return httpx


_PROXY_VARIABLES = frozenset({"http_proxy", "https_proxy", "all_proxy"})


def _tls(base_url: str) -> ssl.SSLContext | bool:
    """What the client verifies TLS with: the default (certifi's CA bundle) when it may talk TLS.

    httpx loads the CA bundle when the client is made, TLS or not (~50 ms). A plain
    ``http://`` gateway reached without a proxy never speaks TLS (the client follows no
    redirects), so it gets an empty context instead: one that still requires a verified
    certificate and so would refuse any TLS peer rather than trust it.
    """
    if base_url.lower().startswith("http://") and not any(
        name.lower() in _PROXY_VARIABLES and value for name, value in os.environ.items()
    ):
        import ssl

        return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    return True


def _parse_sse(lines: Iterator[str]) -> Iterator[SseEvent]:
    event_id: str | None = None
    event_type: str | None = None
    data: list[str] = []
    for raw in lines:
        line = raw.rstrip("\r")
        if not line:
            if data:
                yield SseEvent(event_id, event_type, "\n".join(data))
            event_id, event_type, data = None, None, []
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "id":
            event_id = value
        elif name == "event":
            event_type = value
        elif name == "data":
            data.append(value)
    if data:
        yield SseEvent(event_id, event_type, "\n".join(data))
