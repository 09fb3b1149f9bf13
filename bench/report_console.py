"""The console's part of ``BENCHMARKS.md`` (:mod:`bench.sections.console`)."""

from __future__ import annotations

from typing import Any

from bench.stats import Agg

__all__ = ["section"]

_ROWS = (
    ("list", "Orchestrations list (`/ui/orchestrations`)", "`GET /orchestrations?limit=50`"),
    ("detail_newest", "Detail page, newest orchestration", "`GET /orchestrations/{id}`"),
    ("detail_middle", "Detail page, middle of the log", "`GET /orchestrations/{id}`"),
    ("detail_oldest", "Detail page, oldest orchestration", "`GET /orchestrations/{id}`"),
)


def _ms(d: dict[str, Any] | None) -> str:
    agg = Agg(**d) if d else None
    return agg.fmt("ms", 0) if agg else "—"


def section(cs: dict[str, Any]) -> list[str]:
    """The console section: time to a rendered page in chromium, against a large log."""
    out = ["## Console: time to a rendered page with history (issue 18)", ""]
    if cs.get("status") not in ("ok", "partial"):
        notes = "; ".join(cs.get("notes") or []) or "no result"
        return [*out, f"Not run: {notes}", ""]
    n = cs["orchestrations"]
    log = cs.get("log") or {}
    out += [
        (
            f"A gateway on a synthetic log of {n:,} completed orchestrations "
            f"({log.get('events', 0):,} events, {log.get('bytes', 0) / 2**20:.0f} MB; written in "
            f"{log.get('write_s', 0):.0f} s, list index built {cs.get('index_s') or 0:.1f} s after "
            "start). Debian's chromium (Playwright) opens each page cold "
            f"{cs['runs']} times (a new browser context each: no cache, no session); the figure is "
            "the time from navigation start to the console's `orra:list` / `orra:detail` mark, "
            "set once the page has drawn its data (scripts and API calls included). The API "
            "call alone, over HTTP from Python, for comparison. Target: under "
            f"{cs['target_ms']:.0f} ms."
        ),
        "",
        "| Page | Rendered in chromium | The API call alone |",
        "|---|---|---|",
    ]
    pages = cs.get("page_ms") or {}
    api = cs.get("api_ms") or {}
    for key, label, call in _ROWS:
        if key in pages:
            out.append(f"| {label} | {_ms(pages[key])} | {call}: {_ms(api.get(key))} |")
    out += [
        "",
        "Target met." if cs.get("met") else "Target **missed** (see the medians above).",
        "",
    ]
    out += [f"* {note}" for note in cs.get("notes") or []]
    return [*out, ""]
