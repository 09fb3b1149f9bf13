"""The cost of tracing: the bus path with OpenTelemetry off, and on with an OTLP exporter.

Every process of a stack reads the standard ``OTEL_*`` variables (``orra_events.telemetry``):
off unless an exporter is configured. This section runs the overhead and throughput
sections (``--quick`` sizes) as child runs of the harness, alternately with tracing off
and with ``OTEL_TRACES_EXPORTER=otlp`` pointed at a local OTLP/HTTP sink that this section
serves (it answers like a collector and counts what it receives), so that both see the
same machine load.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.procs import REPO
from bench.stats import Agg

if TYPE_CHECKING:
    from bench.config import Config

__all__ = ["run_tracing"]

Result = dict[str, Any]


class _Sink(ThreadingHTTPServer):
    requests = 0
    received_bytes = 0


class _Handler(BaseHTTPRequestHandler):
    server: _Sink

    def log_message(self, *args: Any) -> None:
        del args

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        self.server.requests += 1
        self.server.received_bytes += len(body)
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()


def _child_run(env: dict[str, str], out: Path) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "bench", "--quick", "--only", "overhead", "--only"]
    cmd += ["throughput", "--out", str(out.with_suffix(".md")), "--json", str(out)]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"child run failed: {proc.stderr[-2000:]}")
    sections = json.loads(out.read_text())["sections"]
    return {
        "p50_ms": sections["overhead"]["with_planner"]["p50_ms"]["median"],
        "orch_per_s": sections["throughput"]["with_planner"]["orch_per_s"]["median"],
    }


def run_tracing(cfg: Config) -> Result:
    """Alternate child runs with tracing off and on (``cfg.tracing_rounds`` each)."""
    sink = _Sink(("127.0.0.1", 0), _Handler)
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    endpoint = f"http://127.0.0.1:{sink.server_address[1]}/v1/traces"
    base = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    modes = {
        "off": base,
        "on": {
            **base,
            "OTEL_TRACES_EXPORTER": "otlp",
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf",
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": endpoint,
        },
    }
    runs: dict[str, list[dict[str, Any]]] = {"off": [], "on": []}
    try:
        with tempfile.TemporaryDirectory(prefix="orra-bench-tracing-") as tmp:
            for r in range(cfg.tracing_rounds):
                for mode in ("off", "on") if r % 2 == 0 else ("on", "off"):
                    out = Path(tmp) / f"{mode}-{r}.json"
                    runs[mode].append(_child_run(modes[mode], out))
    finally:
        sink.shutdown()
        sink.server_close()
    result: Result = {"status": "ok", "notes": [], "rounds": cfg.tracing_rounds}
    for mode, values in runs.items():
        result[mode] = {
            "p50_ms": Agg.dict_of(v["p50_ms"] for v in values),
            "orch_per_s": Agg.dict_of(v["orch_per_s"] for v in values),
        }
    result["exported"] = {"requests": sink.requests, "bytes": sink.received_bytes}
    if not sink.requests:
        result["status"] = "partial"
        result["notes"].append("the sink received no span: tracing did not turn on")
    return result
