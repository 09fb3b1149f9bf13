# ruff: noqa: RUF001 - the report uses typographic dashes and multiplication signs
"""The front door's part of ``BENCHMARKS.md``: its section, its summary rows, its analysis.

Kept apart from :mod:`bench.report` (which renders every other section) so that each module
stays readable; :func:`bench.report.render` calls these.
"""

from __future__ import annotations

from typing import Any

from bench.stats import Agg

__all__ = ["TARGETS", "analysis", "peers_row", "section", "summary_rows"]

TARGETS = {
    "frontdoor_p50_ms": 6.0,
    "frontdoor_p99_ms": 10.0,
    "bus_p50_ms": 4.5,
    "saturation_orch_per_s": 1000.0,
}
"""Issue 23's targets on a 2-core machine (front door with a keep-alive receiver)."""

_FANOUT_SLOTS = 32
"""The notifier's fan-out concurrency: ``ORRA_NOTIFIER_CONCURRENCY``'s default."""

PARTS = (
    ("gateway", "gateway request handling", "request written → `action.submitted` stamped"),
    (
        "planning",
        "waiting for the plan",
        "`action.submitted` → `plan.created` (append, planner pick-up, planning)",
    ),
    (
        "dispatch",
        "dispatch path",
        "`plan.created` → `orchestration.done` (dispatcher, 2 groups of 2 tasks, results)",
    ),
    (
        "fanout",
        "notifier pick-up: fan-out",
        (
            "`orchestration.done` → delivery job made, or the first attempt starts when the "
            "fan-out makes it (store, pull, webhook look-up)"
        ),
    ),
    (
        "pickup",
        "notifier pick-up: delivery",
        (
            "job made → attempt starts (job appended, pulled, outcome look-up); 0 when the "
            "fan-out makes the attempt"
        ),
    ),
    (
        "http",
        "HTTP delivery",
        (
            "attempt starts → request head at the receiver (URL check, secret look-up, "
            "signing, connection, send)"
        ),
    ),
    ("receive", "receiver", "head → body read and signature verified"),
)


def _agg(d: dict[str, Any] | None) -> Agg | None:
    if not d:
        return None
    return Agg(d["median"], d["min"], d["max"], d["runs"])


def _f(d: dict[str, Any] | None, unit: str = "", digits: int = 1) -> str:
    agg = _agg(d)
    return agg.fmt(unit, digits) if agg else "–"


def _ms(part: dict[str, Any] | None, key: str) -> str:
    return f"{part[key]:.2f} ms" if part and part.get(key) is not None else "–"


def _verdict(ok: bool, factor: float) -> str:
    return "✅ met" if ok else f"❌ missed ({factor:.1f}×)"


def summary_rows(results: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """The summary table's rows for issue 23's targets (front door, bus path, saturation)."""
    s = results["sections"]
    rows: list[tuple[str, str, str, str]] = []
    fd = s.get("frontdoor") or {}
    paths = fd.get("paths") or {}
    keep = paths.get("keep_alive") or {}
    closing = _agg((paths.get("closing") or {}).get("p50_ms"))
    bus_here = _agg((paths.get("bus") or {}).get("p50_ms"))
    for key, label, target in (
        ("p50_ms", "Front door p50, POST → signed webhook (keep-alive receiver; issue 23)", 6.0),
        ("p99_ms", "Front door p99 (issue 23)", 10.0),
    ):
        agg = _agg(keep.get(key))
        if agg is None:
            rows.append((label, f"≤ {target:g} ms", "not measured", _why(fd)))
            continue
        why = ""
        if key == "p50_ms":
            parts = []
            if bus_here:
                parts.append(f"bus path on the same stack {bus_here.median:.1f} ms")
            if closing:
                parts.append(f"closing receiver {closing.median:.1f} ms")
            why = "; ".join(parts) + ("; see §9" if parts else "")
        rows.append(
            (
                label,
                f"≤ {target:g} ms",
                f"{agg.fmt('ms')} {_verdict(agg.median <= target, agg.median / target)}",
                why,
            )
        )
    ov = (s.get("overhead") or {}).get("with_planner") or {}
    bus = _agg(ov.get("p50_ms"))
    if bus is not None:
        target = TARGETS["bus_p50_ms"]
        rows.append(
            (
                "Bus path p50, `action.submitted` → `orchestration.done` (issue 23)",
                f"≤ {target:g} ms",
                f"{bus.fmt('ms')} {_verdict(bus.median <= target, bus.median / target)}",
                "",
            )
        )
    tp = _agg(((s.get("throughput") or {}).get("with_planner") or {}).get("orch_per_s"))
    if tp is not None:
        target = TARGETS["saturation_orch_per_s"]
        rows.append(
            (
                "Saturation with the planner (issue 23)",
                f"≥ {target:,.0f} orch/s",
                f"{tp.fmt('orch/s', 0)} "
                + _verdict(tp.median >= target, target / max(tp.median, 1e-9)).replace(
                    "×)", "× short)"
                ),
                "",
            )
        )
    return rows


def _why(section: dict[str, Any]) -> str:
    notes = section.get("notes") or []
    return str(notes[0])[:200] if notes else ""


def peers_row(results: dict[str, Any]) -> str | None:
    """The peers table's row for Orra measured through its front door, as users call it."""
    fd = (results["sections"].get("frontdoor") or {}) if results.get("sections") else {}
    keep = (fd.get("paths") or {}).get("keep_alive") or {}
    load = fd.get("load") or {}
    if not keep.get("p50_ms"):
        return None
    return (
        f"| **Orra, HTTP front door** (POST → signed webhook) | {_f(keep.get('p50_ms'), 'ms')} "
        f"| {_f(keep.get('p99_ms'), 'ms')} | {_f(load.get('orch_per_s'), '', 0)} "
        f"| {_f(load.get('load_p50_ms'), 'ms')} | – | – | as above, plus the delivery outcome "
        "stored before the job is acknowledged |"
    )


def section(fd: dict[str, Any]) -> list[str]:
    """``## 9.``: the front door's tables."""
    lines = ["## 9. The front door: `POST /orchestrations` → signed webhook (issue 23)", ""]
    paths = fd.get("paths") or {}
    if paths:
        lines += _latency(paths)
    breakdown = fd.get("breakdown") or {}
    if breakdown.get("keep_alive", {}).get("samples"):
        lines += _breakdown(breakdown)
    if (fd.get("load") or {}).get("orch_per_s"):
        lines += _load(fd)
    notes = []
    if fd.get("status") not in (None, "ok"):
        notes.append(f"**Status: {fd['status']}.**")
    notes.extend(f"- {n}" for n in fd.get("notes", []))
    return [*lines, *notes, ""]


def _latency(paths: dict[str, Any]) -> list[str]:
    keep, closing = paths.get("keep_alive") or {}, paths.get("closing") or {}
    conns = [r.get("connections") for r in closing.get("runs", [])]
    keep_conns = [r.get("connections") for r in keep.get("runs", [])]
    lines = [
        (
            "A stack of its own (nats-server, planner, dispatcher, the instant example services, "
            "gateway, notifier with `ORRA_ALLOW_PRIVATE_WEBHOOKS=true`), the seed's 2+2 order "
            "action with a `webhook` in the body, no `Idempotency-Key`. The driver is this "
            "process: one HTTP/1.1 keep-alive connection per in-flight orchestration "
            "(`bench/httpclient.py`, a few stream reads per request). The receiver "
            "(`bench/receiver.py`, same process) verifies every Standard Webhooks signature "
            "(HMAC-SHA256 over id, timestamp and body, with the secret read from "
            "`GET /webhooks/secret`) before it answers `204`; *keep-alive* keeps connections "
            "open, *closing* answers `Connection: close` and closes (as Python's `http.server` "
            "does), so the notifier connects anew for every delivery. One at a time = the next "
            "POST after the previous webhook; the modes and the bus path are interleaved run "
            "by run."
        ),
        "",
        "| path (one at a time) | p50 | p99 | per run |",
        "|---|---|---|---|",
        (
            f"| POST → webhook verified, keep-alive receiver | {_f(keep.get('p50_ms'), 'ms', 2)} "
            f"| {_f(keep.get('p99_ms'), 'ms', 2)} | {_f(keep.get('n'), '', 0)} |"
        ),
        (
            f"| POST → webhook verified, closing receiver | {_f(closing.get('p50_ms'), 'ms', 2)} "
            f"| {_f(closing.get('p99_ms'), 'ms', 2)} | {_f(closing.get('n'), '', 0)} |"
        ),
    ]
    answer = paths.get("answer") or {}
    bus = paths.get("bus") or {}
    lines += [
        (
            f"| POST → `201` with the plan (read whole by the client) "
            f"| {_f(answer.get('p50_ms'), 'ms', 2)} | {_f(answer.get('p99_ms'), 'ms', 2)} "
            f"| {_f(answer.get('n'), '', 0)} |"
        ),
        (
            f"| bus path on this stack: `action.submitted` appended → `orchestration.done` "
            f"received | {_f(bus.get('p50_ms'), 'ms', 2)} | {_f(bus.get('p99_ms'), 'ms', 2)} "
            f"| {_f(bus.get('n'), '', 0)} |"
        ),
        "",
    ]
    k, c, b = (_agg(p.get("p50_ms")) for p in (keep, closing, bus))
    if k and b:
        text = (
            f"The gateway and the notifier add {k.median - b.median:.1f} ms (p50) to the bus "
            f"path's {b.median:.1f} ms"
        )
        if c:
            text += (
                f"; with a receiver that closes its connections the p50 is {c.median:.1f} ms "
                f"({c.median - k.median:+.1f} ms)"
            )
        if conns and keep_conns:
            text += (
                f" (connections the notifier opened per run: keep-alive {keep_conns}, "
                f"closing {conns})"
            )
        lines += [text + ".", ""]
    return lines


def _breakdown(breakdown: dict[str, Any]) -> list[str]:
    keep = breakdown["keep_alive"]
    closing = breakdown.get("closing") or {}
    lines = [
        "### Where the time goes",
        "",
        (
            "Instants on one clock: every process stamps its events with `time.time()` (the "
            "event's `at`), and the driver and the receiver run on the same machine and stamp "
            "the request, the answer and the delivery with the same call, so differences need "
            "no offset. The delivery job's `created_at` comes from a core subscription to "
            "`notifier.delivery.*`, the attempt's start from `webhook.delivered`'s "
            "`attempt_log`. p50 and p99 of each part over every one-at-a-time orchestration "
            f"({keep['samples']} keep-alive, {closing.get('samples', 0)} closing); medians of "
            "parts do not add up exactly to the median of the whole."
        ),
        "",
        ("| part | from → to | keep-alive p50 | p99 | closing p50 | p99 | closed loop p50 | p99 |"),
        "|---|---|---|---|---|---|---|---|",
    ]
    load = breakdown.get("at_load") or {}
    columns = [
        keep.get("webhook") or {},
        closing.get("webhook") or {},
        load.get("webhook") or {},
    ]
    for key, label, span in PARTS:
        cells = " | ".join(
            f"{_ms(c.get(key), 'p50_ms')} | {_ms(c.get(key), 'p99_ms')}" for c in columns
        )
        lines.append(f"| {label} | {span} | {cells} |")
    totals = []
    for c in columns:
        totals += [f"**{sum(v['p50_ms'] for v in c.values()):.2f} ms**" if c else "–", ""]
    lines.append(f"| **sum of the p50s** | POST → webhook verified | {' | '.join(totals)} |")
    if load.get("samples"):
        lines += [
            "",
            (
                f"Closed loop: {load['samples']} orchestrations taken evenly over the closed-loop "
                "runs (keep-alive receiver), the same instants."
            ),
        ]
    answer = (keep.get("answer") or {}).get("answer")
    lines += [
        "",
        (
            f"POST → `201`: the same two first parts, then `plan.created` → the answer read by "
            f"the client (the gateway's read model folds `plan.created`, the handler answers): "
            f"p50 {_ms(answer, 'p50_ms')}, p99 {_ms(answer, 'p99_ms')}. After the receiver's "
            f"`204`, the notifier stores the outcome and appends `webhook.delivered` "
            f"{_fmt_opt(keep.get('recorded_after_ms'))} later (p50; off the user's path)."
        ),
        "",
    ]
    return lines


def _fmt_opt(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f} ms"


def _load(fd: dict[str, Any]) -> list[str]:
    load = fd["load"]
    lines = [
        "### Closed loop",
        "",
        (
            f"{fd.get('concurrency')} orchestrations in flight, each on its own keep-alive "
            "connection to the gateway; keep-alive receiver; the driver and the receiver "
            "share this process (“driver” below). CPU is % of one core over the run."
        ),
        "",
        (
            "| orchestrations/s | POST → webhook p50 at load | p99 at load "
            "| POST → `201` p50 at load | p99 at load | whole machine busy |"
        ),
        "|---|---|---|---|---|---|",
        (
            f"| {_f(load.get('orch_per_s'), '', 0)} | {_f(load.get('load_p50_ms'), 'ms')} "
            f"| {_f(load.get('load_p99_ms'), 'ms')} | {_f(load.get('answer_p50_ms'), 'ms')} "
            f"| {_f(load.get('answer_p99_ms'), 'ms')} "
            f"| {_f(load.get('machine_busy_pct'), '%', 0)} of {fd.get('cpus', 2)}00% |"
        ),
        "",
        "| process | CPU |",
        "|---|---|",
    ]
    for name, value in sorted((load.get("cpu_pct") or {}).items()):
        lines.append(f"| {name} | {_f(value, '%', 0)} |")
    backlog = load.get("backlog") or {}
    if backlog:
        lines += [
            "",
            (
                "The notifier's two durable consumers during the closed loop (consumer info "
                "every 0.5 s): *waiting* = stored, not yet handed to the notifier; *handed "
                "out* = fetched by the notifier, not yet acknowledged (its handlers at work or "
                "queued in it). Median of each run's median, and the largest sample."
            ),
            "",
            "| consumer | waiting p50 | waiting max | handed out p50 | handed out max |",
            "|---|---|---|---|---|",
        ]
        names = {
            "fanout": "`notifier` (terminal events → jobs)",
            "delivery": "`notifier_delivery` (jobs → HTTP)",
        }
        for key, m in backlog.items():
            lines.append(
                f"| {names.get(key, key)} | {_f(m.get('waiting_p50'), '', 0)} "
                f"| {_f(m.get('waiting_max'), '', 0)} | {_f(m.get('unacked_p50'), '', 0)} "
                f"| {_f(m.get('unacked_max'), '', 0)} |"
            )
    return [*lines, ""]


def analysis(results: dict[str, Any]) -> list[str]:
    """The front door's paragraphs of “Why targets are missed”, when a target is missed."""
    fd = results["sections"].get("frontdoor") or {}
    keep = _agg(((fd.get("paths") or {}).get("keep_alive") or {}).get("p50_ms"))
    parts = ((fd.get("breakdown") or {}).get("keep_alive") or {}).get("webhook") or {}
    if keep is None or not parts or keep.median <= TARGETS["frontdoor_p50_ms"]:
        return []
    ranked = sorted(parts.items(), key=lambda kv: -kv[1]["p50_ms"])
    labels = {key: label for key, label, _ in PARTS}
    listed = ", ".join(f"{labels.get(k, k)} {v['p50_ms']:.1f} ms" for k, v in ranked)
    notifier = sum(parts[k]["p50_ms"] for k in ("fanout", "pickup", "http") if k in parts)
    core = sum(parts[k]["p50_ms"] for k in ("planning", "dispatch") if k in parts)
    out = [
        (
            f"- **Front door, one at a time** (p50 {keep.median:.1f} ms, target 6 ms; issue 23, "
            f"item 2): by part, {listed}. The notifier's hops take {notifier:.1f} ms, against "
            f"{core:.1f} ms for planning and dispatch together: it pulls the terminal event, "
            "reads the delivery's outcome from KV (none yet), signs with the secret it keeps "
            "in memory and posts the first attempt itself on a pooled connection; a job is "
            "written to `ORRA_WEBHOOKS` only for a retry."
        )
    ]
    load = fd.get("load") or {}
    rate = _agg(load.get("orch_per_s"))
    fanout = (load.get("backlog") or {}).get("fanout") or {}
    waiting, busy = _agg(fanout.get("waiting_p50")), _agg(fanout.get("unacked_p50"))
    bus = _agg(
        ((results["sections"].get("throughput") or {}).get("with_planner") or {}).get("orch_per_s")
    )
    if rate and waiting and busy and rate.median > 0:
        text = (
            f"- **Front door, closed loop** ({rate.median:.0f} orchestrations/s"
            + (f" against the bus path's {bus.median:.0f}/s in §2" if bus else "")
            + f"): the queue forms in front of the notifier's fan-out consumer, where "
            f"{waiting.median:.0f} terminal events wait while {busy.median:.0f} of its "
            f"{_FANOUT_SLOTS} slots are busy, so each fan-out holds a slot about "
            f"{1000 * busy.median / rate.median:.0f} ms (Little's law) for the first attempt "
            "(outcome look-up, POST, outcome recorded, `webhook.delivered` appended) and an "
            "ack. The notifier used "
            f"{_f((load.get('cpu_pct') or {}).get('notifier'), '%', 0)} of a core meanwhile "
            "(see the machine's load above): the slots wait on round trips and for a core, "
            f"not on the notifier's own computation. At that holding time {_FANOUT_SLOTS} "
            f"slots pass about {_FANOUT_SLOTS * rate.median / busy.median:.0f} terminal "
            "events/s: this stage caps the "
            "front door at load."
        )
        out.append(text)
    return out
