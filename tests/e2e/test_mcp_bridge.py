"""The MCP bridge end to end: a real MCP server (tests/mcp/toolserver.py, the MCP SDK's server
API) bridged by ``python -m orra_mcp`` into a namespace where a real planner and dispatcher
run, beside a native SDK service; every message crosses real stdio pipes, HTTP and NATS.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from orra_events import (
    Bus,
    OrchestrationDone,
    OrchestrationFailed,
    PlanCreated,
    PlanFailed,
    ServiceRegistered,
    TaskCompensationAbandoned,
    TaskDispatched,
    TaskFailed,
    TaskProgress,
    TaskRetrying,
    decode,
)
from tests.e2e.conftest import Watcher, submit
from tests.e2e.processes import Proc, Processes
from tests.e2e.stack_fixtures import free_port

pytestmark = pytest.mark.e2e

TOOLSERVER = Path(__file__).resolve().parents[1] / "mcp" / "toolserver.py"

VOUCHER_DESK = """
import orra_sdk
from pydantic import BaseModel
from orra_sdk import Service, Task


class Recipient(BaseModel):
    email: str
    tier: str


class Voucher(BaseModel):
    voucherCode: str


desk = Service(
    name="VoucherDesk",
    description="Send a discount voucher to a customer's email for their loyalty tier",
    input=Recipient,
    output=Voucher,
    examples=["send a voucher", "give the customer a discount voucher"],
)


@desk.handler
async def send(task: Task[Recipient]) -> Voucher:
    return Voucher(voucherCode=f"{task.input.tier.upper()}-{task.input.email}")


orra_sdk.run(desk)
"""


def write_config(tmp_path: Path, server: dict[str, Any], name: str = "tools") -> Path:
    path = tmp_path / "mcp.yaml"
    path.write_text(json.dumps({"mcpServers": {name: server}}))  # JSON is YAML too
    return path


def stdio_server(tmp_path: Path, **env: str) -> dict[str, Any]:
    return {
        "command": sys.executable,
        "args": [str(TOOLSERVER)],
        "env": {
            "TOOLSERVER_EFFECTS": str(tmp_path / "tool-effects.jsonl"),
            "TOOLSERVER_PID_FILE": str(tmp_path / "toolserver.pid"),
            **env,
        },
    }


def start_bridge(procs: Processes, config: Path, **env: str) -> Proc:
    return procs.start(
        "bridge",
        "orra_mcp",
        "--config",
        str(config),
        ORRA_HEARTBEAT_INTERVAL_S="0.2",
        ORRA_MCP_PROBE_S="1",
        **env,
    )


def tool_calls(tmp_path: Path, tool: str) -> list[dict[str, Any]]:
    path = tmp_path / "tool-effects.jsonl"
    if not path.exists():
        return []
    calls = [json.loads(line) for line in path.read_text().splitlines()]
    return [c for c in calls if c["tool"] == tool]


async def registered(bus: Bus, service: str, timeout_s: float = 20.0) -> ServiceRegistered:
    """The registration of ``service`` (its highest version), once there is one."""
    topology = bus.topology
    prefix = topology.service_subject("service.registered", service, None)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        info = await bus.js.stream_info(topology.services_stream, subjects_filter=f"{prefix}.*")
        subjects = sorted(info.state.subjects or {})
        if subjects:
            raw = await bus.js.get_last_msg(topology.services_stream, subjects[-1])
            event = decode(raw.data or b"")
            assert isinstance(event, ServiceRegistered)
            return event
        await asyncio.sleep(0.1)
    raise AssertionError(f"{service} was never registered")


def program(procs: Processes, tmp_path: Path, name: str, source: str) -> Proc:
    path = tmp_path / f"{name}.py"
    path.write_text(textwrap.dedent(source))
    proc = Proc(name, [str(path)], dict(procs.base_env), procs.log_dir)
    procs.procs[name] = proc
    return proc.start()


async def test_an_action_runs_across_an_mcp_tool_and_a_native_service(
    bus: Bus, procs: Processes, watcher: Watcher, tmp_path: Path
) -> None:
    procs.start("planner", "orra_planner")
    procs.start("dispatcher", "orra_dispatcher")
    config = write_config(tmp_path, {**stdio_server(tmp_path), "tools": ["lookup_customer"]})
    start_bridge(procs, config)
    program(procs, tmp_path, "voucherdesk", VOUCHER_DESK)
    lookup = await registered(bus, "tools-lookup_customer")
    assert lookup.input_schema["required"] == ["customerId"]
    assert lookup.output_schema["required"] == ["customerId", "email", "tier"]
    assert lookup.description.startswith("Look up a customer. Find a customer's email")
    assert lookup.retry_on_timeout  # read-only: retried freely

    orch = await submit(bus, "Look up the customer and send them a voucher", {"customerId": "C42"})
    done = await watcher.terminal(orch)
    plan = next(e for e in watcher.of(orch, PlanCreated))
    assert isinstance(plan, PlanCreated)
    assert isinstance(done, OrchestrationDone), watcher.of(orch)
    by_service = {t.service: t for t in plan.plan.tasks}
    assert set(by_service) == {"tools-lookup_customer", "VoucherDesk"}
    lookup_task = by_service["tools-lookup_customer"]
    assert lookup_task.input == {"customerId": "C42"}
    assert by_service["VoucherDesk"].input == {
        "email": f"${lookup_task.id}.email",
        "tier": f"${lookup_task.id}.tier",
    }
    # The MCP tool's structured result is its task's output, passed on to the native service.
    assert done.outputs[lookup_task.id] == {
        "customerId": "C42",
        "email": "c42@example.com",
        "tier": "gold",
    }
    assert done.outputs[by_service["VoucherDesk"].id] == {"voucherCode": "GOLD-c42@example.com"}
    # The tool's progress notification became a task.progress update.
    progress = [e for e in watcher.of(orch, TaskProgress) if isinstance(e, TaskProgress)]
    assert [p.update for p in progress] == [
        {"progress": 1.0, "total": 2.0, "message": "looking the customer up"}
    ]
    assert len(tool_calls(tmp_path, "lookup_customer")) == 1
    assert len(tool_calls(tmp_path, "send_voucher")) == 0  # not in the bridge's allow-list


async def test_a_destructive_tool_that_times_out_is_not_retried_but_left_for_an_operator(
    bus: Bus, procs: Processes, watcher: Watcher, tmp_path: Path
) -> None:
    procs.start("planner", "orra_planner")
    procs.start(
        "dispatcher",
        "orra_dispatcher",
        ORRA_DISPATCHER_TASK_TIMEOUT_S="1.5",
        ORRA_DISPATCHER_RETRY_BASE_S="0.1",
    )
    config = write_config(tmp_path, stdio_server(tmp_path, TOOLSERVER_VOUCHER_DELAY_S="4"))
    start_bridge(procs, config)
    voucher = await registered(bus, "tools-send_voucher")
    assert voucher.retry_on_timeout is False  # destructive, not idempotent
    assert (await registered(bus, "tools-lookup_customer")).retry_on_timeout is True

    orch = await submit(bus, "Send a voucher", {"email": "ann@example.com", "tier": "gold"})
    failed = await watcher.terminal(orch)
    assert isinstance(failed, OrchestrationFailed), watcher.of(orch)
    assert re.search(
        r"task '\S+' \(tools-send_voucher\) timed out after 1.5s .* on attempt 1 and is not run "
        r"again: whether it took effect is unknown; an operator must check tools-send_voucher",
        failed.error,
    ), failed.error
    assert not watcher.of(orch, TaskRetrying)
    assert len(list(watcher.of(orch, TaskDispatched))) == 1
    (left,) = watcher.of(orch, TaskCompensationAbandoned)
    assert isinstance(left, TaskCompensationAbandoned)
    assert left.service == "tools-send_voucher"
    assert left.input == {"email": "ann@example.com", "tier": "gold"}
    await asyncio.sleep(3.0)  # the tool call itself finishes; nothing calls it again
    assert len(tool_calls(tmp_path, "send_voucher")) == 1


async def test_the_planner_sees_the_tool_list_change_and_bad_tools_are_skipped(
    bus: Bus, procs: Processes, watcher: Watcher, tmp_path: Path
) -> None:
    procs.start("planner", "orra_planner")
    procs.start("dispatcher", "orra_dispatcher")
    config = write_config(
        tmp_path, stdio_server(tmp_path, TOOLSERVER_BAD_TOOLS="1", TOOLSERVER_BAD_OUTPUT="1")
    )
    bridge = start_bridge(procs, config)
    await registered(bus, "tools-lookup_customer")
    await registered(bus, "tools-send_voucher")
    # Both bad tools are reported by name, with the reason; the others still serve.
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not _skipped(bridge, "send email!"):
        await asyncio.sleep(0.1)
    assert "no-such-type" in _skipped(bridge, "broken_schema")
    assert "not a valid service name" in _skipped(bridge, "send email!")

    before = await submit(bus, "Look up the order status", {"orderNumber": "N-7"})
    refused = await watcher.wait_for(before, PlanFailed)
    assert isinstance(refused, PlanFailed)  # no service looks orders up yet

    pid = int((tmp_path / "toolserver.pid").read_text())
    os.kill(pid, signal.SIGUSR1)  # the server adds lookup_order and sends tools/list_changed
    await registered(bus, "tools-lookup_order", timeout_s=5.0)
    after = await submit(bus, "Look up the order status", {"orderNumber": "N-7"})
    done = await watcher.terminal(after)
    assert isinstance(done, OrchestrationDone), watcher.of(after)
    (output,) = done.outputs.values()
    assert json.loads(output["text"]) == {"orderNumber": "N-7", "status": "shipped"}

    # A result that breaks the tool's outputSchema fails the task with the validation error.
    bad = await submit(bus, "Look up the customer", {"customerId": "C9"})
    failed = await watcher.terminal(bad)
    assert isinstance(failed, OrchestrationFailed)
    (task_failed,) = watcher.of(bad, TaskFailed)
    assert isinstance(task_failed, TaskFailed)
    assert not task_failed.retryable
    assert "7 is not of type 'string'" in task_failed.error, task_failed.error

    # isError fails the task with the tool's text; a read-only tool is retried freely.
    unknown = await submit(bus, "Look up the customer", {"customerId": "UNKNOWN"})
    assert isinstance(await watcher.terminal(unknown), OrchestrationFailed)
    failures = [e for e in watcher.of(unknown, TaskFailed) if isinstance(e, TaskFailed)]
    assert len(failures) == 3  # ORRA_DISPATCHER_MAX_ATTEMPTS
    assert all(f.retryable for f in failures)
    assert "reported an error: no customer UNKNOWN" in failures[0].error, failures[0].error
    assert len(watcher.of(unknown, TaskRetrying)) == 2


def _skipped(bridge: Proc, tool: str) -> str:
    for line in bridge.lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if record.get("event") == "MCP tool skipped" and f"tool {tool!r}" in record["reason"]:
            return str(record["reason"])
    return ""


async def test_an_http_mcp_server_killed_mid_task_fails_the_task_and_its_services_go_down(
    bus: Bus, procs: Processes, watcher: Watcher, tmp_path: Path
) -> None:
    procs.start("planner", "orra_planner", ORRA_SERVICE_DOWN_AFTER_S="2")
    procs.start("dispatcher", "orra_dispatcher", ORRA_DISPATCHER_TASK_TIMEOUT_S="30")
    port = free_port()
    env = {**procs.base_env, **stdio_server(tmp_path, TOOLSERVER_VOUCHER_DELAY_S="30")["env"]}
    server = await asyncio.create_subprocess_exec(
        sys.executable, str(TOOLSERVER), "--http", str(port), env=env
    )
    try:
        config = write_config(
            tmp_path,
            {"url": f"http://127.0.0.1:{port}/mcp", "headers": {"X-Api-Key": "${TOOLS_KEY}"}},
        )
        start_bridge(procs, config, TOOLS_KEY="k-123")
        await registered(bus, "tools-send_voucher")
        orch = await submit(bus, "Send a voucher", {"email": "bo@example.com", "tier": "gold"})
        await watcher.wait_for(orch, TaskDispatched)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not tool_calls(tmp_path, "send_voucher"):
            await asyncio.sleep(0.05)
        assert tool_calls(tmp_path, "send_voucher")  # the call reached the server
        server.kill()
        killed_at = time.monotonic()
        failed = await watcher.wait_for(orch, TaskFailed, timeout_s=10)
        assert time.monotonic() - killed_at < 5, "the task failure took too long"
        assert isinstance(failed, TaskFailed)
        assert not failed.retryable
        assert failed.outcome_unknown
        assert "MCP server 'tools' closed the connection during the call" in failed.error, (
            failed.error
        )
        end = await watcher.terminal(orch)
        assert isinstance(end, OrchestrationFailed)
        assert "an operator must check tools-send_voucher" in end.error

        # Its services stop heartbeating: down after ORRA_SERVICE_DOWN_AFTER_S, out of plans.
        await asyncio.sleep(2.5)
        later = await submit(bus, "Send a voucher", {"email": "cy@example.com", "tier": "gold"})
        refused = await watcher.wait_for(later, PlanFailed)
        assert isinstance(refused, PlanFailed)
        assert any("tools-send_voucher has had no live instance" in r for r in refused.reasons), (
            refused.reasons
        )
    finally:
        if server.returncode is None:
            server.kill()
        await server.wait()
