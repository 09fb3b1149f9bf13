"""A service that must not run a task twice (``retry_on_timeout=False``) never reruns a
handler that was interrupted: the task fails with ``outcome_unknown`` for an operator."""

from __future__ import annotations

import asyncio

import pytest
from pydantic import BaseModel

from orra_events import Bus, TaskCompleted, TaskFailed
from orra_events._fastpub import FastPublisher
from orra_sdk import OutcomeUnknown, Service, Task
from orra_sdk._results import Claimed, ResultStore, kv_key
from orra_sdk.client import RESULTS_BUCKET
from tests.sdk.conftest import Dispatch, EventLog

pytestmark = pytest.mark.e2e


class In(BaseModel):
    n: int


async def _interrupted_claim(bus: Bus, service: str, key: str) -> None:
    """Leave a running claim of attempt 1 whose holder died (its lease has run out)."""
    publisher = FastPublisher(bus.nc)
    await publisher.start()
    try:
        dead = ResultStore(await bus.kv(RESULTS_BUCKET), holder="i_dead", publisher=publisher)
        assert isinstance(await dead.claim(kv_key(service, key), attempt=1, lease_s=0.05), Claimed)
    finally:
        await publisher.stop()


async def test_a_handler_interrupted_by_a_dead_process_is_not_run_again(
    bus: Bus, make_client: object, dispatch: Dispatch, events: EventLog
) -> None:
    svc = Service(
        name="Transfer", description="Move money", input=In, output=In, retry_on_timeout=False
    )
    runs: list[int] = []

    @svc.handler
    async def run(task: Task[In]) -> In:
        runs.append(task.input.n)
        return task.input

    await _interrupted_claim(bus, "Transfer", "o_dead:t")
    client = make_client(ack_wait_s=1.0)  # type: ignore[operator]
    await client.connect()
    await client.start(svc)
    await dispatch("Transfer", "t", {"n": 1}, orchestration_id="o_dead")
    (failed,) = await events.wait(TaskFailed, timeout=20.0, task_id="t")
    assert failed.outcome_unknown
    assert not failed.retryable
    assert "Transfer was interrupted while running this task" in failed.error
    assert runs == []


async def test_a_handler_may_say_its_outcome_is_unknown(
    make_client: object, dispatch: Dispatch, events: EventLog
) -> None:
    svc = Service(name="Wire", description="Send a wire", input=In, output=In)

    @svc.handler
    async def run(task: Task[In]) -> In:
        raise OutcomeUnknown("the bank hung up mid-transfer")

    client = make_client()  # type: ignore[operator]
    await client.connect()
    await client.start(svc)
    await dispatch("Wire", "t", {"n": 1}, orchestration_id="o_wire")
    (failed,) = await events.wait(TaskFailed, task_id="t")
    assert (failed.retryable, failed.outcome_unknown) == (False, True)
    assert failed.error == "OutcomeUnknown: the bank hung up mid-transfer"


async def test_withdrawn_services_stop_taking_tasks_and_can_start_again(
    bus: Bus, make_client: object, dispatch: Dispatch, events: EventLog
) -> None:
    a = Service(name="Alpha", description="a", input=In, output=In)
    b = Service(name="Beta", description="b", input=In, output=In)
    for svc in (a, b):

        @svc.handler
        async def run(task: Task[In]) -> In:
            return task.input

    client = make_client()  # type: ignore[operator]
    await client.connect()
    await client.start(a, b)
    await client.withdraw("Alpha", "Nobody")
    assert set(client.services) == {"Beta"}
    await dispatch("Alpha", "ta", {"n": 1}, orchestration_id="o_w")
    await dispatch("Beta", "tb", {"n": 2}, orchestration_id="o_w")
    await events.wait(TaskCompleted, task_id="tb")
    await asyncio.sleep(0.5)
    assert not events.of(TaskCompleted, task_id="ta")  # nobody serves Alpha
    assert set(await client.registrations("Alpha")) == {"1"}  # still registered
    await client.start(a)
    await events.wait(TaskCompleted, task_id="ta")
