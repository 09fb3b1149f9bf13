"""The planner service picks its strategy from the environment: the LLM when ORRA_LLM_* is
set (through the real openai client against the scripted server), the offline planner
otherwise. Both append their plan through the same handler and validation."""

from __future__ import annotations

import json

import pytest

from orra_events import Bus, PlanCreated, PlanFailed, Topology
from orra_planner.app import setup
from orra_planner.settings import PlannerSettings
from tests.planner.catalog import action
from tests.planner.llm.conftest import ScriptedLlm, completion
from tests.planner.test_app import plan_event, register

LLM_ENV = (
    "ORRA_LLM_BASE_URL",
    "ORRA_LLM_API_KEY",
    "ORRA_LLM_MODEL",
    "OPENAI_BASE_URL",
    "OPENAI_API_KEY",
)

PLAN = {
    "parts": ["Process order payment", "update inventory"],
    "tasks": [
        {
            "id": "payment",
            "service": "PaymentService",
            "serves": "Process order payment",
            "input": {"orderId": "ORD1", "amount": 12.5},
        },
        {
            "id": "inventory",
            "service": "InventoryService",
            "serves": "update inventory",
            "input": {"productId": "P1"},
        },
    ],
    "uncovered": [],
    "parallel_groups": [["payment", "inventory"]],
}


async def _plan_once(
    nats_url: str, topology: Topology, bus: Bus, orch: str
) -> PlanCreated | PlanFailed:
    pbus = await Bus.connect(nats_url, topology, name="planner-under-test")
    stop = await setup(pbus, PlannerSettings.from_env())
    try:
        await register(bus)
        await bus.publish(
            action(
                orch,
                "Process order payment and update inventory",
                orderId="ORD1",
                amount=12.5,
                productId="P1",
            )
        )
        return await plan_event(bus, orch)
    finally:
        await stop()
        await pbus.close()


async def test_llm_configured_plans_through_the_model(
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
    llm_server.then(completion(json.dumps(PLAN)))

    event = await _plan_once(nats_url, topology, bus, "o_llmwired")

    assert isinstance(event, PlanCreated), event
    assert event.planner == "llm"
    assert event.model == "test-model"
    assert event.usage is not None
    assert event.usage["total_tokens"] == 120
    assert event.plan.parallel_groups == [
        ["inventory", "payment"]
    ] or event.plan.parallel_groups == [["payment", "inventory"]]
    assert llm_server.chat_count == 1


async def test_no_llm_configured_uses_the_offline_planner(
    monkeypatch: pytest.MonkeyPatch,
    llm_server: ScriptedLlm,
    nats_url: str,
    topology: Topology,
    bus: Bus,
) -> None:
    for name in LLM_ENV:
        monkeypatch.delenv(name, raising=False)

    event = await _plan_once(nats_url, topology, bus, "o_offwired")

    assert isinstance(event, PlanCreated), event
    assert event.planner == "offline"
    assert llm_server.chat_count == 0
