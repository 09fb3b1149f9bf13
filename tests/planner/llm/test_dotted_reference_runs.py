"""Regression: a reference with a dotted path and a list index, planned and then run.

An input ``"$order.items.0.id"`` used to be a literal to the planner (both tasks in one
parallel group) and a reference to the dispatcher, which then refused the plan the
planner had accepted. Here the real planner service (its LLM strategy through the real
openai client, against the scripted server) plans it, and the real dispatcher runs it
against a fake worker, over a real nats-server.
"""

from __future__ import annotations

import json
import time

import msgspec
import pytest

from orra_dispatcher import setup as dispatcher_setup
from orra_events import (
    ActionSubmitted,
    Bus,
    DataField,
    OrchestrationDone,
    PlanCreated,
    TaskDispatched,
    Topology,
)
from orra_planner.app import setup as planner_setup
from orra_planner.settings import PlannerSettings
from tests.dispatcher.conftest import FAST, FakeWorker, Recorder
from tests.planner.catalog import obj, registered, string
from tests.planner.llm.conftest import ScriptedLlm, completion

ORDERS = registered(
    "OrderService",
    "Places an order and returns its items",
    obj({"orderId": string()}),
    obj(
        {
            "items": {
                "type": "array",
                "items": obj({"id": string(), "qty": {"type": "integer"}}),
            }
        }
    ),
)
CATALOGUE = registered(
    "CatalogueService",
    "Looks a product up in the catalogue",
    obj({"productId": string()}),
    obj({"name": string()}),
)
ANSWER = {
    "tasks": [
        {
            "id": "order",
            "service": "OrderService",
            "input": {"orderId": "ORD1"},
            "serves": "Place the order",
        },
        {
            "id": "lookup",
            "service": "CatalogueService",
            "input": {"productId": "$order.items.0.id"},
            "serves": "look its first product up",
        },
    ],
    "parallel_groups": [["order", "lookup"]],  # the model's groups are never trusted
    "parts": ["Place the order", "look its first product up"],
    "uncovered": [],
}


async def test_a_dotted_path_reference_is_planned_in_order_and_resolved_by_the_dispatcher(
    monkeypatch: pytest.MonkeyPatch,
    llm_server: ScriptedLlm,
    nats_url: str,
    topology: Topology,
    bus: Bus,
) -> None:
    monkeypatch.setenv("ORRA_LLM_BASE_URL", llm_server.url)
    monkeypatch.setenv("ORRA_LLM_API_KEY", "test-key")
    monkeypatch.setenv("ORRA_LLM_MODEL", "test-model")
    monkeypatch.setenv("ORRA_PLAN_CACHE", "off")
    llm_server.then(completion(json.dumps(ANSWER)))

    async def order(task: TaskDispatched) -> dict[str, object]:
        return {"items": [{"id": "P7", "qty": 2}, {"id": "P8", "qty": 1}]}

    async def catalogue(task: TaskDispatched) -> dict[str, object]:
        return {"name": f"product {task.input['productId']}"}

    worker = FakeWorker(bus, behaviours={"OrderService": order, "CatalogueService": catalogue})
    recorder = Recorder(bus)
    await worker.start()
    await recorder.start()
    pbus = await Bus.connect(nats_url, topology, name="planner-under-test")
    dbus = await Bus.connect(nats_url, topology, name="dispatcher-under-test")
    stop_planner = await planner_setup(pbus, PlannerSettings.from_env())
    stop_dispatcher = await dispatcher_setup(dbus, FAST)
    try:
        for event in (ORDERS, CATALOGUE):
            # Registered now: built at import, they would be older than the down time
            # (ORRA_SERVICE_DOWN_AFTER_S) in a long run, and the services would count as down.
            await bus.publish(msgspec.structs.replace(event, at=time.time()))
        await bus.publish(
            ActionSubmitted(
                event_id="a:o_dotted",
                orchestration_id="o_dotted",
                action="Place the order and look its first product up",
                data=[DataField("orderId", "ORD1")],
                mode="groups",
            )
        )
        end = await recorder.terminal("o_dotted", timeout=20.0)
    finally:
        await stop_dispatcher()
        await stop_planner()
        await dbus.close()
        await pbus.close()
        await recorder.stop()
        await worker.stop()

    planned = next(e for e in recorder.events if isinstance(e, PlanCreated))
    assert planned.planner == "llm"
    assert planned.plan.parallel_groups == [["order"], ["lookup"]]
    assert isinstance(end, OrchestrationDone), end
    (lookup,) = worker.dispatched("lookup")
    assert lookup.input == {"productId": "P7"}
    assert end.outputs["lookup"] == {"name": "product P7"}
