"""The publisher A/B: ``orra_events``' pipelined publisher against nats-py's JetStream API.

Orra's hot paths (the dispatcher's steps, the SDK's results) publish through
``Bus.publisher`` (``orra_events._fastpub``), which writes into nats-py's connection
internals. This section shows what that buys, in one run on one nats-server, so that a
nats-py upgrade (or a fix of nats.py issue 985) can be weighed against it:

* one at a time: ``await js.publish(...)`` against ``await publisher.publish(...)``, each
  waiting for its ack before the next (latency per message);
* pipelined: the same number of messages with a window of messages in flight, through
  ``js.publish_async`` against the publisher's futures (messages per second).

The two alternate, round by round, so that a change of machine load hits both.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.stats import Agg, percentile
from orra_events import Bus, Topology
from orra_events.embedded import EmbeddedNats

if TYPE_CHECKING:
    from bench.config import Config

__all__ = ["run_publisher"]

Result = dict[str, Any]
_PAYLOAD = b'{"type":"task.completed","orchestration_id":"o_bench","output":{"ok":true}}'
_WINDOW = 256


async def _one_at_a_time(bus: Bus, subject: str, n: int, *, fast: bool) -> list[float]:
    times: list[float] = []
    for i in range(n):
        t0 = time.perf_counter()
        if fast:
            (ack,) = await bus.publisher.publish(subject, _PAYLOAD, msg_id=f"s{i}-{t0}")
            if not hasattr(ack, "seq"):
                raise RuntimeError(f"publish failed: {ack!r}")
        else:
            await bus.js.publish(subject, _PAYLOAD, headers={"Nats-Msg-Id": f"s{i}-{t0}"})
        times.append((time.perf_counter() - t0) * 1e6)
    return times


async def _pipelined(bus: Bus, subject: str, n: int, *, fast: bool) -> float:
    t0 = time.perf_counter()
    if fast:
        window: list[asyncio.Future[Any]] = []
        for i in range(n):
            window.append(bus.publisher.publish(subject, _PAYLOAD, msg_id=f"p{i}-{t0}"))
            if len(window) >= _WINDOW:
                await window.pop(0)
        await asyncio.gather(*window)
    else:
        pending: list[asyncio.Future[Any]] = []
        for i in range(n):
            fut = await bus.js.publish_async(
                subject, _PAYLOAD, headers={"Nats-Msg-Id": f"p{i}-{t0}"}
            )
            pending.append(fut)
            if len(pending) >= _WINDOW:
                await pending.pop(0)
        await asyncio.gather(*pending)
    return n / (time.perf_counter() - t0)


async def _measure(url: str, n: int, rounds: int) -> Result:
    topology = Topology(namespace="benchpub")
    bus = await Bus.connect(url, topology, name="bench-publisher")
    try:
        await bus.ensure_streams()
        await bus.publisher.start()
        subject = topology.subject("task.completed", "o_bench")
        latency: dict[str, list[float]] = {"nats_py": [], "orra": []}
        rate: dict[str, list[float]] = {"nats_py": [], "orra": []}
        await _one_at_a_time(bus, subject, 100, fast=True)  # warm both paths
        await _one_at_a_time(bus, subject, 100, fast=False)
        for r in range(rounds):
            order = (False, True) if r % 2 == 0 else (True, False)
            for fast in order:
                key = "orra" if fast else "nats_py"
                latency[key] += await _one_at_a_time(bus, subject, n // 10, fast=fast)
                rate[key].append(await _pipelined(bus, subject, n, fast=fast))
        return {
            "status": "ok",
            "notes": [],
            "messages": n,
            "rounds": rounds,
            "window": _WINDOW,
            "latency_us": {
                k: {"p50": percentile(v, 50), "p99": percentile(v, 99)} for k, v in latency.items()
            },
            "msgs_per_s": {k: Agg.dict_of(v) for k, v in rate.items()},
        }
    finally:
        await bus.close()


def run_publisher(cfg: Config) -> Result:
    """Run the A/B on a nats-server of its own (a temporary store)."""
    store = Path(tempfile.mkdtemp(prefix="orra-bench-pub-"))
    server = EmbeddedNats(store / "data", log_file=store / "nats.log")
    server.start()
    try:
        return asyncio.run(_measure(server.url, cfg.publisher_messages, cfg.publisher_rounds))
    finally:
        server.stop()
        shutil.rmtree(store, ignore_errors=True)
