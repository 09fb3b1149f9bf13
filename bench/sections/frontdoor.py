"""The front door: ``POST /orchestrations`` → signed webhook at a local receiver (issue 23).

What a user measures: from their POST to the gateway to their webhook, and from their POST
to the ``201`` that carries the plan. The section runs a stack of its own (nats-server,
planner, dispatcher, example services, gateway, notifier) so that the main stack's sections
keep their figures, and measures in one run:

* one at a time (the next POST after the previous webhook): with a keep-alive receiver and
  with a receiver that closes every connection, interleaved run by run, and the bus path
  (``action.submitted`` appended directly, as in section 1) on the same stack;
* a closed loop with ``concurrency`` orchestrations in flight, one HTTP/1.1 keep-alive
  connection per in-flight orchestration (:mod:`bench.httpclient`, a client of a few stream
  reads, so the driver does not eat the cores), keep-alive receiver;
* where the time goes. Every Orra process stamps its events with the machine's wall clock
  (``time.time()``); the driver and the receiver (this process) stamp the request, the
  ``201`` and the delivery with the same clock, so the instants line up without any offset
  to estimate. After each one-at-a-time run the orchestrations' events are read back from
  the log (``action.submitted``, ``plan.created``, ``orchestration.done``,
  ``webhook.delivered`` with its attempt log) and each delivery job's ``created_at`` is
  taken from a core-NATS subscription to ``notifier.delivery.*``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import statistics
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import msgspec
import psutil  # type: ignore[import-untyped]

from bench.frontdoor import FrontDoor, FrontDoorError, Sample
from bench.httpclient import HttpConnection, HttpError
from bench.procs import ManagedProcess, Stack
from bench.receiver import Mode, Receiver
from bench.sections.orra import _cpu_share, _machine_busy
from bench.stats import Agg, percentile
from bench.workload import Driver, OrchestrationFailedError
from orra_events import OrchestrationDone, PlanCreated, WebhookDelivered, decode
from orra_events.embedded import free_port
from orra_events.jobs import decode_delivery_job

if TYPE_CHECKING:
    from nats.aio.msg import Msg

    from bench.config import Config
    from bench.sections import Result

__all__ = ["ANSWER_SEGMENTS", "SEGMENTS", "run_frontdoor", "segments"]

SEGMENTS: tuple[tuple[str, str, str], ...] = (
    ("gateway", "posted", "submitted"),
    ("planning", "submitted", "planned"),
    ("dispatch", "planned", "done"),
    ("fanout", "done", "job"),
    ("pickup", "job", "attempt"),
    ("http", "attempt", "head"),
    ("receive", "head", "verified"),
)
"""The consecutive parts of POST → verified webhook: (name, from instant, to instant)."""

ANSWER_SEGMENTS: tuple[tuple[str, str, str], ...] = (
    ("gateway", "posted", "submitted"),
    ("planning", "submitted", "planned"),
    ("answer", "planned", "answered"),
)
"""The consecutive parts of POST → ``201`` read by the client."""


# --- where the time goes -------------------------------------------------------------------


class JobTimes:
    """Each delivery job's ``created_at``, from a core subscription to the jobs' subjects."""

    def __init__(self) -> None:
        self.created: dict[str, float] = {}
        self._sub: Any = None

    async def start(self, driver: Driver) -> None:
        """Subscribe to ``notifier.delivery.*`` of the driver's namespace."""
        subject = driver.topology.subject("notifier.delivery", "*")
        self._sub = await driver.bus.nc.subscribe(subject, cb=self._on_job)

    async def _on_job(self, msg: Msg) -> None:
        with contextlib.suppress(Exception):
            job = decode_delivery_job(msg.data)
            self.created.setdefault(job.orchestration_id, job.created_at)

    async def stop(self) -> None:
        """Unsubscribe."""
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()


async def instants(driver: Driver, sample: Sample, jobs: JobTimes) -> dict[str, float] | None:
    """Every instant of one orchestration's trip, or None when an event is missing."""
    assert sample.arrival is not None
    js, topo = driver.bus.js, driver.topology
    found: dict[str, Any] = {}
    for event_type in ("action.submitted", "plan.created", "orchestration.done"):
        try:
            msg = await js.get_last_msg(
                topo.events_stream, topo.subject(event_type, sample.orchestration_id)
            )
        except Exception:  # not found (or the broker is away): no breakdown for this one
            return None
        found[event_type] = decode(msg.data or b"")
    delivered = None
    for _ in range(50):  # appended just after the receiver answered
        with contextlib.suppress(Exception):
            msg = await js.get_last_msg(
                topo.events_stream, topo.subject("webhook.delivered", sample.orchestration_id)
            )
            delivered = decode(msg.data or b"")
            break
        await asyncio.sleep(0.02)
    if not isinstance(delivered, WebhookDelivered) or not delivered.attempt_log:
        return None
    # A first attempt that succeeds is made by the fan-out itself: no job, no second hop.
    job = jobs.created.get(sample.orchestration_id, delivered.attempt_log[-1].at)
    if not isinstance(found["plan.created"], PlanCreated) or not isinstance(
        found["orchestration.done"], OrchestrationDone
    ):
        return None
    return {
        "posted": sample.posted,
        "submitted": found["action.submitted"].at,
        "planned": found["plan.created"].at,
        "answered": sample.answered,
        "done": found["orchestration.done"].at,
        "job": job,
        "attempt": delivered.attempt_log[-1].at,
        "head": sample.arrival.head_at,
        "verified": sample.arrival.verified_at,
        "recorded": delivered.at,
    }


def segments(
    rows: list[dict[str, float]], parts: tuple[tuple[str, str, str], ...]
) -> dict[str, dict[str, float]]:
    """p50 and p99 (ms) of each part over ``rows`` of instants."""
    out: dict[str, dict[str, float]] = {}
    for name, start, end in parts:
        values = [(r[end] - r[start]) * 1000.0 for r in rows]
        if values:
            out[name] = {"p50_ms": percentile(values, 50), "p99_ms": percentile(values, 99)}
    return out


# --- the section ---------------------------------------------------------------------------


@dataclass
class _Runs:
    """Per-run figures of one path, aggregated at the end."""

    runs: list[dict[str, Any]] = field(default_factory=list)

    def add(self, values: list[float], **extra: Any) -> None:
        self.runs.append(
            {
                "p50_ms": percentile(values, 50),
                "p99_ms": percentile(values, 99),
                "n": len(values),
                **extra,
            }
        )

    def as_dict(self) -> dict[str, Any]:
        keys = ("p50_ms", "p99_ms", "n")
        return {"runs": self.runs, **{k: Agg.dict_of(r.get(k) for r in self.runs) for k in keys}}


def _processes(api_key: str, gateway_port: int) -> tuple[list[ManagedProcess], ManagedProcess]:
    private = {"ORRA_ALLOW_PRIVATE_WEBHOOKS": "true"}
    return (
        [
            ManagedProcess("planner", "orra_planner"),
            ManagedProcess("dispatcher", "orra_dispatcher"),
            ManagedProcess("notifier", "orra_notifier", env=private),
            ManagedProcess(
                "gateway",
                "orra_gateway",
                env={
                    **private,
                    "ORRA_GATEWAY_PORT": str(gateway_port),
                    "ORRA_GATEWAY_HOST": "127.0.0.1",
                    "ORRA_GATEWAY_BOOTSTRAP_KEY": api_key,
                },
            ),
        ],
        ManagedProcess("examples", "orra_examples"),
    )


async def _secret(front: FrontDoor, conn: HttpConnection) -> str:
    deadline = time.monotonic() + 30
    while True:
        try:
            return str((await front.get(conn, "/webhooks/secret"))["secret"])
        except (FrontDoorError, HttpError, OSError):
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


def _reason(exc: BaseException) -> str:
    """A failure's kind, without the orchestration id, for counting alike failures."""
    text = f"{type(exc).__name__}: {exc}"
    return " ".join("o_…" if word.startswith("o_") else word for word in text.split())[:160]


async def _one_at_a_time(
    front: FrontDoor, conn: HttpConnection, n: int, reasons: Counter[str]
) -> list[Sample]:
    samples: list[Sample] = []
    for _ in range(n):
        try:
            samples.append(await front.run_one(conn))
        except (FrontDoorError, HttpError, OSError) as exc:
            reasons[_reason(exc)] += 1
    return samples


async def _breakdown(
    driver: Driver, samples: list[Sample], jobs: JobTimes
) -> list[dict[str, float]]:
    rows = []
    for sample in samples:
        row = await instants(driver, sample, jobs)
        if row is not None:
            rows.append(row)
    return rows


NOTIFIER_CONSUMERS = (
    ("fanout", "events_stream", "notifier"),
    ("delivery", "webhooks_stream", "notifier_delivery"),
)
"""The notifier's durable consumers: (key, Topology attribute of the stream, name)."""


async def _sample_backlog(
    driver: Driver, stop: asyncio.Event, out: dict[str, list[tuple[int, int]]]
) -> None:
    """Every 0.5 s, each notifier consumer's (waiting, handed out and unacknowledged)."""
    while not stop.is_set():
        for key, stream, name in NOTIFIER_CONSUMERS:
            with contextlib.suppress(Exception):
                info = await driver.bus.js.consumer_info(getattr(driver.topology, stream), name)
                out.setdefault(key, []).append(
                    (int(info.num_pending or 0), int(info.num_ack_pending or 0))
                )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.5)


def _backlog_summary(samples: dict[str, list[tuple[int, int]]]) -> dict[str, dict[str, float]]:
    out = {}
    for key, values in samples.items():
        waiting = [v[0] for v in values]
        unacked = [v[1] for v in values]
        out[key] = {
            "waiting_p50": statistics.median(waiting),
            "waiting_max": max(waiting),
            "unacked_p50": statistics.median(unacked),
            "unacked_max": max(unacked),
            "samples": len(values),
        }
    return out


async def _closed_loop(
    front: FrontDoor, concurrency: int, duration_s: float
) -> tuple[dict[str, Any], list[Sample]]:
    """Keep ``concurrency`` in flight for ``duration_s``; figures and the completed samples."""
    done: list[Sample] = []
    reasons: Counter[str] = Counter()
    deadline = time.time() + duration_s

    async def worker() -> None:
        conn = front.connection()
        try:
            while time.time() < deadline:
                try:
                    sample = await front.run_one(conn, timeout_s=60.0)
                except (FrontDoorError, HttpError, OSError) as exc:
                    reasons[_reason(exc)] += 1
                    await asyncio.sleep(0.05)  # a refusing gateway must not make this spin
                    continue
                assert sample.arrival is not None
                if sample.arrival.verified_at <= deadline:
                    done.append(sample)
        finally:
            await conn.close()

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    nan = [float("nan")]
    webhook = [s.webhook_ms for s in done]
    answer = [s.answer_ms for s in done]
    return {
        "orch_per_s": len(webhook) / duration_s,
        "completed": len(webhook),
        "failed": sum(reasons.values()),
        "failures": dict(reasons.most_common(5)),
        "load_p50_ms": percentile(webhook or nan, 50),
        "load_p99_ms": percentile(webhook or nan, 99),
        "answer_p50_ms": percentile(answer or nan, 50),
        "answer_p99_ms": percentile(answer or nan, 99),
    }, done


def _spread(samples: list[Sample], n: int) -> list[Sample]:
    """At most ``n`` samples taken evenly over the run."""
    if len(samples) <= n:
        return samples
    step = len(samples) / n
    return [samples[int(i * step)] for i in range(n)]


async def run_frontdoor(cfg: Config, log: Any = print) -> Result:
    """The whole section on a stack of its own (see the module)."""
    api_key = "orra_" + secrets.token_urlsafe(32)
    gateway_port = free_port()
    notes: list[str] = []
    with Stack() as stack:
        required, examples = _processes(api_key, gateway_port)
        startup = await asyncio.to_thread(stack.start, *required)
        startup.update(await asyncio.to_thread(stack.start, examples))
        log("front door stack ready: " + ", ".join(f"{k} {v:.2f}s" for k, v in startup.items()))
        receiver = Receiver(lambda *_: None)
        await receiver.start()
        front = FrontDoor("127.0.0.1", gateway_port, api_key, receiver)
        driver = await Driver.connect(stack.url, stack.namespace)
        jobs = JobTimes()
        await jobs.start(driver)
        conn = front.connection()
        try:
            receiver.secret = await _secret(front, conn)
            first, body = await front.submit(conn)
            first.arrival = await front.wait(first.orchestration_id, 30.0)
            plan = msgspec.json.decode(body)
            groups = [len(g) for g in plan.get("parallel_groups", [])]
            if groups != [2, 2]:
                notes.append(f"the plan's groups are {groups}, not the seed's 2+2")
            reasons: Counter[str] = Counter()
            for mode in ("keep-alive", "closing"):
                receiver.mode = mode
                await _one_at_a_time(front, conn, cfg.warmup, Counter())
            for _ in range(cfg.warmup):
                await driver.submit_action()
            paths: dict[str, _Runs] = {
                "keep_alive": _Runs(),
                "closing": _Runs(),
                "answer": _Runs(),
                "bus": _Runs(),
            }
            rows: dict[str, list[dict[str, float]]] = {"keep_alive": [], "closing": []}
            for run in range(cfg.runs):
                log(f"  front door run {run + 1}/{cfg.runs}: one at a time")
                modes: tuple[tuple[str, Mode], ...] = (
                    ("keep_alive", "keep-alive"),
                    ("closing", "closing"),
                )
                for key, mode in modes:
                    receiver.mode = mode
                    before = receiver.connections
                    samples = await _one_at_a_time(front, conn, cfg.latency_n, reasons)
                    if not samples:
                        raise FrontDoorError(f"every orchestration failed ({mode} receiver)")
                    paths[key].add(
                        [s.webhook_ms for s in samples],
                        connections=receiver.connections - before,
                    )
                    if key == "keep_alive":
                        paths["answer"].add([s.answer_ms for s in samples])
                    rows[key].extend(await _breakdown(driver, samples, jobs))
                bus = [await driver.submit_action() for _ in range(cfg.latency_n)]
                paths["bus"].add(bus)
            if reasons:
                notes.append(
                    f"{sum(reasons.values())} one-at-a-time orchestrations failed: "
                    + "; ".join(f"{r} ({n})" for r, n in reasons.most_common(3))
                )
            opened = sum(r["connections"] for r in paths["keep_alive"].runs)
            delivered = sum(r["n"] for r in paths["keep_alive"].runs)
            if opened >= 0.9 * delivered:
                notes.append(
                    f"the notifier opened {opened} connections for {delivered} deliveries to "
                    "the keep-alive receiver: it does not reuse connections. "
                    "`orra_notifier.delivery.Deliverer.post` leaves the (empty) response body "
                    "unread when it exits `client.stream(...)`, so httpcore closes the "
                    "connection instead of returning it to the pool; both receiver modes "
                    "therefore pay a TCP connect per delivery (reading the body before the "
                    "stream closes keeps one connection: measured 1 connection for 50 posts)"
                )
            receiver.mode = "keep-alive"
            log(f"  front door closed loop: {cfg.concurrency} in flight")
            await _closed_loop(front, cfg.concurrency, min(3.0, cfg.throughput_s))  # warm
            load_runs = []
            at_load: list[Sample] = []
            for _ in range(cfg.runs):
                before, machine_before = stack.samples(), psutil.cpu_times()
                t0 = time.perf_counter()
                stop, backlog = asyncio.Event(), {}
                sampler = asyncio.create_task(_sample_backlog(driver, stop, backlog))
                result, done = await _closed_loop(front, cfg.concurrency, cfg.throughput_s)
                elapsed = time.perf_counter() - t0
                stop.set()
                await sampler
                result["backlog"] = _backlog_summary(backlog)
                result["cpu_pct"] = _cpu_share(before, stack.samples(), elapsed)
                result["machine_busy_pct"] = _machine_busy(machine_before, psutil.cpu_times())
                stack.alive_check()
                load_runs.append(result)
                at_load.extend(_spread(done, 100))
                if result["failed"]:
                    notes.append(
                        f"closed loop: {result['failed']} orchestrations failed: "
                        + "; ".join(f"{r} ({n})" for r, n in result["failures"].items())
                    )
            await asyncio.sleep(1.0)  # the last outcomes are appended after the answers
            rows["at_load"] = await _breakdown(driver, at_load, jobs)
            await jobs.stop()
        except OrchestrationFailedError as exc:
            raise FrontDoorError(f"bus path: {exc}") from None
        finally:
            await conn.close()
            await driver.close()
            await receiver.stop()
    return {
        "status": "ok",
        "notes": notes,
        "paths": {k: v.as_dict() for k, v in paths.items()},
        "breakdown": {
            key: {
                "samples": len(r),
                "webhook": segments(r, SEGMENTS),
                "answer": segments(r, ANSWER_SEGMENTS),
                "recorded_after_ms": _median_ms(r, "verified", "recorded"),
            }
            for key, r in rows.items()
        },
        "load": _aggregate_load(load_runs),
        "concurrency": cfg.concurrency,
        "cpus": os.cpu_count(),
        "startup_s": startup,
    }


def _median_ms(rows: list[dict[str, float]], start: str, end: str) -> float | None:
    values = [(r[end] - r[start]) * 1000.0 for r in rows]
    return statistics.median(values) if values else None


def _aggregate_load(runs: list[dict[str, Any]]) -> dict[str, Any]:
    keys = (
        "orch_per_s",
        "load_p50_ms",
        "load_p99_ms",
        "answer_p50_ms",
        "answer_p99_ms",
        "machine_busy_pct",
    )
    names = sorted({n for r in runs for n in r["cpu_pct"]})
    consumers = sorted({k for r in runs for k in r.get("backlog", {})})
    metrics = ("waiting_p50", "waiting_max", "unacked_p50", "unacked_max")
    return {
        "backlog": {
            k: {
                m: Agg.dict_of((r.get("backlog", {}).get(k) or {}).get(m) for r in runs)
                for m in metrics
            }
            for k in consumers
        },
        "runs": runs,
        **{k: Agg.dict_of(r[k] for r in runs) for k in keys},
        "cpu_pct": {n: Agg.dict_of(r["cpu_pct"].get(n) for r in runs) for n in names},
    }
