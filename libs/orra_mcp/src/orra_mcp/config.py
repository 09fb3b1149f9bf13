"""The bridge's configuration: which MCP servers to bridge, read from a YAML, JSON or TOML file.

The file uses the ``mcpServers`` map that desktop agents use, so a server configured for
an agent can be bridged as it is::

    project: default            # optional: the Orra project of the services
    mcpServers:
      github:                   # the server's name: the prefix of its services
        url: https://api.githubcopilot.com/mcp/
        headers:
          Authorization: "Bearer ${GITHUB_TOKEN}"
      files:
        command: npx
        args: ["-y", "@modelcontextprotocol/server-filesystem", "/srv/shared"]
        env: {LOG_LEVEL: warn}
        tools: [read_text_file, list_directory]   # optional: only these tools

A server is a stdio command (``command``, with ``args``, ``env``, ``cwd``) or a
streamable-HTTP URL (``url``, with ``headers``). ``${NAME}`` in any string is replaced by
the environment variable ``NAME`` (``$${`` writes a literal ``${``), so secrets stay out of
the file; an unset variable is an error naming it. Optional per server: ``prefix`` (the
prefix of its services' names, default the server's name), ``tools`` (only these tools are
bridged), ``timeoutS`` (the longest a tool call may take when the task itself has no
timeout, default 300). Every error names the file and the key at fault.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from orra_events import check_name
from orra_events.errors import InvalidName
from orra_mcp.errors import ConfigError

__all__ = ["BridgeConfig", "ServerSpec", "load_config", "parse_config"]

_VARIABLE = re.compile(r"\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_SERVER_KEYS = frozenset(
    {"command", "args", "env", "cwd", "url", "headers", "prefix", "tools", "timeoutS", "type"}
)


@dataclass(frozen=True)
class ServerSpec:
    """One MCP server to bridge.

    Attributes:
        name: Its key in ``mcpServers``.
        prefix: Prefix of its services' names (``<prefix>-<tool>``).
        command: The stdio command, or ``None`` for an HTTP server.
        args: The command's arguments.
        env: Environment variables of the command, on top of the MCP SDK's safe defaults.
        cwd: Working directory of the command.
        url: The streamable-HTTP endpoint, or ``None`` for a stdio server.
        headers: HTTP headers sent with every request (``Authorization`` for instance).
        tools: Only these tools are bridged (``None``: every tool).
        timeout_s: Longest tool call when the task carries no timeout.
    """

    name: str
    prefix: str
    command: str | None = None
    args: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    cwd: str | None = None
    url: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    tools: frozenset[str] | None = None
    timeout_s: float = 300.0

    @property
    def transport(self) -> str:
        """``stdio`` or ``http``."""
        return "stdio" if self.command is not None else "http"

    def describe(self) -> str:
        """Where the server is, for logs (no header values: they hold secrets)."""
        if self.command is not None:
            return " ".join([self.command, *self.args])
        return str(self.url)


@dataclass(frozen=True)
class BridgeConfig:
    """What one bridge process serves.

    Attributes:
        servers: The MCP servers, in file order.
        project: The Orra project the services are registered in.
        source: The file read (for messages).
    """

    servers: tuple[ServerSpec, ...]
    project: str = "default"
    source: str = "<config>"


def load_config(path: str | Path, environ: dict[str, str] | None = None) -> BridgeConfig:
    """Read a bridge configuration file (``.yaml``/``.yml``, ``.json`` or ``.toml``).

    Raises:
        ConfigError: the file cannot be read or parsed, or a value is wrong (the key named).
    """
    source = Path(path)
    try:
        text = source.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read the MCP bridge configuration {source}: {exc}") from None
    suffix = source.suffix.lower()
    try:
        if suffix == ".json":
            document = json.loads(text)
        elif suffix == ".toml":
            document = tomllib.loads(text)
        else:
            document = yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise ConfigError(f"{source}: not valid {suffix.lstrip('.') or 'YAML'}: {exc}") from None
    return parse_config(document, source=str(source), environ=environ)


def parse_config(
    document: object, *, source: str = "<config>", environ: dict[str, str] | None = None
) -> BridgeConfig:
    """A configuration from its parsed document (see the module's documentation).

    Raises:
        ConfigError: a value is wrong; the message names ``source`` and the key.
    """
    env = dict(os.environ if environ is None else environ)
    if not isinstance(document, dict):
        raise ConfigError(f"{source}: the configuration must be a mapping with 'mcpServers'")
    unknown = sorted(set(document) - {"mcpServers", "project"})
    if unknown:
        raise ConfigError(
            f"{source}: unknown key {unknown[0]!r} (expected 'mcpServers' and 'project')"
        )
    project = document.get("project", "default")
    if not isinstance(project, str) or not project:
        raise ConfigError(f"{source}: project must be a non-empty string")
    servers = document.get("mcpServers")
    if not isinstance(servers, dict) or not servers:
        raise ConfigError(
            f"{source}: mcpServers must map each MCP server's name to its command or URL"
        )
    specs = [_server(source, str(name), body, env) for name, body in servers.items()]
    prefixes: dict[str, str] = {}
    for spec in specs:
        if spec.prefix in prefixes:
            raise ConfigError(
                f"{source}: mcpServers.{spec.name} and mcpServers.{prefixes[spec.prefix]} "
                f"have the same prefix {spec.prefix!r}: give one of them another 'prefix'"
            )
        prefixes[spec.prefix] = spec.name
    return BridgeConfig(servers=tuple(specs), project=project, source=source)


def _server(source: str, name: str, body: object, env: dict[str, str]) -> ServerSpec:
    where = f"{source}: mcpServers.{name}"
    if not isinstance(body, dict):
        raise ConfigError(f"{where} must be a mapping (command or url)")
    unknown = sorted(set(body) - _SERVER_KEYS)
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r}")
    fields: dict[str, Any] = _expand(body, env, where)
    prefix = fields.get("prefix", name)
    try:
        check_name("prefix", prefix if isinstance(prefix, str) else "")
    except InvalidName:
        raise ConfigError(
            f"{where}: {prefix!r} cannot prefix service names: use letters, digits, '_' or "
            "'-' (set 'prefix' when the server's name has other characters)"
        ) from None
    command, url = fields.get("command"), fields.get("url")
    if (command is None) == (url is None):
        raise ConfigError(f"{where} needs exactly one of 'command' (stdio) or 'url' (HTTP)")
    tools = fields.get("tools")
    if tools is not None and not (
        isinstance(tools, list) and all(isinstance(t, str) for t in tools)
    ):
        raise ConfigError(f"{where}.tools must be a list of tool names")
    timeout = fields.get("timeoutS", 300)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
        raise ConfigError(f"{where}.timeoutS must be a positive number of seconds")
    common: dict[str, Any] = {
        "name": name,
        "prefix": prefix,
        "tools": frozenset(tools) if tools is not None else None,
        "timeout_s": float(timeout),
    }
    if command is not None:
        if not isinstance(command, str) or not command:
            raise ConfigError(f"{where}.command must be a non-empty string")
        return ServerSpec(
            command=command,
            args=tuple(_strings(fields.get("args", []), f"{where}.args")),
            env=_mapping(fields.get("env", {}), f"{where}.env"),
            cwd=_optional_string(fields.get("cwd"), f"{where}.cwd"),
            **common,
        )
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise ConfigError(f"{where}.url must be an http:// or https:// URL")
    return ServerSpec(
        url=url, headers=_mapping(fields.get("headers", {}), f"{where}.headers"), **common
    )


def _expand(value: Any, env: dict[str, str], where: str) -> Any:
    if isinstance(value, str):

        def replace(match: re.Match[str]) -> str:
            if match.group(0) == "$${":
                return "${"
            variable = match.group(1)
            if variable not in env:
                raise ConfigError(
                    f"{where}: ${{{variable}}} is used but the environment variable "
                    f"{variable} is not set"
                )
            return env[variable]

        return _VARIABLE.sub(replace, value)
    if isinstance(value, list):
        return [_expand(item, env, where) for item in value]
    if isinstance(value, dict):
        return {key: _expand(item, env, f"{where}.{key}") for key, item in value.items()}
    return value


def _strings(value: object, where: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where} must be a list of strings")
    return list(value)


def _mapping(value: object, where: str) -> dict[str, str]:
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise ConfigError(f"{where} must map names to strings")
    return dict(value)


def _optional_string(value: object, where: str) -> str | None:
    if value is not None and not isinstance(value, str):
        raise ConfigError(f"{where} must be a string")
    return value
