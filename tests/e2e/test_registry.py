"""Registry semantics end to end, with real processes: the README's bug, upgrades, down services.

The bug this guards against: a program registering ``PaymentService`` with another schema
beside the demo replaced the demo's schema; two programs then served the name alternately,
the seed's order action dropped the payment and completed "processed" without a charge,
and the registry kept the other schema after that program stopped.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from orra_events import (
    Bus,
    OrchestrationDone,
    PlanCreated,
    PlanFailed,
    ServiceRegistered,
    TaskCompleted,
    decode,
)
from tests.e2e.conftest import Watcher, submit
from tests.e2e.processes import Proc, Processes
from tests.e2e.test_pipeline import NEW_ORDER, NEW_ORDER_DATA, effects, start_pipeline

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]

# The README's example as it was: another PaymentService (here at the demo's version).
CONFLICTING = """
from pydantic import BaseModel
import orra_sdk
from orra_sdk import Service, Task


class Order(BaseModel):
    orderId: str
    amount: float


class Charge(BaseModel):
    transactionId: str


payments = Service(name="PaymentService", description="Charge a customer for an order.",
                   input=Order, output=Charge, revertible=False, version="2")


@payments.handler
async def charge(task: Task[Order]) -> Charge:
    return Charge(transactionId=f"TXN-{task.input.orderId}")


if __name__ == "__main__":
    orra_sdk.run(payments)
"""

# A service whose version, delay and concurrency come from the environment.
GREETER = """
import asyncio
import os
from pydantic import BaseModel
import orra_sdk
from orra_sdk import Service, Task

VERSION = os.environ["GREETER_VERSION"]


class Visitor(BaseModel):
    visitorName: str


class Greeting(BaseModel):
    greeting: str
    servedBy: str


greeter = Service(
    name="VisitorGreeter",
    description="Greet a visitor by name" + (" in their language" if VERSION != "1" else ""),
    input=Visitor, output=Greeting, version=VERSION, concurrency=1,
)


@greeter.handler
async def greet(task: Task[Visitor]) -> Greeting:
    await asyncio.sleep(float(os.environ.get("GREETER_DELAY_S", "0")))
    return Greeting(greeting=f"Hello {task.input.visitorName}", servedBy=VERSION)


orra_sdk.run(greeter)
"""


def program(procs: Processes, tmp_path: Path, name: str, source: str, **env: str) -> Proc:
    path = tmp_path / f"{name}.py"
    path.write_text(textwrap.dedent(source))
    proc = Proc(name, [str(path)], {**procs.base_env, **env}, procs.log_dir)
    procs.procs[name] = proc
    return proc.start()


def run_to_exit(base_env: dict[str, str], path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(path)],
        env=base_env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def registration(bus: Bus, name: str, version: str) -> ServiceRegistered:
    raw = await bus.js.get_last_msg(
        bus.topology.services_stream,
        bus.topology.service_subject("service.registered", name, version),
    )
    event = decode(raw.data or b"")
    assert isinstance(event, ServiceRegistered)
    return event


def readme_example() -> str:
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Your own service or agent") :]
    match = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert match is not None
    return match.group(1)


async def test_another_payment_service_beside_the_demo_is_refused_and_the_order_is_charged(
    bus: Bus, procs: Processes, watcher: Watcher, base_env: dict[str, str], tmp_path: Path
) -> None:
    start_pipeline(procs)
    demo = await registration(bus, "PaymentService", "2")

    path = tmp_path / "payments.py"
    path.write_text(textwrap.dedent(CONFLICTING))
    refused = await asyncio.to_thread(run_to_exit, base_env, path)

    assert refused.returncode == 2, refused.stderr
    assert "service PaymentService version 2 is already registered with another definition" in (
        refused.stderr
    )
    assert "give this service another name, or raise its version" in refused.stderr
    # the registry keeps the demo's definition, after the program stopped too
    kept = await registration(bus, "PaymentService", "2")
    assert (kept.schema_hash, kept.input_schema) == (demo.schema_hash, demo.input_schema)

    orch = await submit(bus, NEW_ORDER, NEW_ORDER_DATA)
    done = await watcher.terminal(orch)
    assert isinstance(done, OrchestrationDone), done
    (plan,) = watcher.of(orch, PlanCreated)
    payment = next(t for t in plan.plan.tasks if t.service == "PaymentService")  # type: ignore[attr-defined]
    assert payment.version == "2"
    assert "items" in payment.input  # the demo's input, not the other program's
    assert done.results["paymentStatus"] == "confirmed"
    assert done.results["orderStatus"] == "processed"
    charged = [
        e
        for e in effects(base_env)
        if e["orchestration_id"] == orch and e["service"] == "PaymentService"
    ]
    assert [e["outcome"] for e in charged] == ["completed"]


async def test_a_lower_version_beside_the_demo_does_not_replace_it(
    bus: Bus, procs: Processes, watcher: Watcher, base_env: dict[str, str], tmp_path: Path
) -> None:
    """The old README example (version 1) runs beside the demo (version 2): plans keep 2."""
    start_pipeline(procs)
    program(procs, tmp_path, "old_readme", CONFLICTING.replace('version="2"', 'version="1"'))
    for n in range(3):
        orch = await submit(bus, NEW_ORDER, {**NEW_ORDER_DATA, "orderId": f"ORD{n}"})
        done = await watcher.terminal(orch)
        assert isinstance(done, OrchestrationDone), done
        assert done.results["paymentStatus"] == "confirmed"
        charged = {
            e["pid"]
            for e in effects(base_env)
            if e["orchestration_id"] == orch and e["service"] == "PaymentService"
        }
        assert len(charged) == 1  # the demo charged it, the other program never ran it


async def test_the_readme_example_runs_beside_the_demo(
    bus: Bus, procs: Processes, watcher: Watcher, tmp_path: Path
) -> None:
    start_pipeline(procs)
    program(procs, tmp_path, "readme", readme_example())
    orch = await submit(
        bus, "Award loyalty points for the purchase", {"customerId": "CUST1", "amount": 42}
    )
    done = await watcher.terminal(orch)
    assert isinstance(done, OrchestrationDone), done
    (plan,) = watcher.of(orch, PlanCreated)
    assert [t.service for t in plan.plan.tasks] == ["LoyaltyService"]  # type: ignore[attr-defined]
    assert done.results == {"pointsAwarded": 42}
    registered = await registration(bus, "LoyaltyService", "1")
    assert registered.examples == [
        "give the customer reward points",
        "credit their loyalty account",
    ]


async def test_a_higher_version_replaces_for_new_plans_while_planned_tasks_keep_theirs(
    bus: Bus, procs: Processes, watcher: Watcher, tmp_path: Path
) -> None:
    procs.start("planner", "orra_planner")
    procs.start("dispatcher", "orra_dispatcher")
    program(procs, tmp_path, "greeter1", GREETER, GREETER_VERSION="1", GREETER_DELAY_S="2")
    running = await submit(bus, "Greet the visitor", {"visitorName": "Ann"})
    queued = await submit(bus, "Greet the visitor", {"visitorName": "Bob"})
    for orch in (running, queued):
        plan = await watcher.wait_for(orch, PlanCreated)
        assert [t.version for t in plan.plan.tasks] == ["1"]  # type: ignore[attr-defined]
    # the rolling upgrade starts while Ann's task runs and Bob's waits for the one slot
    program(procs, tmp_path, "greeter2", GREETER, GREETER_VERSION="2")
    newer = await submit(bus, "Greet the visitor", {"visitorName": "Cy"})
    plan = await watcher.wait_for(newer, PlanCreated)
    assert [t.version for t in plan.plan.tasks] == ["2"]  # type: ignore[attr-defined]

    served = {}
    for orch in (running, queued, newer):
        done = await watcher.terminal(orch, timeout_s=60)
        assert isinstance(done, OrchestrationDone), done
        (result,) = watcher.of(orch, TaskCompleted)
        served[orch] = result.output["servedBy"]  # type: ignore[attr-defined]
    # version 2 was idle and took none of the tasks planned against version 1
    assert served == {running: "1", queued: "1", newer: "2"}


async def test_a_service_with_no_live_instance_is_left_out_of_new_plans(
    bus: Bus, procs: Processes, watcher: Watcher
) -> None:
    procs.start("planner", "orra_planner", ORRA_SERVICE_DOWN_AFTER_S="2")
    procs.start("dispatcher", "orra_dispatcher")
    procs.start("examples0", "orra_examples", ORRA_HEARTBEAT_INTERVAL_S="0.2")
    up = await submit(bus, NEW_ORDER, NEW_ORDER_DATA)
    assert isinstance(await watcher.terminal(up), OrchestrationDone)
    procs["examples0"].stop()
    stopped = time.monotonic()
    await asyncio.sleep(max(0.0, 2.5 - (time.monotonic() - stopped)))
    down = await submit(bus, NEW_ORDER, NEW_ORDER_DATA)
    failed = await watcher.wait_for(down, PlanFailed)
    assert failed.status == "not_actionable"  # type: ignore[attr-defined]
    reasons: list[Any] = failed.reasons  # type: ignore[attr-defined]
    assert any(
        re.fullmatch(
            r"PaymentService has had no live instance for \d+ s: it is left out of new plans "
            r"until an instance of it runs again",
            reason,
        )
        for reason in reasons
    ), reasons
