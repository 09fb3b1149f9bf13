"""The report's retention section and ``--splice`` (no benchmark run: results are given)."""

from __future__ import annotations

from typing import Any

from bench.report import splice

EXISTING = """\
# Orra benchmarks

## 6. Memory (resident set size)

old memory text

## 7. Profile of the hot path (py-spy, at saturation)

profile text

## Why targets are missed, and what would close them

- why text
"""


def _checkpoint(
    completed: int, events: int, heap: float, removed: int, idle_s: float = 0.0
) -> dict[str, Any]:
    return {
        "completed": completed,
        "idle_s": idle_s,
        "nats_rss_mb": heap + 40,
        "nats_heap_mb": heap,
        "disk_mb": events / 1000,
        "streams": {
            "ORRA_EVENTS": {"messages": events, "bytes": events * 600, "subjects": events // 2},
            "KV_orra_sdk_results": {
                "messages": completed * 4,
                "bytes": 1,
                "subjects": completed * 4,
            },
        },
        "retention": {"removed": removed},
    }


def _results() -> dict[str, Any]:
    variants = [
        {
            "name": "off",
            "env": {"ORRA_RETENTION_MAX_AGE_S": "0"},
            "idle_nats_mb": 20.0,
            "idle_nats_heap_mb": 2.0,
            "checkpoints": [
                _checkpoint(50_000, 600_000, 300.0, 0),
                _checkpoint(50_000, 600_000, 150.0, 0, idle_s=660.0),
            ],
        },
        {
            "name": "on",
            "env": {"ORRA_RETENTION_MAX_AGE_S": "30"},
            "idle_nats_mb": 20.0,
            "idle_nats_heap_mb": 2.0,
            "checkpoints": [
                _checkpoint(50_000, 30_000, 200.0, 570_000),
                _checkpoint(50_000, 0, 60.0, 600_000, idle_s=660.0),
            ],
        },
    ]
    attribution = {
        "events": {"rss_mb": 210.0, "heap_mb": 200.0, "disk_mb": 290.0},
        "no_ids": {
            "rss_mb": 110.0,
            "heap_mb": 100.0,
            "disk_mb": 260.0,
            "purged_heap_mb": 1.0,
            "purged_disk_mb": 0.5,
        },
        "few_subjects": {"rss_mb": 15.0, "heap_mb": 10.0, "disk_mb": 250.0},
        "results": {"rss_mb": 75.0, "heap_mb": 70.0, "disk_mb": 28.0},
    }
    section = {
        "status": "ok",
        "notes": [],
        "max_age_s": 30.0,
        "concurrency": 200,
        "variants": variants,
        "attribution_n": 50_000,
        "attribution": attribution,
    }
    return {"started": "2026-12-03 12:00 UTC", "sections": {"retention": section}}


def test_splice_adds_the_retention_section_before_the_analysis_and_keeps_the_rest() -> None:
    report = splice(EXISTING, _results())
    assert report.index("## 7. Profile") < report.index("## 10. Retention")
    assert report.index("## 10. Retention") < report.index("## Why targets")
    assert "old memory text" in report
    assert "profile text" in report
    assert "`python -m bench --only retention --splice`" in report
    # figures scaled to 100,000 orchestrations
    assert "+596 MB live heap" in report  # (300 - 2) * 2
    assert "the duplicate window's message ids ≈ 200 MB of heap" in report
    assert "the per-subject index ≈ 180 MB" in report
    assert "leaves 2 MB of heap and 1 MB on disk" in report
    assert "| 50,000, then 11 min idle | on | 60 MB |" in report
    assert "holds 150 MB of live heap without retention and 60 MB with it" in report


def test_splice_replaces_a_section_that_is_there() -> None:
    once = splice(EXISTING, _results())
    twice = splice(once, _results())
    assert twice == once
    assert twice.count("## 10. Retention") == 1


def _console(median_ms: float) -> dict[str, Any]:
    def agg(ms: float) -> dict[str, Any]:
        return {"median": ms, "min": ms - 10, "max": ms + 10, "runs": 3}

    pages = ("list", "detail_newest", "detail_middle", "detail_oldest")
    return {
        "started": "2026-12-03 17:08 UTC",
        "sections": {
            "console": {
                "status": "ok",
                "notes": ["a note"],
                "orchestrations": 100_000,
                "runs": 3,
                "log": {"events": 1_100_000, "bytes": 600 * 2**20, "write_s": 40.0},
                "index_s": 95.0,
                "api_ms": {page: agg(12.0) for page in pages},
                "page_ms": {page: agg(median_ms) for page in pages},
                "target_ms": 300.0,
                "met": median_ms < 300,
            }
        },
    }


def test_the_console_section_is_spliced_with_each_page_and_the_verdict() -> None:
    report = splice(EXISTING, _console(180.0))
    assert report.index("## 7. Profile") < report.index("## Console")
    assert report.index("## Console") < report.index("## Why targets")
    assert "100,000 completed orchestrations (1,100,000 events, 600 MB" in report
    assert "| Orchestrations list (`/ui/orchestrations`) | 180 ms (170\u2013190) |" in report
    assert "| Detail page, oldest orchestration | 180 ms (170\u2013190) |" in report
    assert "`GET /orchestrations/{id}`: 12 ms (2\u201322)" in report
    assert "Target met." in report
    assert "* a note" in report
    missed = splice(report, _console(450.0))
    assert missed.count("## Console") == 1
    assert "Target **missed**" in missed


def _agg(value: float) -> dict[str, Any]:
    return {"median": value, "min": value - 1, "max": value + 1, "runs": 3}


def test_the_publisher_and_tracing_sections_are_spliced_with_their_figures() -> None:
    publisher = {
        "status": "ok",
        "notes": [],
        "messages": 20_000,
        "rounds": 3,
        "window": 256,
        "latency_us": {
            "nats_py": {"p50": 400.0, "p99": 900.0},
            "orra": {"p50": 200.0, "p99": 300.0},
        },
        "msgs_per_s": {"nats_py": _agg(3_000.0), "orra": _agg(9_000.0)},
    }
    tracing = {
        "status": "ok",
        "notes": [],
        "rounds": 3,
        "off": {"p50_ms": _agg(5.0), "orch_per_s": _agg(800.0)},
        "on": {"p50_ms": _agg(6.0), "orch_per_s": _agg(700.0)},
        "exported": {"requests": 42, "bytes": 10_240},
    }
    started = "2026-12-03 18:30 UTC"
    report = splice(
        EXISTING,
        {"started": started, "sections": {"publisher": publisher, "tracing": tracing}},
    )
    assert "| one at a time, p50 | 400 µs | 200 µs | 2.00\u00d7 |" in report
    pipelined = "| pipelined, messages/s | 3,000 (2,999\u20133,001) | 9,000 (8,999\u20139,001) |"
    assert f"{pipelined} 3.00\u00d7 |" in report
    assert "it received 42 export requests, 10 KiB" in report
    assert "| off | 5.0 ms (4.0\u20136.0) | 800 orch/s (799\u2013801) |" in report
    assert "| on, OTLP exporter | 6.0 ms (5.0\u20137.0) | 700 orch/s (699\u2013701) |" in report
