"""How much each benchmark does, in the full run and in ``--quick``."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

__all__ = ["SECTIONS", "Config", "full", "quick", "smoke"]

SECTIONS = (
    "overhead",
    "throughput",
    "frontdoor",
    "peers",
    "recovery",
    "makespan",
    "memory",
    "profile",
    "planning",
    "retention",
    "console",
    "publisher",
    "tracing",
)
"""Every section of the harness, in the order they run."""


@dataclass(frozen=True)
class Config:
    """Sizes and repetitions of every section.

    Attributes:
        quick: Whether this is the ``--quick`` smoke configuration.
        runs: Repetitions of each measured figure (medians and min-max are over these).
        warmup: Orchestrations run before measuring latency.
        latency_n: Orchestrations per latency run (one at a time).
        throughput_s: Length of one saturation run.
        concurrency: Orchestrations kept in flight at saturation.
        peers: Peers to run.
        peer_latency_n: Workflows per peer latency run.
        peer_throughput_s: Length of a peer throughput run.
        peer_concurrency: Concurrent submitters of a peer throughput run.
        peer_runs: Runs per peer.
        recovery_sizes: Orchestrations in the synthetic logs.
        recovery_runs: Starts per service and log size.
        makespan_graphs: Random task graphs.
        makespan_tasks: Tasks per random graph (min, max).
        makespan_durations_ms: Task durations (min, max).
        memory_in_flight: Orchestrations held in flight for the memory figure.
        memory_completed: Completed-orchestration counts at which memory is sampled.
        profile_s: Seconds of profiling under saturation (0: no profile).
        retention_completed: Completed-orchestration checkpoints of the retention section.
        retention_max_age_s: The maximum age of its stack with retention on.
        retention_settle_s: Seconds it waits at each checkpoint (a retention pass or two).
        retention_attribution: Synthetic orchestrations per isolated memory measurement
            (0: none).
        retention_idle_s: Seconds both stacks then stay idle before a last sample (longer
            than the 10-minute duplicate window, whose entries then expire; 0: none).
        console_orchestrations: Orchestrations in the console section's synthetic log.
        console_runs: Cold page loads per page of the console section.
        publisher_messages: Messages per pipelined run of the publisher A/B (a tenth of
            them one at a time).
        publisher_rounds: Alternating rounds of the publisher A/B.
        tracing_rounds: Child runs each way (tracing off, on) of the tracing section.
    """

    quick: bool
    runs: int
    warmup: int
    latency_n: int
    throughput_s: float
    concurrency: int
    peers: tuple[str, ...]
    peer_latency_n: int
    peer_throughput_s: float
    peer_concurrency: int
    peer_runs: int
    recovery_sizes: tuple[int, ...]
    recovery_runs: int
    makespan_graphs: int
    makespan_tasks: tuple[int, int]
    makespan_durations_ms: tuple[int, int]
    memory_in_flight: int
    memory_completed: tuple[int, ...]
    profile_s: float
    retention_completed: tuple[int, ...] = (25_000, 50_000, 100_000)
    retention_max_age_s: float = 30.0
    retention_settle_s: float = 12.0
    retention_attribution: int = 100_000
    retention_idle_s: float = 660.0
    console_orchestrations: int = 100_000
    console_runs: int = 10
    publisher_messages: int = 20_000
    publisher_rounds: int = 3
    tracing_rounds: int = 3


def full() -> Config:
    """The full benchmark (``make bench``): tens of minutes on 2 cores."""
    return Config(
        quick=False,
        runs=3,
        warmup=50,
        latency_n=300,
        throughput_s=15.0,
        concurrency=200,
        peers=("celery", "dbos", "prefect", "temporal", "restate"),
        peer_latency_n=100,
        peer_throughput_s=10.0,
        peer_concurrency=8,
        peer_runs=3,
        recovery_sizes=(1_000, 10_000, 100_000),
        recovery_runs=3,
        makespan_graphs=6,
        makespan_tasks=(8, 16),
        makespan_durations_ms=(20, 200),
        memory_in_flight=1_000,
        memory_completed=(5_000, 10_000, 20_000),
        profile_s=10.0,
    )


def quick() -> Config:
    """The smoke configuration (``make bench-quick``, CI): under two minutes."""
    return Config(
        quick=True,
        runs=1,
        warmup=10,
        latency_n=40,
        throughput_s=4.0,
        concurrency=100,
        peers=(),
        peer_latency_n=20,
        peer_throughput_s=2.0,
        peer_concurrency=4,
        peer_runs=1,
        recovery_sizes=(1_000,),
        recovery_runs=1,
        makespan_graphs=2,
        makespan_tasks=(5, 8),
        makespan_durations_ms=(20, 80),
        memory_in_flight=200,
        memory_completed=(500, 1_000),
        profile_s=0.0,
        retention_completed=(500, 1_000),
        retention_max_age_s=2.0,
        retention_settle_s=8.0,
        retention_attribution=0,
        retention_idle_s=0.0,
        console_orchestrations=2_000,
        console_runs=3,
        publisher_messages=5_000,
        publisher_rounds=2,
    )


def smoke() -> Config:
    """Smaller than ``--quick``: the test suite's check that every section runs (``--smoke``).

    Its figures mean nothing; it exists so that the serial part of ``make test`` stays short.
    """
    return dataclasses.replace(
        quick(),
        warmup=3,
        latency_n=12,
        throughput_s=2.0,
        concurrency=50,
        recovery_sizes=(300,),
        makespan_graphs=1,
        memory_in_flight=50,
        memory_completed=(100, 200),
        publisher_messages=1_000,
        publisher_rounds=1,
    )
