# ruff: noqa: N815 - camelCase wire field names
"""Python and Node replicas of one service, through ``orra_sdk`` and ``@orra/sdk``.

The Node replica (sdks/typescript/test/interop_service.ts, built by ``make install``) gets
the Python service's very definition, so both register the same schema hash; they share
the durable consumer ``svc_<service>`` and the idempotency records of ``sdk_results``, so
the tasks are split between them and a result recorded by one is replayed by the other.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal

import pytest
from pydantic import BaseModel

from orra_events import Bus, ServiceHeartbeat, TaskCompleted
from orra_sdk import OrraClient, RevertTask, Service, Task
from tests.sdk.conftest import EventLog, work_left

REPO = Path(__file__).resolve().parents[2]
NODE_REPLICA = REPO / "sdks" / "typescript" / "dist" / "test" / "interop_service.js"
NAME = "InteropService"


class InteropIn(BaseModel):
    orderId: str


class InteropOut(BaseModel):
    orderId: str
    by: Literal["python", "node"]


def python_replica() -> Service[InteropIn, InteropOut]:
    svc = Service(
        name=NAME,
        description="Served from Python and from Node",
        input=InteropIn,
        output=InteropOut,
        revertible=True,
    )

    @svc.handler
    async def handle(task: Task[InteropIn]) -> InteropOut:
        await asyncio.sleep(0.02)
        return InteropOut(orderId=task.input.orderId, by="python")

    @svc.revert
    async def undo(task: RevertTask[InteropIn, InteropOut]) -> None:
        pass

    return svc


class NodeReplica:
    """``node interop_service.js`` on the test's namespace; ready once it logs "ready"."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None
        self._pump: threading.Thread = threading.Thread()
        self.lines: list[dict[str, Any]] = []

    def start(self, timeout_s: float = 20.0) -> NodeReplica:
        node = shutil.which("node")
        if node is None or not NODE_REPLICA.exists():
            pytest.fail(f"needs node and {NODE_REPLICA.relative_to(REPO)}: run `make install`")
        ready = threading.Event()
        self.proc = subprocess.Popen(
            [node, str(NODE_REPLICA)],
            env=self.env,
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
        )

        def pump(stream: Any) -> None:
            for raw in stream:
                try:
                    line = json.loads(raw)
                except ValueError:
                    continue
                self.lines.append(line)
                if line.get("event") == "ready":
                    ready.set()

        self._pump = threading.Thread(target=pump, args=(self.proc.stderr,), daemon=True)
        self._pump.start()
        if not ready.wait(timeout_s):
            self.stop()
            raise AssertionError(f"the Node replica did not get ready: {self.lines[-10:]}")
        return self

    def stop(self) -> int | None:
        proc, self.proc = self.proc, None
        if proc is None:
            return None
        proc.terminate()
        try:
            code = proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = proc.wait()
        self._pump.join(5)
        if proc.stderr is not None:
            proc.stderr.close()
        return code


@pytest.fixture
def node_replica(nats_url: str, namespace: str) -> Iterator[Callable[[], NodeReplica]]:
    svc = python_replica()
    definition = {
        "name": svc.name,
        "description": svc.description,
        "input_schema": svc.input_schema,
        "output_schema": svc.output_schema,
    }
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORRA_")}
    env.update(
        ORRA_NATS_URL=nats_url,
        ORRA_NAMESPACE=namespace,
        ORRA_INTEROP_DEFINITION=json.dumps(definition),
    )
    started: list[NodeReplica] = []

    def start() -> NodeReplica:
        replica = NodeReplica(env).start()
        started.append(replica)
        return replica

    yield start
    for replica in started:
        replica.stop()


async def test_one_definition_one_consumer_and_the_tasks_split(
    bus: Bus,
    events: EventLog,
    make_client: Callable[..., OrraClient],
    node_replica: Callable[[], NodeReplica],
    dispatch: Any,
) -> None:
    svc = python_replica()
    python_client = make_client()
    await python_client.connect()
    await python_client.start(svc)
    streams = [str(c.name) for c in bus.topology.stream_configs()]
    before = {name: (await bus.js.stream_info(name)).config for name in streams}
    node = node_replica()
    after = {name: (await bus.js.stream_info(name)).config for name in streams}
    assert after == before, "the Node replica found the streams as it would create them"
    beats = await events.wait(ServiceHeartbeat, count=2, service=NAME)
    assert len({b.instance_id for b in beats}) == 2
    raw = await bus.js.get_last_msg(
        bus.topology.services_stream,
        bus.topology.service_subject("service.registered", NAME, "1"),
    )
    assert raw.seq == 1, "the Node replica registered the very same definition"
    assert (raw.headers or {})["Nats-Msg-Id"] == f"reg:{NAME}:{svc.schema_hash}"

    for i in range(30):
        await dispatch(NAME, f"t{i}", {"orderId": f"O{i}"})
    done = await events.wait(TaskCompleted, count=30, service=NAME)
    assert len({e.task_id for e in done}) == 30
    by = [e.output["by"] for e in done]
    assert by.count("python") >= 3, by
    assert by.count("node") >= 3, by
    assert all(e.output["orderId"] == f"O{e.task_id[1:]}" for e in done)
    assert await work_left(bus) == 0
    consumers = await bus.js.consumers_info(bus.topology.work_stream)
    assert [c.name for c in consumers] == [f"svc_{NAME}"]
    assert node.stop() == 0, node.lines[-5:]


async def test_a_result_recorded_in_one_language_is_replayed_by_the_other(
    events: EventLog,
    make_client: Callable[..., OrraClient],
    node_replica: Callable[[], NodeReplica],
    dispatch: Any,
) -> None:
    python = make_client()
    await python.connect()
    await python.start(python_replica())
    await dispatch(NAME, "from_python", {"orderId": "P"})
    (first,) = await events.wait(TaskCompleted, task_id="from_python")
    assert first.output["by"] == "python"
    await python.close()

    node = node_replica()
    await dispatch(NAME, "from_python", {"orderId": "P"}, attempt=2)
    await dispatch(NAME, "from_node", {"orderId": "N"})
    (replayed,) = await events.wait(TaskCompleted, task_id="from_python", attempt=2)
    (ran,) = await events.wait(TaskCompleted, task_id="from_node")
    assert replayed.replayed is True
    assert replayed.output == first.output
    assert replayed.started_at == first.started_at
    assert ran.output["by"] == "node"
    assert node.stop() == 0

    again = make_client()
    await again.connect()
    await again.start(python_replica())
    await dispatch(NAME, "from_node", {"orderId": "N"}, attempt=2)
    (back,) = await events.wait(TaskCompleted, task_id="from_node", attempt=2)
    assert back.replayed is True
    assert back.output == {"orderId": "N", "by": "node"}
