"""The tracing section of ``BENCHMARKS.md`` (:mod:`bench.sections.tracing`)."""

from __future__ import annotations

from typing import Any

from bench.stats import Agg

__all__ = ["section"]


def section(ts: dict[str, Any]) -> list[str]:
    """The bus path with tracing off and on (OTLP exporter to a local sink)."""
    out = ["## Tracing: the cost of OpenTelemetry (issue 19)", ""]
    if ts.get("status") not in ("ok", "partial"):
        notes = "; ".join(ts.get("notes") or []) or "no result"
        return [*out, f"Not run: {notes}", ""]
    exported = ts.get("exported") or {}
    out += [
        (
            "The overhead and throughput sections (`--quick` sizes), run by the harness as "
            f"child runs, {ts['rounds']} times each way, alternating: tracing off (no `OTEL_*` "
            "variable) and on (`OTEL_TRACES_EXPORTER=otlp`, OTLP/HTTP to a local sink that "
            f"answers like a collector; it received {exported.get('requests', 0):,} export "
            f"requests, {exported.get('bytes', 0) / 1024:,.0f} KiB). Medians of the runs, with "
            "their range."
        ),
        "",
        "| Tracing | bus p50 | throughput |",
        "|---|---|---|",
    ]
    for mode, label in (("off", "off"), ("on", "on, OTLP exporter")):
        figures = ts.get(mode) or {}
        p50 = Agg(**figures["p50_ms"]) if figures.get("p50_ms") else None
        rate = Agg(**figures["orch_per_s"]) if figures.get("orch_per_s") else None
        out.append(
            f"| {label} | {p50.fmt('ms') if p50 else '—'} | "
            f"{rate.fmt('orch/s', 0) if rate else '—'} |"
        )
    return [*out, "", *[f"* {note}" for note in ts.get("notes") or []], ""]
