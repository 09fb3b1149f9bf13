"""Smoke test of the benchmark harness: ``python -m bench --smoke`` runs and writes a report.

No timing is asserted: figures on a shared CI machine say nothing about a change. What is
checked is that the harness starts the stack, runs every quick section to an outcome (a
section may report ``error`` or ``skipped`` with its reason, for example while a service
is missing, but the harness itself must not crash) and writes a well-formed report and
JSON results.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.bench, pytest.mark.timeout(300)]

REPO = Path(__file__).resolve().parents[2]
QUICK_SECTIONS = (
    "overhead",
    "throughput",
    "frontdoor",
    "recovery",
    "makespan",
    "memory",
    "planning",
    "publisher",
)
HEADINGS = (
    "# Orra benchmarks",
    "## Summary against the targets (issue 11)",
    "## Machine",
    "## 1. Control-plane overhead",
    "## 2. Throughput at saturation",
    "## 3. Peers",
    "## 4. Recovery",
    "## 5. Makespan",
    "## 6. Memory",
    "## 8. Planning fidelity (issue 15)",
    "## 9. The front door",
    "## Publisher: `orra_events` against nats-py's JetStream publish",
)


def test_quick_run_writes_a_well_formed_report(tmp_path: Path) -> None:
    out = tmp_path / "BENCHMARKS.md"
    raw = tmp_path / "results.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORRA_")}
    env["PYTHONPATH"] = str(REPO)
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "--smoke", "--out", str(out), "--json", str(raw)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = out.read_text()
    for heading in HEADINGS:
        assert heading in report, f"missing {heading!r} in the report"
    assert "| figure | target | measured" in report
    results = json.loads(raw.read_text())
    assert results["config"]["quick"] is True
    assert results["machine"]["cpus"] >= 1
    for name in QUICK_SECTIONS:
        section = results["sections"][name]
        assert section["status"] in {"ok", "partial", "skipped", "error"}, name
        assert isinstance(section["notes"], list)
        if section["status"] != "ok":
            assert section["notes"], f"{name} is {section['status']} without a reason"
    assert results["sections"]["peers"]["status"] == "skipped"
    assert "--quick" in results["sections"]["peers"]["notes"][0]
    front = results["sections"]["frontdoor"]
    assert front["status"] == "ok", front["notes"]
    for mode in ("keep_alive", "closing"):
        parts = front["breakdown"][mode]["webhook"]
        assert set(parts) == {
            "gateway",
            "planning",
            "dispatch",
            "fanout",
            "pickup",
            "http",
            "receive",
        }
        # One clock for every process: no part of a trip can end before it starts.
        assert all(part["p50_ms"] >= 0 for part in parts.values()), parts
    assert front["load"]["orch_per_s"]["median"] > 0
