"""``BenchSleeper``: a benchmark-only service whose task takes exactly ``durationMs``.

Its input is ``durationMs`` plus any other fields (the ``$task.token`` references that make
a random task graph); its output is a ``token`` that later tasks can reference. The makespan
benchmark publishes plans of these tasks straight to ``plan.created``, so the planner never
sees this service; it is registered like any other so the registry stays truthful.

Run: ``python -m bench.sleeper`` (``ORRA_NATS_URL``, ``ORRA_NAMESPACE``).
"""

from __future__ import annotations

import asyncio
import time

from pydantic import BaseModel, ConfigDict

from orra_sdk import Service, Task, run

__all__ = ["SERVICE_NAME", "SleepIn", "SleepOut", "sleeper"]

SERVICE_NAME = "BenchSleeper"


class SleepIn(BaseModel):
    """How long to sleep; extra fields (references to earlier tasks) are accepted."""

    model_config = ConfigDict(extra="allow")

    durationMs: float  # noqa: N815 - the wire name


class SleepOut(BaseModel):
    """A token for later tasks to reference, and how long the task really slept."""

    token: str
    sleptMs: float  # noqa: N815 - the wire name


sleeper: Service[SleepIn, SleepOut] = Service(
    name=SERVICE_NAME,
    description="Benchmark task that sleeps for durationMs milliseconds",
    input=SleepIn,
    output=SleepOut,
    concurrency=4096,
)


@sleeper.handler
async def sleep(task: Task[SleepIn]) -> SleepOut:
    """Sleep for the task's ``durationMs``."""
    t0 = time.perf_counter()
    await asyncio.sleep(task.input.durationMs / 1000.0)
    return SleepOut(token=task.task_id, sleptMs=(time.perf_counter() - t0) * 1000.0)


if __name__ == "__main__":
    run(sleeper, project="bench")
