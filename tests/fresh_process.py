"""Run Python code in a fresh interpreter and read back the result it prints.

Tracing tests need one: a process can set OpenTelemetry's tracer provider only once.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run_for_result(args: list[str], **env: str) -> dict[str, object]:
    """Run ``python *args`` (no inherited ``OTEL_*`` but ``env``); return its ``RESULT`` JSON."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    full_env.update(env)
    done = subprocess.run(
        [sys.executable, *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=full_env,
        cwd=REPO,
    )
    assert done.returncode == 0, done.stderr
    line = next(x for x in done.stdout.splitlines() if x.startswith("RESULT "))
    return json.loads(line.removeprefix("RESULT "))  # type: ignore[no-any-return]
