"""Recovery: each service's start-up time against an event log of N orchestrations.

For every size a fresh nats-server gets a synthetic log of N completed orchestrations (see
:mod:`bench.synth`), with the durable consumers positioned as if the services had consumed
it. Then each service is started alone, several times, and timed from ``Popen`` to its
``ready`` log line. That time includes the interpreter's start and imports, which a
constant "empty log" row makes visible; the gateway also reports the seconds its read
model rebuild took (``rebuild_s`` in its ready line). The dispatcher's bucket gets one
permanent marker per ended orchestration only when ``ORRA_DISPATCHER_TOMBSTONE_TTL_S`` is
0; with a TTL (the default) the markers of a history older than the TTL have expired.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import TYPE_CHECKING, Any

from bench.procs import (
    ManagedProcess,
    ServiceMissingError,
    ServiceStartError,
    Stack,
    gateway_process,
)
from bench.stats import Agg
from bench.synth import position_consumers, write_log
from orra_events import Bus, Topology

if TYPE_CHECKING:
    from bench.config import Config
    from bench.sections import Result

__all__ = ["run_recovery"]

SERVICES = ("planner", "dispatcher", "gateway", "notifier")
INDEX_CAUGHT_UP = "list index caught up with the event log"
"""The gateway's log line once ``GET /orchestrations`` can answer (its list index is current)."""


def _process(name: str) -> ManagedProcess:
    proc = gateway_process() if name == "gateway" else ManagedProcess(name, f"orra_{name}")
    proc.ready_timeout_s = 300.0
    return proc


async def _prepare(url: str, namespace: str, n: int) -> dict[str, Any]:
    bus = await Bus.connect(url, Topology(namespace=namespace), name="orra-bench-synth")
    try:
        await bus.ensure_streams()
        bucket = None
        with contextlib.suppress(ImportError):
            from orra_dispatcher.settings import DispatcherSettings
            from orra_dispatcher.store import BUCKET

            # Ended orchestrations leave a marker only for the tombstone TTL; the synthetic
            # history is older than that unless markers are kept forever (TTL 0).
            if DispatcherSettings.from_env().tombstone_ttl_s == 0:
                bucket = BUCKET
        report = await write_log(bus, n, dispatcher_bucket=bucket) if n else None
        t0 = time.perf_counter()
        notes = await position_consumers(bus)
        info = await bus.js.stream_info(bus.topology.events_stream)
        return {
            "events": info.state.messages,
            "bytes": info.state.bytes,
            "write_s": report.seconds if report else 0.0,
            "tombstones": report.tombstones if report else 0,
            "position_s": time.perf_counter() - t0,
            "notes": notes,
        }
    finally:
        await bus.close()


def run_recovery(cfg: Config) -> Result:
    """Start-up time of planner, dispatcher, gateway and notifier per log size."""
    sizes = (0, *cfg.recovery_sizes)
    out: Result = {"status": "ok", "notes": [], "sizes": {}}
    missing: set[str] = set()
    for n in sizes:
        with Stack() as stack:
            prep = asyncio.run(_prepare(stack.url, stack.namespace, n))
            out["notes"].extend(f"{n}: {note}" for note in prep.pop("notes"))
            row: dict[str, Any] = {"log": prep}
            runs = cfg.recovery_runs if n < 100_000 else max(1, min(cfg.recovery_runs, 2))
            for name in SERVICES:
                if name in missing:
                    continue
                times: list[float] = []
                rebuild: list[float] = []
                lists: list[float] = []
                for _ in range(runs):
                    proc = _process(name)
                    try:
                        times.append(stack.start(proc)[name])
                    except ServiceMissingError as exc:
                        missing.add(name)
                        out["notes"].append(str(exc))
                        break
                    except ServiceStartError as exc:
                        out["notes"].append(f"{n}: {exc}")
                        out["status"] = "partial"
                        break
                    line = proc.ready_line or {}
                    if isinstance(line.get("rebuild_s"), (int, float)):
                        rebuild.append(float(line["rebuild_s"]))  # type: ignore[arg-type]
                    if name == "gateway":
                        # Ready is not the whole story: lists wait for the list index, which
                        # a first start builds from the log and a restart loads and tops up.
                        seen = proc.wait_event(INDEX_CAUGHT_UP, proc.ready_timeout_s)
                        if seen is not None:
                            lists.append(seen)
                    stack.stop(name)
                if times:
                    row[name] = Agg.dict_of(times)
                if rebuild:
                    row[f"{name}_rebuild_s"] = Agg.dict_of(rebuild)
                if lists:
                    # The first run builds the index; later runs restore the saved one.
                    row[f"{name}_lists_first_s"] = lists[0]
                    if len(lists) > 1:
                        row[f"{name}_lists_s"] = Agg.dict_of(lists[1:])
            out["sizes"][str(n)] = row
    return out
