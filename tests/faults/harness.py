"""The fault suite's machinery: a stack of real processes, a load, a chaos schedule, a log reader.

Everything here talks to real OS processes and a real nats-server. Process starts and
kills run in threads (``asyncio.to_thread``) so that the test's event loop (the load, the
webhook receiver) keeps running while a process restarts.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from orra_events import (
    ActionSubmitted,
    Bus,
    DataField,
    Event,
    Topology,
    decode,
    new_orchestration_id,
)
from orra_events.errors import DecodeError
from tests.e2e.processes import Proc, Processes
from tests.faults.checker import Receipt

NEW_ORDER = "Process new order and arrange optimal delivery"
PAY_AND_STOCK = "Process order payment and update inventory"

MODULES = {
    "planner": "orra_planner",
    "dispatcher": "orra_dispatcher",
    "notifier": "orra_notifier",
    "gateway": "orra_gateway",
    "examples": "orra_examples",
}

FAST = {
    # Short ack waits: a killed process's unacknowledged messages come back within seconds.
    "ORRA_PLANNER_ACK_WAIT_S": "3",
    "ORRA_DISPATCHER_ACK_WAIT_S": "3",
    "ORRA_NOTIFIER_ACK_WAIT_S": "3",
    "ORRA_EXAMPLES_ACK_WAIT_S": "3",
    "ORRA_DISPATCHER_SWEEP_S": "2",
    "ORRA_DISPATCHER_RETRY_BASE_S": "0.1",
    "ORRA_DISPATCHER_RETRY_JITTER": "0",
    "ORRA_DISPATCHER_TASK_TIMEOUT_S": "20",
    "ORRA_NOTIFIER_BACKOFF_BASE_S": "0.2",
    "ORRA_NOTIFIER_BACKOFF_MAX_S": "1",
    "ORRA_NOTIFIER_POLL_S": "0.5",
    "ORRA_ALLOW_PRIVATE_WEBHOOKS": "true",
    "ORRA_EXAMPLES_LATENCY_SCALE": "0.1",
    "ORRA_LOG_LEVEL": "INFO",
}


def fault_env(nats_url: str, namespace: str, tmp_path: Path, **extra: str) -> dict[str, str]:
    """Environment of every process of a fault test."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORRA_")}
    env.update(
        ORRA_NATS_URL=nats_url,
        ORRA_NAMESPACE=namespace,
        ORRA_LOG_FORMAT="json",
        ORRA_EXAMPLES_EFFECTS_FILE=str(tmp_path / "effects.jsonl"),
        PYTHONUNBUFFERED="1",
        ORRA_FAULT_SUITE="1",  # marks this suite's processes (to find leftovers)
        **FAST,
    )
    env.update(extra)
    return env


class Stack:
    """Named service processes that can be started, killed (SIGKILL) and restarted."""

    def __init__(self, procs: Processes) -> None:
        self.procs = procs
        self.modules: dict[str, str] = {}
        self.envs: dict[str, dict[str, str]] = {}
        self.killed_pids: list[int] = []
        self.kills: list[tuple[float, str]] = []
        self.start_times: dict[str, list[float]] = defaultdict(list)
        self.start_retries = 0

    def start(self, name: str, module: str | None = None, **env: str) -> Proc:
        module = module or MODULES[name.rstrip("0123456789")]
        self.modules[name] = module
        self.envs[name] = env
        t0 = time.perf_counter()
        for attempt in range(1 + self.start_retries):
            try:
                proc = self.procs.start(name, module, **env)
                break
            except RuntimeError:
                if attempt == self.start_retries:
                    raise
                print(f"{name} did not start; starting it again (as a supervisor would)")
        self.start_times[name].append(time.perf_counter() - t0)
        return proc

    def start_many(self, *names: str, **env: str) -> None:
        """Start several processes at once (threads), each with ``env``; wait for all."""
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(len(names)) as pool:
            for future in [pool.submit(self.start, name, None, **env) for name in names]:
                future.result()

    async def astart(self, name: str, module: str | None = None, **env: str) -> Proc:
        return await asyncio.to_thread(self.start, name, module, **env)

    def pid(self, name: str) -> int:
        popen = self.procs[name].popen
        assert popen is not None, f"{name} is not running"
        return popen.pid

    async def kill(self, name: str) -> None:
        proc = self.procs[name]
        if proc.popen is not None:
            self.killed_pids.append(proc.popen.pid)
        self.kills.append((time.time(), name))
        await asyncio.to_thread(proc.kill)

    async def restart(self, name: str) -> Proc:
        return await self.astart(name, self.modules[name], **self.envs[name])

    def log_lines(self, name: str) -> list[str]:
        return list(self.procs[name].lines)


async def chaos(
    stack: Stack,
    rng: random.Random,
    targets: Sequence[str],
    *,
    kills: int,
    window_s: float,
    down_s: tuple[float, float] = (0.1, 1.5),
) -> None:
    """Kill (SIGKILL) a random target at random moments within ``window_s``, restart each."""
    moments = sorted(rng.uniform(0.2, window_s) for _ in range(kills))
    started = time.monotonic()
    for moment in moments:
        await asyncio.sleep(max(0.0, moment - (time.monotonic() - started)))
        name = rng.choice(list(targets))
        await stack.kill(name)
        print(f"chaos: t={time.monotonic() - started:.2f}s kill -9 {name}")
        await asyncio.sleep(rng.uniform(*down_s))
        await stack.restart(name)
        print(f"chaos: t={time.monotonic() - started:.2f}s {name} restarted")


# --- load ----------------------------------------------------------------------------------


def order(n: int) -> tuple[str, dict[str, Any]]:
    """The n-th orchestration of a load: the 2+2 order, or the payment+inventory action."""
    if n % 2 == 0:
        return NEW_ORDER, {
            "orderId": f"ORD{n:05d}",
            "customerId": f"CUST{n:05d}",
            "items": [{"id": "PROD789", "quantity": 1 + n % 3}],
        }
    return PAY_AND_STOCK, {"orderId": f"ORD{n:05d}", "amount": 10 + n, "productId": f"P{n}"}


async def publish_retrying(bus: Bus, event: Event, deadline_s: float = 60.0) -> None:
    """Append ``event``, retrying through broker outages (its id deduplicates repeats)."""
    deadline = time.monotonic() + deadline_s
    while True:
        try:
            await bus.publish(event, timeout=2.0)
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


async def submit_load(
    bus: Bus,
    count: int,
    rng: random.Random,
    *,
    spread_s: float,
    webhook: str | None = None,
) -> list[str]:
    """Append ``count`` numbered actions spread over about ``spread_s`` seconds."""
    orchs: list[str] = []
    gap = spread_s / max(count, 1)
    for n in range(count):
        action, data = order(n)
        orch = new_orchestration_id()
        orchs.append(orch)
        await publish_retrying(
            bus,
            ActionSubmitted(
                event_id=f"a:{orch}",
                orchestration_id=orch,
                action=action,
                data=[DataField(k, v) for k, v in data.items()],
                webhook=webhook,
                idempotency_key=f"load-{n}",
            ),
        )
        await asyncio.sleep(rng.uniform(0, 2 * gap))
    return orchs


# --- reading the log -----------------------------------------------------------------------


@dataclass
class Log:
    """The event log read back: events by orchestration, plus what could not be decoded."""

    events: dict[str, list[Event]] = field(default_factory=lambda: defaultdict(list))
    undecodable: list[tuple[str, bytes]] = field(default_factory=list)
    count: int = 0

    def terminal(self, orchs: Iterable[str]) -> set[str]:
        from tests.faults.checker import TERMINAL

        return {o for o in orchs if any(isinstance(e, TERMINAL) for e in self.events.get(o, ()))}


async def read_messages(
    bus: Bus, stream: str, filters: Sequence[str] | None = None, timeout_s: float = 30.0
) -> list[Any]:
    """Every message of ``stream`` (matching ``filters``) now, in order, through a pull consumer."""
    js = bus.js
    config = ConsumerConfig(
        ack_policy=AckPolicy.NONE,
        deliver_policy=DeliverPolicy.ALL,
        inactive_threshold=10.0,
        mem_storage=True,
        **({"filter_subjects": list(filters)} if filters else {}),
    )
    info = await js.stream_info(stream)
    if not info.state.messages:
        return []
    sub = await js.pull_subscribe("", stream=stream, config=config)
    out: list[Any] = []
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            try:
                msgs = await sub.fetch(batch=2000, timeout=1.0)
            except TimeoutError:
                break
            out.extend(msgs)
            if msgs and msgs[-1].metadata.num_pending == 0:
                break
    finally:
        with contextlib.suppress(Exception):
            await sub.unsubscribe()
    return out


async def read_log(bus: Bus, filters: Sequence[str] | None = None) -> Log:
    log = Log()
    for msg in await read_messages(bus, bus.topology.events_stream, filters):
        log.count += 1
        try:
            event = decode(msg.data)
        except DecodeError:
            log.undecodable.append((msg.subject, msg.data))
            continue
        orch = getattr(event, "orchestration_id", None)
        if orch is not None:
            log.events[orch].append(event)
    return log


async def wait_until(
    predicate: Callable[[], Awaitable[bool]], timeout_s: float, interval_s: float = 0.5
) -> bool:
    deadline = time.monotonic() + timeout_s
    while True:
        with contextlib.suppress(Exception):
            if await predicate():
                return True
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(interval_s)


async def wait_terminal(bus: Bus, orchs: Sequence[str], timeout_s: float) -> set[str]:
    """Wait until every orchestration has a terminal event; return those that do."""
    topo = bus.topology
    filters = [topo.all_of(t) for t in ("orchestration.done", "orchestration.failed")]
    done: set[str] = set()

    async def all_ended() -> bool:
        log = await read_log(bus, filters)
        done.clear()
        done.update(log.terminal(orchs))
        return len(done) == len(orchs)

    await wait_until(all_ended, timeout_s, 1.0)
    return done


def receipts_of(receiver: Any) -> list[Receipt]:
    """The webhook receiver's requests as checker receipts."""
    import json

    out = []
    for request in receiver.requests:
        with contextlib.suppress(ValueError, KeyError):
            body = json.loads(request.body)
            out.append(
                Receipt(
                    webhook_id=request.headers.get("webhook-id", ""),
                    orchestration_id=body["orchestrationId"],
                    status=body["status"],
                )
            )
    return out


async def wait_webhooks(receiver: Any, orchs: Sequence[str], timeout_s: float) -> set[str]:
    wanted = set(orchs)

    async def all_in() -> bool:
        return wanted <= {r.orchestration_id for r in receipts_of(receiver)}

    await wait_until(all_in, timeout_s, 0.25)
    return wanted & {r.orchestration_id for r in receipts_of(receiver)}


def topology_of(namespace: str, replicas: int = 1) -> Topology:
    return Topology(namespace=namespace, replicas=replicas)
