"""Where the CLI finds the gateway, its API key and the broker.

Precedence: command-line flags, then environment variables (``ORRA_GATEWAY_URL``,
``ORRA_API_KEY``, ``ORRA_NATS_URL``, ``ORRA_NAMESPACE``), then the config file written by
``orra up`` (``$ORRA_CONFIG``, else ``$XDG_CONFIG_HOME/orra/config.json``, else
``~/.config/orra/config.json``), then the defaults of DESIGN.md.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orra_cli.errors import UsageError

__all__ = [
    "DEFAULT_GATEWAY_URL",
    "DEFAULT_NATS_URL",
    "Settings",
    "cli_config_path",
    "default_data_dir",
    "generate_api_key",
    "load_or_create_api_key",
    "read_json_config",
    "write_json_config",
]

DEFAULT_GATEWAY_URL = "http://127.0.0.1:8005"
DEFAULT_NATS_URL = "nats://127.0.0.1:4222"


def cli_config_path() -> Path:
    """Path of the CLI's config file: ``$ORRA_CONFIG`` or the XDG location."""
    explicit = os.environ.get("ORRA_CONFIG")
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base).expanduser() / "orra" / "config.json"


def default_data_dir() -> Path:
    """Data directory of ``orra up``: ``$ORRA_DATA_DIR`` or ``~/.orra``."""
    return Path(os.environ.get("ORRA_DATA_DIR") or Path.home() / ".orra").expanduser()


def read_json_config(path: Path) -> dict[str, Any]:
    """Read a JSON config file; an absent file is an empty config.

    Raises:
        UsageError: the file exists but is not a JSON object.
    """
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise UsageError(f"cannot read the config file {path}: {exc}") from None
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise UsageError(
            f"the config file {path} is not valid JSON ({exc}): fix or delete it, "
            "then run `orra up` to write it again"
        ) from None
    if not isinstance(data, dict):
        raise UsageError(f"the config file {path} must hold a JSON object: fix or delete it")
    return data


def write_json_config(path: Path, data: dict[str, Any]) -> None:
    """Write a JSON config file readable by its owner only (mode 0600), atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=2, sort_keys=True)
            fh.write("\n")
        tmp.chmod(0o600)
        tmp.replace(path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def _pick(flag: str | None, env: str, config: dict[str, Any], key: str) -> str | None:
    if flag:
        return flag
    value = os.environ.get(env)
    if value:
        return value
    from_file = config.get(key)
    return str(from_file) if from_file else None


@dataclass(frozen=True)
class Settings:
    """Resolved settings of one CLI invocation.

    Attributes:
        gateway_url: Base URL of the gateway, without a trailing slash.
        api_key: Bearer key, or ``None`` when none is configured.
        nats_url: Broker URL for live following and logs.
        namespace: Subject namespace (empty in production).
        config_path: The config file consulted.
    """

    gateway_url: str
    api_key: str | None
    nats_url: str
    namespace: str
    config_path: Path

    @classmethod
    def resolve(cls, *, gateway_url: str | None = None, api_key: str | None = None) -> Settings:
        """Resolve the settings: flags, then environment, then config file, then defaults."""
        path = cli_config_path()
        config = read_json_config(path)
        url = _pick(gateway_url, "ORRA_GATEWAY_URL", config, "gatewayUrl") or DEFAULT_GATEWAY_URL
        return cls(
            gateway_url=url.rstrip("/"),
            api_key=_pick(api_key, "ORRA_API_KEY", config, "apiKey"),
            nats_url=_pick(None, "ORRA_NATS_URL", config, "natsUrl") or DEFAULT_NATS_URL,
            namespace=_pick(None, "ORRA_NAMESPACE", config, "namespace") or "",
            config_path=path,
        )

    def require_api_key(self) -> str:
        """The API key.

        Raises:
            UsageError: none is configured; says how to get one.
        """
        if not self.api_key:
            raise UsageError(
                "no API key configured: start the local stack with `orra up` (it writes one to "
                f"{self.config_path}), or set ORRA_API_KEY, or pass --api-key"
            )
        return self.api_key


def generate_api_key() -> str:
    """A new local API key: ``orra_`` and 32 random bytes, URL-safe."""
    import secrets  # here: only `orra up` makes a key

    return "orra_" + secrets.token_urlsafe(32)


def load_or_create_api_key(data_dir: Path) -> str:
    """The API key kept in ``DATA_DIR/config.json``, created on first use."""
    config = read_json_config(data_dir / "config.json")
    key = config.get("apiKey")
    if isinstance(key, str) and key:
        return key
    key = generate_api_key()
    config["apiKey"] = key
    config.setdefault("project", "default")
    write_json_config(data_dir / "config.json", config)
    return key
