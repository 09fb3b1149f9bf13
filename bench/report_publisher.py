# ruff: noqa: RUF001 - the report uses the multiplication sign
"""The publisher A/B's part of ``BENCHMARKS.md`` (:mod:`bench.sections.publisher`)."""

from __future__ import annotations

from typing import Any

from bench.stats import Agg

__all__ = ["section"]


def section(ps: dict[str, Any]) -> list[str]:
    """Orra's pipelined publisher against nats-py's ``js.publish`` / ``publish_async``."""
    out = ["## Publisher: `orra_events` against nats-py's JetStream publish (issue 17)", ""]
    if ps.get("status") not in ("ok", "partial"):
        notes = "; ".join(ps.get("notes") or []) or "no result"
        return [*out, f"Not run: {notes}", ""]
    lat = ps["latency_us"]
    rate = {k: Agg(**v) for k, v in ps["msgs_per_s"].items() if v}
    out += [
        (
            "One nats-server, one stream, the same 80-byte payload with a `Nats-Msg-Id`; the "
            f"two publishers alternate over {ps['rounds']} rounds. One at a time: each publish "
            f"waits for its ack ({ps['messages'] // 10:,} per round each). Pipelined: "
            f"{ps['messages']:,} messages with {ps['window']} in flight. Orra's publisher is "
            "what the dispatcher and the SDK use (`Bus.publisher`); nats-py's `publish_async` "
            "is what it replaces, and cannot be used for compare-and-set writes (a rejected "
            "write never resolves its future: nats.py issue 985)."
        ),
        "",
        "| Path | nats-py | orra_events | orra_events ahead by |",
        "|---|---|---|---|",
    ]
    a, b = lat["nats_py"], lat["orra"]
    out.append(
        f"| one at a time, p50 | {a['p50']:.0f} µs | {b['p50']:.0f} µs | "
        f"{a['p50'] / b['p50']:.2f}× |"
    )
    out.append(
        f"| one at a time, p99 | {a['p99']:.0f} µs | {b['p99']:.0f} µs | "
        f"{a['p99'] / b['p99']:.2f}× |"
    )
    if "nats_py" in rate and "orra" in rate:
        out.append(
            f"| pipelined, messages/s | {rate['nats_py'].fmt('', 0)} | {rate['orra'].fmt('', 0)} | "
            f"{rate['orra'].median / rate['nats_py'].median:.2f}× |"
        )
    return [*out, "", *[f"* {note}" for note in ps.get("notes") or []], ""]
