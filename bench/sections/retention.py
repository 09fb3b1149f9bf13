"""Retention: the broker's memory and disk per completed orchestration, with and without it.

Two stacks in turn (a fresh nats-server each; planner, dispatcher, instant example
services, gateway, notifier), each running the seed orchestration through the planner up to
the same checkpoints: first with the event log's retention off (``ORRA_RETENTION_MAX_AGE_S``
and ``ORRA_RETENTION_MAX_BYTES`` 0), then with a short maximum age so that the steady state
shows within the run. At each checkpoint: nats-server's resident memory, the store's size
on disk, and each stream's messages, bytes and distinct subjects; a last sample after the
stack stayed idle longer than the duplicate window (whose entries then expire).

Then where nats-server's memory goes, measured on isolated servers: the same N synthetic
orchestrations (:mod:`bench.synth`, 11 events each) written with their ``Nats-Msg-Id``
(what Orra does), without it (no duplicate-window entries), and on 11 subjects in all
instead of one per event type and orchestration (no per-subject index), and the SDK's
task records (4 keys per orchestration in a key-value bucket).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil  # type: ignore[import-untyped]

from bench.procs import ManagedProcess, Stack, gateway_process
from bench.synth import orchestration_events
from bench.workload import Driver, OrchestrationFailedError
from orra_events import Bus, Topology, encode, new_orchestration_id
from orra_events.embedded import EmbeddedNats, free_port

if TYPE_CHECKING:
    from collections.abc import Awaitable

    from nats.js.api import PubAck

    from bench.config import Config
    from bench.sections import Result

__all__ = ["run_retention"]

_MB = 2**20


def _profiled_nats(store: Path) -> tuple[EmbeddedNats, int]:
    """A nats-server with Go's profiling endpoint on a free port (for its live heap)."""
    port = free_port()
    return EmbeddedNats(store, extra_args=["--profile", str(port)]), port


def _heap_mb(port: int) -> float:
    """nats-server's live heap after a garbage collection (Go's ``HeapAlloc``).

    Resident memory says little about what a Go process still holds: freed memory is
    returned to the system lazily and reused first. The heap profile's statistics, read
    right after a forced collection, do.
    """
    url = f"http://127.0.0.1:{port}/debug/pprof/heap?debug=1&gc=1"
    with urllib.request.urlopen(url, timeout=30) as answer:
        text = answer.read().decode()
    match = re.search(r"^# HeapAlloc = (\d+)$", text, flags=re.MULTILINE)
    if match is None:
        raise RuntimeError("nats-server's heap profile has no HeapAlloc line")
    return int(match.group(1)) / _MB


def _disk_mb(path: Path) -> float:
    """Space the files under ``path`` take on disk."""
    total = 0
    for file in path.rglob("*"):
        with contextlib.suppress(OSError):
            if file.is_file():
                total += file.stat().st_blocks * 512
    return total / _MB


async def _streams(bus: Bus) -> dict[str, dict[str, int]]:
    """Messages, bytes and distinct subjects of every stream of the namespace."""
    prefix = f"{bus.topology.namespace.upper()}_" if bus.topology.namespace else ""
    out: dict[str, dict[str, int]] = {}
    for info in await bus.js.streams_info():
        name = str(info.config.name)
        if not name.startswith(prefix) and not name.startswith(f"KV_{prefix}"):
            continue
        reply = await bus.nc.request(f"$JS.API.STREAM.INFO.{name}", b"", timeout=10)
        state = json.loads(reply.data).get("state", {})
        out[name.replace(prefix, "", 1)] = {
            "messages": int(state.get("messages", 0)),
            "bytes": int(state.get("bytes", 0)),
            "subjects": int(state.get("num_subjects", 0)),
        }
    return out


async def _run_count(driver: Driver, count: int, concurrency: int) -> int:
    remaining, failed = count, 0

    async def worker() -> None:
        nonlocal remaining, failed
        while remaining > 0:
            remaining -= 1
            try:
                await driver.submit_action(timeout_s=120)
            except OrchestrationFailedError:
                failed += 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return failed


def _removals(gateway: ManagedProcess) -> dict[str, Any]:
    """What the gateway's retention log lines say: passes that removed, events, last hold."""
    out: dict[str, Any] = {"passes": 0, "removed": 0, "expired": 0, "held_by": None}
    if gateway.log_path is None or not gateway.log_path.exists():
        return out
    for raw in gateway.log_path.read_bytes().splitlines():
        with contextlib.suppress(ValueError):
            line = json.loads(raw)
            if line.get("event") == "events removed by retention":
                out["passes"] += 1
                out["removed"] += int(line.get("removed", 0))
                out["expired"] += int(line.get("orchestrations", 0))
                out["held_by"] = line.get("held_by")
    return out


async def _variant(cfg: Config, name: str, env: dict[str, str]) -> dict[str, Any]:
    """One stack, the seed orchestration up to every checkpoint."""
    with tempfile.TemporaryDirectory(prefix="orra-bench-retention-") as tmp:
        nats, port = _profiled_nats(Path(tmp) / "store")
        nats.start()
        try:
            return await _variant_on(cfg, name, env, nats, port)
        finally:
            nats.stop()


async def _variant_on(
    cfg: Config, name: str, env: dict[str, str], nats: EmbeddedNats, port: int
) -> dict[str, Any]:
    with Stack(nats=nats) as stack:
        gateway = gateway_process()
        gateway.env.update(env)
        stack.start(
            ManagedProcess("planner", "orra_planner"),
            ManagedProcess("dispatcher", "orra_dispatcher"),
            ManagedProcess("examples", "orra_examples"),
            gateway,
            ManagedProcess("notifier", "orra_notifier"),
        )
        driver = await Driver.connect(stack.url, stack.namespace)
        store = stack.nats.store_dir
        nats_pid = stack.nats.pid
        assert nats_pid is not None
        try:
            await asyncio.sleep(1.0)
            idle = psutil.Process(nats_pid).memory_info().rss / _MB
            idle_heap = _heap_mb(port)
            checkpoints: list[dict[str, Any]] = []
            done, t0 = 0, time.perf_counter()
            targets = [(t, 0.0) for t in cfg.retention_completed]
            if cfg.retention_idle_s > 0 and targets:
                targets.append((targets[-1][0], cfg.retention_idle_s))
            for target, idle_s in targets:
                failed = await _run_count(driver, target - done, cfg.concurrency)
                done = target
                stack.alive_check()
                await asyncio.sleep(idle_s or cfg.retention_settle_s)
                checkpoints.append(
                    {
                        "completed": target,
                        "idle_s": idle_s,
                        "failed": failed,
                        "elapsed_s": time.perf_counter() - t0,
                        "nats_rss_mb": psutil.Process(nats_pid).memory_info().rss / _MB,
                        "nats_heap_mb": _heap_mb(port),
                        "gateway_rss_mb": psutil.Process(gateway.pid).memory_info().rss / _MB,
                        "disk_mb": _disk_mb(store),
                        "streams": await _streams(driver.bus),
                        "retention": _removals(gateway),
                    }
                )
        finally:
            await driver.close()
    return {
        "name": name,
        "env": env,
        "idle_nats_mb": idle,
        "idle_nats_heap_mb": idle_heap,
        "checkpoints": checkpoints,
    }


async def _write(bus: Bus, n: int, *, ids: bool, distinct: bool) -> None:
    topo = bus.topology
    pending: list[Awaitable[PubAck]] = []
    at = time.time()
    for _ in range(n):
        for event in orchestration_events(new_orchestration_id(), at):
            subject = topo.subject_for(event)
            if not distinct:
                subject = subject.rsplit(".", 1)[0] + ".all"
            headers = {"Nats-Msg-Id": event.event_id} if ids else None
            pending.append(await bus.js.publish_async(subject, encode(event), headers=headers))
        if len(pending) >= 5000:
            await asyncio.gather(*pending)
            pending.clear()
    await asyncio.gather(*pending)


async def _write_results(bus: Bus, n: int) -> None:
    kv = await bus.kv("sdk_results")
    prefix: str = kv._pre
    pending: list[Awaitable[PubAck]] = []
    record = b'{"state":"done","result":{"paymentStatus":"confirmed"},"at":1.0}'
    for _ in range(n):
        orchestration = new_orchestration_id()
        for task in ("payment", "inventory", "delivery", "notify"):
            key = f"{prefix}{orchestration}_{task}"
            pending.append(await bus.js.publish_async(key, record))
        if len(pending) >= 5000:
            await asyncio.gather(*pending)
            pending.clear()
    await asyncio.gather(*pending)


async def _isolated(kind: str, n: int) -> dict[str, float]:
    """nats-server's memory growth for ``n`` synthetic orchestrations of one kind."""
    with tempfile.TemporaryDirectory(prefix="orra-bench-attr-") as store:
        server, port = _profiled_nats(Path(store) / "store")
        server.start()
        out: dict[str, float] = {}
        try:
            topo = Topology(namespace="attr")
            bus = await Bus.connect(server.url, topo, name="orra-bench-attribution")
            try:
                if kind != "results":
                    await bus.ensure_stream(topo.stream_configs()[0])
                assert server.pid is not None
                proc = psutil.Process(server.pid)
                before, heap_before = proc.memory_info().rss / _MB, _heap_mb(port)
                if kind == "results":
                    await _write_results(bus, n)
                else:
                    await _write(bus, n, ids=kind == "events", distinct=kind != "few_subjects")
                await asyncio.sleep(2.0)
                out["rss_mb"] = proc.memory_info().rss / _MB - before
                out["heap_mb"] = _heap_mb(port) - heap_before
                out["disk_mb"] = _disk_mb(Path(store) / "store")
                if kind == "no_ids":
                    # What the retention's purge gives back.
                    await bus.js.purge_stream(topo.events_stream)
                    await asyncio.sleep(2.0)
                    out["purged_heap_mb"] = _heap_mb(port) - heap_before
                    out["purged_disk_mb"] = _disk_mb(Path(store) / "store")
            finally:
                await bus.close()
        finally:
            server.stop()
    return out


def run_retention(cfg: Config) -> Result:
    """Both stacks, then the attribution of nats-server's memory."""
    off = {"ORRA_RETENTION_MAX_AGE_S": "0", "ORRA_RETENTION_MAX_BYTES": "0"}
    on = {
        "ORRA_RETENTION_MAX_AGE_S": str(cfg.retention_max_age_s),
        "ORRA_RETENTION_MAX_BYTES": "0",
        "ORRA_RETENTION_INTERVAL_S": "5",
    }
    variants = [
        asyncio.run(_variant(cfg, "off", off)),
        asyncio.run(_variant(cfg, "on", on)),
    ]
    attribution: dict[str, Any] = {}
    n = cfg.retention_attribution
    if n:
        for kind in ("events", "no_ids", "few_subjects", "results"):
            attribution[kind] = asyncio.run(_isolated(kind, n))
    return {
        "status": "ok",
        "notes": [],
        "max_age_s": cfg.retention_max_age_s,
        "concurrency": cfg.concurrency,
        "variants": variants,
        "attribution_n": n,
        "attribution": attribution,
    }
