# ruff: noqa: N815 - camelCase wire field names
"""The shared contract cases of libs/orra_events/contract_cases, run against ``orra_sdk``.

The TypeScript SDK runs the same files (sdks/typescript/test/contract.test.ts), so a work
message gets the same outcome, and a parked one the same dead-letter reason, from a Python
and from a Node replica of a service; both SDKs hash a definition and key an idempotency
record alike.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

import pytest
from pydantic import BaseModel, Field

from orra_events import Bus, TaskCompensated, TaskCompleted, TaskFailed
from orra_events.registrations import definition_hash
from orra_events.versions import canonical_version
from orra_sdk import RevertTask, Service, Task, schema_hash
from orra_sdk._results import kv_key
from tests.sdk.conftest import EventLog, work_left

CASES = Path(__file__).resolve().parents[2] / "libs" / "orra_events" / "contract_cases"
WORK = json.loads((CASES / "work_messages.json").read_text(encoding="utf-8"))
RULES = json.loads((CASES / "sdk_rules.json").read_text(encoding="utf-8"))


def payload(case: dict[str, Any]) -> bytes:
    if "raw" in case:
        return str(case["raw"]).encode()
    # the same bytes as JSON.stringify: no spaces, non-ASCII kept
    return json.dumps(case["message"], separators=(",", ":"), ensure_ascii=False).encode()


@pytest.mark.parametrize("case", RULES["schema_hash"], ids=lambda c: c["definition"]["name"])
def test_canonical_json_and_schema_hash(case: dict[str, Any]) -> None:
    definition = case["definition"]
    hashed = {k: v for k, v in definition.items() if k != "examples" or v}
    hashed["version"] = canonical_version(definition["version"])
    canonical = json.dumps(hashed, sort_keys=True, separators=(",", ":"))
    assert canonical == case["canonical"]
    assert hashlib.sha256(canonical.encode()).hexdigest()[:16] == case["hash"]
    assert definition_hash(**definition) == case["hash"]
    assert schema_hash(definition) == case["hash"]


class Order(BaseModel):
    orderId: str
    amount: float = Field(gt=0.5, description="Amount in €, tax included")
    items: list[str] | None = None


class Charge(BaseModel):
    transactionId: str
    status: Literal["confirmed", "declined"]


def test_a_pydantic_service_registers_the_shared_definition() -> None:
    # The TypeScript test declares a service with these JSON Schemas and gets the same hash.
    (case,) = [c for c in RULES["schema_hash"] if c["definition"]["name"] == "PaymentService"]
    definition = case["definition"]
    svc = Service(
        name="PaymentService",
        description=definition["description"],
        input=Order,
        output=Charge,
        revertible=True,
        version="2",
        kind="agent",
    )
    assert svc.input_schema == definition["input_schema"]
    assert svc.output_schema == definition["output_schema"]
    assert svc.schema_hash == case["hash"]


@pytest.mark.parametrize("case", RULES["kv_key"], ids=lambda c: repr(c["idempotency_key"]))
def test_idempotency_record_keys(case: dict[str, str]) -> None:
    assert kv_key(case["service"], case["idempotency_key"]) == case["kv_key"]


class ContractIn(BaseModel):
    orderId: str


class ContractOut(BaseModel):
    ok: bool


async def test_every_work_message_gets_its_shared_outcome(
    bus: Bus, events: EventLog, make_client: Any
) -> None:
    svc = Service(
        name=WORK["service"],
        description="Contract cases",
        input=ContractIn,
        output=ContractOut,
        revertible=True,
    )
    ran: list[str] = []
    reverted: list[str] = []

    @svc.handler
    async def handle(task: Task[ContractIn]) -> dict[str, Any]:
        ran.append(task.task_id)
        return {} if task.input.orderId == "BADOUT" else {"ok": True}

    @svc.revert
    async def undo(task: RevertTask[ContractIn, ContractOut]) -> None:
        reverted.append(task.task_id)

    client = make_client()
    await client.connect()
    await client.start(svc)

    subject = bus.topology.work(WORK["service"])
    by_seq: dict[int, dict[str, Any]] = {}
    for case in WORK["cases"]:
        ack = await bus.js.publish(subject, payload(case))
        by_seq[ack.seq] = case

    for case in WORK["cases"]:
        task_id = (case.get("message") or {}).get("task_id")
        if case["outcome"] == "run":
            await events.wait(TaskCompleted, task_id=task_id)
        elif case["outcome"] == "revert":
            await events.wait(TaskCompensated, task_id=task_id)
        elif case["outcome"] == "fail":
            (failed,) = await events.wait(TaskFailed, task_id=task_id)
            assert (failed.error, failed.retryable) == (case["error"], case["retryable"]), case
    parks = [c for c in WORK["cases"] if c["outcome"] == "park"]
    assert await work_left(bus) == 0
    info = await bus.js.stream_info(bus.topology.dlq_stream)
    assert info.state.messages == len(parks)
    reasons: dict[str, str] = {}
    for seq in range(info.state.first_seq, info.state.last_seq + 1):
        stored = await bus.js.get_msg(bus.topology.dlq_stream, seq)
        headers = stored.headers or {}
        case = by_seq[int(headers["Orra-Original-Sequence"])]
        assert stored.subject == bus.topology.dead_letter(subject)
        assert headers["Orra-Original-Subject"] == subject
        assert stored.data == payload(case)
        reasons[case["name"]] = headers["Orra-Dead-Letter-Reason"]
    for case in parks:
        reason = reasons[case["name"]]
        if "reason" in case:
            assert reason == case["reason"].replace("{work_subject}", subject), case["name"]
        else:
            assert reason.startswith(case["reason_prefix"]), (case["name"], reason)
    tasks = [
        c["message"]["task_id"]
        for c in WORK["cases"]
        if c["outcome"] == "run" or c.get("message", {}).get("task_id") == "output_invalid"
    ]
    assert sorted(ran) == sorted(tasks)
    assert sorted(reverted) == sorted(
        c["message"]["task_id"] for c in WORK["cases"] if c["outcome"] == "revert"
    )
