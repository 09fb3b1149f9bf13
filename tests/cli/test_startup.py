"""The ``orra`` command starts without importing what it does not use (issue 17 item 5).

Checked on ``sys.modules`` in a fresh interpreter, not on time, so the result does not
depend on how loaded the machine is.
"""

from __future__ import annotations

import json
import ssl
import subprocess
import sys

import pytest

HEAVY = (
    "nats",
    "httpx",
    "litestar",
    "uvicorn",
    "orra_events.bus",
    "orra_events.projection",
    "msgspec",
    "orra_planner",
    "openai",
    "mcp",
    "orra_mcp",
    "pydantic",
)
"""Modules of the broker, the HTTP client, the servers, the event codec and read model, the
planner and its LLM client: none is needed to build the command tree or print the help."""

UNUSED = ("structlog", "asyncio", "click", "pygments", "rich.progress", "secrets")
"""Loaded by no command that talks to the gateway (issue 23 item 4): structlog (and the rich
tracebacks it imports) is configured only by the commands that run library code that logs,
asyncio only by those that stream events, ``secrets`` only by ``orra up``; click, pygments
and rich.progress are httpx's own command line, which ``import httpx`` would load."""

_REPORT = "import json, sys; print(json.dumps(sorted(sys.modules)), file=sys.stderr)"


def _loaded(code: str) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-c", f"{code}\n{_REPORT}"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stderr.strip().splitlines()[-1]))


def _heavy(loaded: set[str], names: tuple[str, ...] = HEAVY) -> list[str]:
    return sorted(m for m in loaded if any(m == h or m.startswith(h + ".") for h in names))


def test_importing_the_app_imports_no_broker_http_or_server_library() -> None:
    loaded = _loaded("import orra_cli.app")
    assert "orra_cli.app" in loaded
    assert _heavy(loaded) == []


@pytest.mark.parametrize("argv", [["--help"], ["webhooks", "--help"], ["ps", "--help"]])
def test_help_imports_no_broker_http_or_server_library(argv: list[str]) -> None:
    code = (
        "import sys, contextlib, io\n"
        f"sys.argv = ['orra', *{argv!r}]\n"
        "from orra_cli.__main__ import main\n"
        "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
        "    main()"
    )
    loaded = _loaded(code)
    assert "orra_cli.commands.webhooks" in loaded
    assert _heavy(loaded) == []
    # Typer's rich help does load pygments and rich's tracebacks; nothing else unused.
    assert _heavy(loaded, ("structlog", "asyncio", "click", "secrets")) == []


def test_ps_imports_neither_msgspec_nor_the_projection() -> None:
    """``orra ps`` up to its request: the HTTP client, no event codec (issue 23 item 4)."""
    code = (
        "import sys, contextlib, io, os\n"
        "from orra_events.embedded import free_port\n"
        "os.environ['ORRA_API_KEY'] = 'orra_test'\n"
        "sys.argv = ['orra', 'ps', '--gateway-url', f'http://127.0.0.1:{free_port()}']\n"
        "from orra_cli.__main__ import main\n"
        "with contextlib.redirect_stderr(io.StringIO()), contextlib.suppress(SystemExit):\n"
        "    main()"
    )
    loaded = _loaded(code)
    assert "httpx" in loaded  # it did go as far as the request
    assert sorted(m for m in loaded if m.startswith(("msgspec", "orra_events.projection"))) == []
    assert _heavy(loaded, UNUSED) == []


def test_importing_the_app_imports_no_logging_or_event_loop() -> None:
    """Building the command tree configures no logging and loads no event loop."""
    loaded = _loaded("import orra_cli.app")
    assert _heavy(loaded, ("structlog", "asyncio", "secrets")) == []


def test_a_plain_http_gateway_client_loads_no_ca_bundle() -> None:
    """No TLS to an ``http://`` gateway: the client skips certifi's bundle (~50 ms)."""
    from orra_cli.client import _tls

    context = _tls("http://127.0.0.1:8005")
    assert isinstance(context, ssl.SSLContext)
    # Nothing trusted, and still verifying: a TLS peer would be refused, never trusted.
    assert context.cert_store_stats()["x509_ca"] == 0
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname


@pytest.mark.parametrize(
    ("url", "env"),
    [
        ("https://orra.example.com", {}),
        ("HTTPS://orra.example.com", {}),
        ("http://127.0.0.1:8005", {"HTTPS_PROXY": "https://proxy.example.com:3128"}),
        ("http://127.0.0.1:8005", {"all_proxy": "http://proxy.example.com:3128"}),
    ],
)
def test_a_gateway_client_that_may_speak_tls_verifies_with_the_default_bundle(
    url: str, env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from orra_cli.client import _tls

    for name in ("http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert _tls(url) is True
