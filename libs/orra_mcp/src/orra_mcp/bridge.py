"""The MCP bridge: every tool of the configured MCP servers served as an Orra service.

A :class:`Bridge` is an :class:`orra_sdk.OrraClient` process whose services come and go
with the tools of its MCP servers (one :class:`~orra_mcp.link.ServerLink` each). For each
tool (mapped by :mod:`orra_mcp.tools`) it declares a JSON-Schema service
(``Service.from_json_schema``) whose handler calls the tool, registers it and takes its
tasks like any SDK process; replicas of the bridge share the tasks through the service's
one durable consumer.

**Versions.** A tool's definition is known only at run time, so the bridge chooses the
version: the highest registered version of the service name if it holds this very
definition (a restart, another replica), else one above it (``1`` for a new name). So
the newest definition of a tool is always its highest version: new plans use it, and tasks
planned against the previous version keep running on replicas that still have it. Two
replicas that register a new definition at once agree (the same definition at the same
version); if they see different definitions (the MCP server is being upgraded under them)
the one refused retries above the other.

**Following the server.** When the tool list changes, a new tool is registered and starts
taking tasks; a tool whose definition changed is served at its new version (the old
version is withdrawn); a removed tool is withdrawn (:meth:`OrraClient.withdraw`): it stops
heartbeating, turns unhealthy (its tasks wait), then ``down`` after
``ORRA_SERVICE_DOWN_AFTER_S`` (left out of new plans) unless another replica serves it.
When the server is unreachable every one of its services is withdrawn the same way, and
served again once the connection is back.

**Bad tools** are reported (a warning naming the tool and the reason, once per tool and
reason) and skipped; the server's other tools are served: a name that cannot be a service
name (:func:`orra_mcp.tools.service_name`), an ``inputSchema`` or ``outputSchema`` that is
not valid JSON Schema of an object.

**Results** (:meth:`Bridge.call`). A result is the task's output (see
:mod:`orra_mcp.tools` for its shape); one that does not match the tool's output schema
fails the task, not retried, with the validation error. ``isError`` fails the task with the
tool's text (retried for a repeatable tool, not for others). Progress notifications become
``task.progress`` updates (``{"progress", "total", "message"}``). A timeout, or a
connection lost during the call, is retried for a repeatable tool; for any other tool it
fails the task as :class:`~orra_sdk.OutcomeUnknown`, never retried and left for an
operator. A server that is not connected fails the task as retryable (nothing was sent).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import structlog
from mcp.types import INVALID_PARAMS, INVALID_REQUEST, METHOD_NOT_FOUND, TextContent
from pydantic import ValidationError

from mcp import MCPError
from orra_events.registrations import registration_hash
from orra_events.versions import parse_version
from orra_mcp.errors import OrraMcpError
from orra_mcp.link import ConnectionLost, NotConnected, ServerLink
from orra_mcp.tools import RESULT_FIELD, ToolSpec, map_tools
from orra_sdk import (
    ClientClosed,
    JsonObject,
    NonRetryableError,
    OutcomeUnknown,
    RegistrationConflict,
    Service,
    ServiceDefinitionError,
    Task,
)

if TYPE_CHECKING:
    from mcp.types import CallToolResult, Tool

    from orra_mcp.config import BridgeConfig, ServerSpec
    from orra_sdk import OrraClient

__all__ = ["Bridge", "ToolCallFailed"]

log = structlog.get_logger("orra.mcp.bridge")

_REFUSALS = frozenset({INVALID_PARAMS, INVALID_REQUEST, METHOD_NOT_FOUND})
"""Protocol errors that mean the call was refused before the tool ran."""
_UNSAFE_GRACE_S = 30.0
"""A tool that must not run twice waits this much longer than the task's timeout, so the
dispatcher's timeout (which leaves the task for an operator) comes first."""
_REGISTER_TRIES = 3


class ToolCallFailed(OrraMcpError):
    """A tool call failed in a way that may succeed if tried again (a retryable failure)."""


@dataclass(frozen=True)
class _Served:
    server: str
    spec: ToolSpec
    version: str


class Bridge:
    """Serves the tools of every configured MCP server as Orra services.

    Args:
        config: The MCP servers.
        client: A connected :class:`~orra_sdk.OrraClient` (of ``config.project``).
        probe_s: Seconds between two re-listings of a server's tools.
    """

    def __init__(self, config: BridgeConfig, client: OrraClient, *, probe_s: float = 15.0) -> None:
        self.config = config
        self.client = client
        self.links = {
            spec.name: ServerLink(
                spec,
                on_tools=self._tools_of(spec),
                on_down=self._down_of(spec),
                probe_s=probe_s,
            )
            for spec in config.servers
        }
        self.served: dict[str, _Served] = {}
        self.skipped: dict[str, dict[str, str]] = {spec.name: {} for spec in config.servers}
        self._locks = {spec.name: asyncio.Lock() for spec in config.servers}

    @property
    def ready(self) -> bool:
        """Whether the bridge is connected to the broker (MCP servers may still be away)."""
        try:
            return self.client.bus.connected
        except ClientClosed:
            return False

    async def start(self) -> None:
        """Start connecting to every MCP server; services register as their tools are listed."""
        for link in self.links.values():
            link.start()

    async def stop(self) -> None:
        """Withdraw every service and close every MCP connection."""
        await self.client.withdraw(*list(self.served))
        self.served.clear()
        await asyncio.gather(*(link.stop() for link in self.links.values()))

    # --- following the servers -------------------------------------------------------------

    def _tools_of(self, server: ServerSpec) -> Any:
        async def on_tools(tools: list[Tool]) -> None:
            async with self._locks[server.name]:
                await self._sync(server, tools)

        return on_tools

    def _down_of(self, server: ServerSpec) -> Any:
        async def on_down(reason: str) -> None:
            async with self._locks[server.name]:
                gone = [n for n, s in self.served.items() if s.server == server.name]
                for name in gone:
                    del self.served[name]
                if gone:
                    log.warning(
                        "services withdrawn: their MCP server is unreachable",
                        server=server.name,
                        services=gone,
                        reason=reason,
                    )
                    await self.client.withdraw(*gone)

        return on_down

    async def _sync(self, server: ServerSpec, tools: list[Tool]) -> None:
        specs, skipped = map_tools(server.prefix, tools, server.tools)
        reports = {line.split(":", 1)[0]: line for line in skipped}
        wanted: dict[str, ToolSpec] = {}
        for spec in specs:
            try:
                self._declare(server, spec, "1")
            except ServiceDefinitionError as exc:
                reports[f"tool {spec.tool!r}"] = f"tool {spec.tool!r}: {exc}"
                continue
            wanted[spec.service] = spec
        self._report(server, reports)
        mine = {n: s for n, s in self.served.items() if s.server == server.name}
        gone = [
            name
            for name, served in mine.items()
            if name not in wanted or served.spec.fingerprint != wanted[name].fingerprint
        ]
        if gone:
            for name in gone:
                del self.served[name]
            await self.client.withdraw(*gone)
            log.info("services withdrawn: their tools changed or left", services=gone)
        for name, spec in wanted.items():
            if name not in self.served:
                await self._register(server, spec)

    def _report(self, server: ServerSpec, reports: dict[str, str]) -> None:
        known = self.skipped[server.name]
        for key, line in reports.items():
            if known.get(key) != line:
                log.warning("MCP tool skipped", server=server.name, reason=line)
        self.skipped[server.name] = reports

    async def _register(self, server: ServerSpec, spec: ToolSpec) -> None:
        for _ in range(_REGISTER_TRIES):
            version = await self._version(server, spec)
            service = self._declare(server, spec, version)
            try:
                await self.client.start(service)
            except RegistrationConflict as exc:
                # Another replica registered another definition at this version meanwhile.
                log.info(
                    "version taken meanwhile; choosing again", service=spec.service, error=str(exc)
                )
                continue
            self.served[spec.service] = _Served(server=server.name, spec=spec, version=version)
            log.info(
                "MCP tool served",
                server=server.name,
                tool=spec.tool,
                service=spec.service,
                version=version,
                repeatable=spec.repeatable,
            )
            return
        log.error("MCP tool not served: its version kept changing", service=spec.service)

    async def _version(self, server: ServerSpec, spec: ToolSpec) -> str:
        """The registered version holding this definition if it is the highest, else one above."""
        registered = await self.client.registrations(spec.service)
        if not registered:
            return "1"
        highest = max(registered, key=parse_version)
        event = registered[highest]
        candidate = self._declare(server, spec, highest)
        if (
            event.project == self.client.project
            and registration_hash(event) == candidate.schema_hash
        ):
            return highest
        return str(parse_version(highest)[0] + 1)

    def _declare(
        self, server: ServerSpec, spec: ToolSpec, version: str
    ) -> Service[JsonObject, JsonObject]:
        service = Service.from_json_schema(
            name=spec.service,
            description=spec.description,
            input_schema=spec.input_schema,
            output_schema=spec.output_schema,
            version=version,
            retry_on_timeout=spec.repeatable,
        )
        link = self.links[server.name]

        @service.handler
        async def handle(task: Task[JsonObject]) -> JsonObject:
            return await self.call(link, spec, task)

        return service

    # --- calling a tool --------------------------------------------------------------------

    async def call(self, link: ServerLink, spec: ToolSpec, task: Task[JsonObject]) -> JsonObject:
        """Run one task: call the tool and turn its result into the task's output.

        Raises:
            ToolCallFailed: a failure worth retrying (nothing ran, or the tool may be rerun).
            NonRetryableError: the call was refused, the tool reported an error and must
                not run twice, or the result does not match the output schema.
            OutcomeUnknown: a tool that must not run twice timed out or lost its
                connection during the call.
        """
        server = link.spec
        timeout_s = task.timeout_s or server.timeout_s
        if not spec.repeatable:
            timeout_s += _UNSAFE_GRACE_S

        async def report(progress: float, total: float | None, message: str | None) -> None:
            update: dict[str, Any] = {"progress": progress}
            if total is not None:
                update["total"] = total
            if message:
                update["message"] = message
            await task.progress(update, wait=False)

        where = f"{spec.tool} on MCP server {server.name!r}"
        try:
            result = await link.call(spec.tool, task.input, timeout_s=timeout_s, progress=report)
        except NotConnected as exc:
            raise ToolCallFailed(f"{exc}; {spec.tool} was not called") from None
        except (ConnectionLost, TimeoutError) as exc:
            if spec.repeatable:
                raise ToolCallFailed(f"{where}: {exc}") from None
            raise OutcomeUnknown(
                f"{where}: {exc}; the tool is neither read-only nor idempotent, so it is not "
                "called again"
            ) from None
        except MCPError as exc:
            text = f"{where} answered error {exc.code}: {exc.message}"
            if exc.code in _REFUSALS:
                raise NonRetryableError(text) from None
            if spec.repeatable:
                raise ToolCallFailed(text) from None
            raise OutcomeUnknown(text) from None
        except (RuntimeError, ValidationError) as exc:
            # The MCP SDK checks the structured result against the tool's output schema.
            raise NonRetryableError(f"{where}: {exc}") from None
        if result.is_error:
            text = f"{where} reported an error: {_text(result) or '(no text)'}"
            if spec.repeatable:
                raise ToolCallFailed(text)
            raise NonRetryableError(text)
        return _output(spec, result)


def _text(result: CallToolResult) -> str:
    return "\n\n".join(block.text for block in result.content if isinstance(block, TextContent))


def _output(spec: ToolSpec, result: CallToolResult) -> JsonObject:
    if spec.output_mode == "text":
        return {
            "text": _text(result),
            "content": [
                block.model_dump(mode="json", by_alias=True, exclude_none=True)
                for block in result.content
            ],
        }
    structured = result.structured_content
    if spec.output_mode == "wrapped":
        return {RESULT_FIELD: structured}
    if not isinstance(structured, dict):
        raise NonRetryableError(
            f"{spec.tool} declares an object outputSchema but returned "
            f"{'no structured content' if structured is None else type(structured).__name__}"
        )
    return dict(structured)
