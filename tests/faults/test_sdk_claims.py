"""The SDK's idempotency claim of a killed process: waited out, not counted as crashes.

Found by ``test_kills.py::test_kill_9_of_the_example_services_mid_task``: a service
SIGKILLed in the middle of a task leaves its claim in the result bucket until the lease
ends (twice the ack wait). The restarted service got the redelivered task, found the claim
busy and ``nak``ed it every 0.5 s; each nak is one more delivery, so after five polls the
task passed ``max_deliveries`` and was failed as "delivered this task 6 times without
finishing it": one crash failed the orchestration. The worker now waits for the claim
(keeping the message in progress) instead of nak-ing.
"""

from __future__ import annotations

import asyncio
import time

import msgspec
import pytest
from pydantic import BaseModel

from orra_events import Bus, TaskCompleted, TaskDispatched, TaskFailed, decode
from orra_sdk import OrraClient, Service, Task
from orra_sdk._results import Record, kv_key
from orra_sdk.client import RESULTS_BUCKET


class In(BaseModel):
    n: int


class Out(BaseModel):
    n: int


@pytest.mark.e2e
async def test_a_dead_holders_claim_is_waited_out_without_failing_the_task(
    bus: Bus, nats_url: str, namespace: str
) -> None:
    runs: list[int] = []
    svc = Service(name="Claimed", description="d", input=In, output=Out)

    @svc.handler
    async def run(task: Task[In]) -> Out:
        runs.append(task.attempt)
        return Out(n=task.input.n)

    # The claim a process killed mid-task leaves behind: running, someone else's, 2 s left.
    kv = await bus.kv(RESULTS_BUCKET)
    key = kv_key("Claimed", "o_dead:t")
    lease_until = time.time() + 2.0
    await kv.put(
        key,
        msgspec.json.encode(Record(state="running", holder="i_dead", lease_until=lease_until)),
    )
    results: list[object] = []

    async def on_result(msg: object) -> None:
        results.append(decode(msg.data))  # type: ignore[attr-defined]

    sub = await bus.nc.subscribe(f"{namespace}.task.*.o_dead", cb=on_result)
    client = OrraClient(nats_url, namespace=namespace, ack_wait_s=3.0, max_deliveries=2)
    try:
        await client.connect()
        await client.start(svc)
        await bus.publish(
            TaskDispatched(
                event_id="d:o_dead:t:1",
                orchestration_id="o_dead",
                task_id="t",
                service="Claimed",
                input={"n": 7},
                attempt=1,
                idempotency_key="o_dead:t",
                timeout_s=30.0,
            ),
            subject=bus.topology.work("Claimed"),
        )
        async with asyncio.timeout(15):
            while not any(isinstance(r, (TaskCompleted, TaskFailed)) for r in results):
                await asyncio.sleep(0.05)
    finally:
        await client.close()
        await sub.unsubscribe()
    outcome = next(r for r in results if isinstance(r, (TaskCompleted, TaskFailed)))
    assert isinstance(outcome, TaskCompleted), outcome
    assert outcome.output == {"n": 7}
    assert runs == [1]  # taken over once the dead holder's lease ended
    assert time.time() >= lease_until


def test_the_sdk_keeps_the_stream_replicas_of_the_installation(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Found by the 3-node cluster case: a service process created with the SDK's default
    topology (replicas 1) updated the R3 streams of the cluster to R1 at its start, so
    losing the node that held them stopped everything. It reads ORRA_STREAM_REPLICAS now,
    as every other process does."""
    monkeypatch.setenv("ORRA_STREAM_REPLICAS", "3")
    assert OrraClient("nats://127.0.0.1:1").topology.replicas == 3
    monkeypatch.delenv("ORRA_STREAM_REPLICAS")
    assert OrraClient("nats://127.0.0.1:1").topology.replicas == 1
