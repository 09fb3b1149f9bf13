# ruff: noqa: RUF001 - the report uses multiplication signs
"""The front door's breakdown arithmetic and its part of the report."""

from __future__ import annotations

import itertools
from typing import Any

from bench.report import AB_DIR, render
from bench.sections.frontdoor import ANSWER_SEGMENTS, SEGMENTS, segments

from bench import report_frontdoor


def instants(t0: float, gaps_ms: list[float]) -> dict[str, float]:
    """One orchestration's instants, each part lasting ``gaps_ms`` in SEGMENTS' order."""
    names = ["posted"] + [end for _, _, end in SEGMENTS]
    row, t = {}, t0
    for name, gap in zip(names, [0.0, *gaps_ms], strict=True):
        t += gap / 1000.0
        row[name] = t
    row["answered"] = row["planned"] + 0.002
    row["recorded"] = row["verified"] + 0.001
    return row


def test_parts_are_consecutive_and_cover_post_to_webhook() -> None:
    assert SEGMENTS[0][1] == "posted"
    assert SEGMENTS[-1][2] == "verified"
    for (_, _, end), (_, start, _) in itertools.pairwise(SEGMENTS):
        assert end == start
    assert [s[1] for s in ANSWER_SEGMENTS[:2]] == [s[1] for s in SEGMENTS[:2]]
    assert ANSWER_SEGMENTS[-1][2] == "answered"


def test_segments_are_the_percentiles_of_each_part() -> None:
    rows = [instants(1000.0 + i, [1, 2, 3, 0.5, 0.5, 1 + i, 0.1]) for i in range(5)]
    parts = segments(rows, SEGMENTS)
    assert round(parts["gateway"]["p50_ms"], 3) == 1.0
    assert round(parts["dispatch"]["p50_ms"], 3) == 3.0
    assert round(parts["http"]["p50_ms"], 3) == 3.0  # 1, 2, 3, 4, 5 ms
    assert round(parts["http"]["p99_ms"], 3) == 5.0
    answer = segments(rows, ANSWER_SEGMENTS)
    assert round(answer["answer"]["p50_ms"], 3) == 2.0


def agg(value: float) -> dict[str, Any]:
    return {"median": value, "min": value, "max": value, "runs": 1}


def result(keep_p50: float) -> dict[str, Any]:
    rows = [instants(1000.0, [1, 2, 3, 0.5, 0.5, 1, 0.1])]
    breakdown = {
        "samples": 1,
        "webhook": segments(rows, SEGMENTS),
        "answer": segments(rows, ANSWER_SEGMENTS),
        "recorded_after_ms": 1.0,
    }
    path = {"p50_ms": agg(keep_p50), "p99_ms": agg(keep_p50 * 2), "n": agg(40)}
    return {
        "started": "2026-01-01 00:00 UTC",
        "machine": {
            "cpus": 2,
            "cpu_model": "x",
            "memory_gb": 1,
            "os": "Linux",
            "python": "3.11",
            "nats_server": "v2",
            "packages": {},
            "peers": {},
            "load_avg_at_start": [0, 0, 0],
        },
        "config": {"quick": True, "runs": 1},
        "sections": {
            "frontdoor": {
                "status": "ok",
                "notes": [],
                "paths": {
                    "keep_alive": {**path, "runs": [{"connections": 40}]},
                    "closing": {**path, "p50_ms": agg(keep_p50 + 2), "runs": [{"connections": 40}]},
                    "answer": path,
                    "bus": {**path, "p50_ms": agg(3.5)},
                },
                "breakdown": {"keep_alive": breakdown, "closing": breakdown},
                "load": {
                    "orch_per_s": agg(500),
                    "load_p50_ms": agg(200),
                    "load_p99_ms": agg(400),
                    "answer_p50_ms": agg(100),
                    "answer_p99_ms": agg(200),
                    "machine_busy_pct": agg(190),
                    "cpu_pct": {"gateway": agg(50), "driver": agg(10)},
                },
                "concurrency": 200,
                "cpus": 2,
            }
        },
    }


def test_the_report_shows_paths_breakdown_and_closed_loop() -> None:
    text = render(result(8.0))
    assert "## 9. The front door" in text
    assert "| POST → webhook verified, keep-alive receiver | 8.00 ms | 16.00 ms | 40 |" in text
    assert "| POST → webhook verified, closing receiver | 10.00 ms |" in text
    assert "The gateway and the notifier add 4.5 ms (p50) to the bus path's 3.5 ms" in text
    assert "closes its connections the p50 is 10.0 ms (+2.0 ms)" in text
    assert "| dispatch path |" in text
    assert "**8.10 ms**" in text  # the sum of the parts' p50s
    assert "| 500 | 200.0 ms | 400.0 ms | 100.0 ms | 200.0 ms | 190% of 200% |" in text
    assert "| gateway | 50% |" in text
    assert "8.0 ms ❌ missed (1.3×)" in text
    assert "- **Front door, one at a time** (p50 8.0 ms, target 6 ms" in text


def test_a_met_target_is_said_so_and_not_analysed() -> None:
    rows = report_frontdoor.summary_rows(result(5.0))
    assert rows[0][2] == "5.0 ms ✅ met"
    assert report_frontdoor.analysis(result(5.0)) == []


def test_every_hand_measured_ab_is_copied_into_a_full_report() -> None:
    files = sorted(AB_DIR.glob("*.md"))
    assert files, "bench/ab holds the FastStream A/B at least"
    text = render(result(7.0))
    for path in files:
        heading = path.read_text(encoding="utf-8").split("\n", 1)[0]
        assert heading.startswith("## ")
        assert heading in text
    assert text.index(heading) < text.index("## Why targets")
