"""The ``orra`` command starts without importing what it does not use (issue 17 item 5).

Checked on ``sys.modules`` in a fresh interpreter, not on time, so the result does not
depend on how loaded the machine is.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("nats", "httpx", "litestar", "orra_events.bus", "orra_planner", "mcp")
"""Modules of the broker, the HTTP client, the servers and the planner: none is needed to
build the command tree or print the help. (structlog is: the app's callback configures it
before any subcommand runs, so that library logs stay quiet.)"""

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


def _heavy(loaded: set[str]) -> list[str]:
    return sorted(m for m in loaded if any(m == h or m.startswith(h + ".") for h in HEAVY))


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
