"""Coverage with the LLM planner: the model's structured answer carries it, the repair loop
challenges an inconsistent one, and the shared gate refuses uncovered parts by default.

The real ``openai`` client talks to the scripted OpenAI-compatible server of conftest; the
strategy is the one the planner service runs (``LlmStrategy`` + ``finalize``).
"""

from __future__ import annotations

import json
from typing import Any

from orra_events import DataField, ServiceRegistered
from orra_planner.llm import LlmPlanner, LlmSettings
from orra_planner.llm.strategy import LlmStrategy
from orra_planner.registry import ServiceCatalog, ServiceSpec
from orra_planner.strategy import Planned, PlanRejected, PlanRequest, finalize

from .conftest import ScriptedLlm

ACTION = "Charge the order and check stock"
DATA = (DataField("orderId", "ORD1"), DataField("amount", "12.5"), DataField("productId", "P1"))

PAYMENT = {
    "id": "payment",
    "service": "PaymentService",
    "serves": "Charge the order",
    "input": {"orderId": "ORD1", "amount": "12.5"},
}
STOCK = {
    "id": "inventory",
    "service": "InventoryService",
    "serves": "check stock",
    "input": {"productId": "P1"},
}


def answer(
    tasks: list[dict[str, Any]],
    parts: list[str] | None = None,
    uncovered: list[dict[str, str]] | None = None,
) -> str:
    return json.dumps(
        {
            "not_actionable": False,
            "reason": "",
            "parts": ["Charge the order", "check stock"] if parts is None else parts,
            "tasks": tasks,
            "uncovered": uncovered or [],
            "parallel_groups": [],
        }
    )


def request(
    services: list[ServiceRegistered],
    *,
    action: str = ACTION,
    allow_partial: bool = False,
    data: tuple[DataField, ...] = DATA,
) -> PlanRequest:
    catalog = ServiceCatalog.of("default", [ServiceSpec.from_event(s) for s in services])
    return PlanRequest("o_cov", action, data, catalog, allow_partial=allow_partial)


async def run(settings: LlmSettings, req: PlanRequest) -> Planned | PlanRejected:
    strategy = LlmStrategy(LlmPlanner(settings))
    try:
        return finalize(await strategy.plan(req), req)
    finally:
        await strategy.aclose()


def repair_prompt(llm: ScriptedLlm, attempt: int) -> str:
    return str(llm.requests[attempt]["messages"][-1]["content"])


async def test_the_structured_answer_carries_coverage_into_the_plan(
    llm_server: ScriptedLlm, settings: LlmSettings, services: list[ServiceRegistered]
) -> None:
    llm_server.then(answer([PAYMENT, STOCK]))
    outcome = await run(settings, request(services))
    assert isinstance(outcome, Planned), outcome
    assert outcome.plan.parts == ["Charge the order", "check stock"]
    assert {t.id: t.serves for t in outcome.plan.tasks} == {
        "payment": "Charge the order",
        "inventory": "check stock",
    }
    schema = llm_server.requests[0]["response_format"]["json_schema"]["schema"]
    assert {"parts", "uncovered"} <= set(schema["required"])
    task_schema = schema["properties"]["tasks"]["items"]["anyOf"][0]
    assert "serves" in task_schema["required"]


async def test_a_task_that_serves_nothing_is_challenged(
    llm_server: ScriptedLlm, settings: LlmSettings, services: list[ServiceRegistered]
) -> None:
    stray = {
        "id": "delivery",
        "service": "DeliveryAgent",
        "serves": None,
        "input": {"orderId": "ORD1", "inStock": True},
    }
    llm_server.then(answer([PAYMENT, STOCK, stray]), answer([PAYMENT, STOCK]))
    outcome = await run(settings, request(services))
    assert isinstance(outcome, Planned), outcome
    assert outcome.attempts == 2
    assert [t.service for t in outcome.plan.tasks] == ["PaymentService", "InventoryService"]
    challenge = repair_prompt(llm_server, 1)
    assert "serves_nothing: task 'delivery' (DeliveryAgent) serves no part" in challenge


async def test_a_part_left_out_of_the_parts_is_challenged(
    llm_server: ScriptedLlm, settings: LlmSettings, services: list[ServiceRegistered]
) -> None:
    llm_server.then(answer([PAYMENT], parts=["Charge the order"]), answer([PAYMENT, STOCK]))
    outcome = await run(settings, request(services))
    assert isinstance(outcome, Planned), outcome
    assert outcome.attempts == 2
    assert "part_missing: the action asks for 'check stock'" in repair_prompt(llm_server, 1)


async def test_a_part_declared_uncovered_that_a_service_plainly_serves_is_challenged(
    llm_server: ScriptedLlm, settings: LlmSettings, services: list[ServiceRegistered]
) -> None:
    lazy = [{"part": "check stock", "reason": "no service checks stock"}]
    llm_server.then(answer([PAYMENT], uncovered=lazy), answer([PAYMENT, STOCK]))
    outcome = await run(settings, request(services, allow_partial=True))
    assert isinstance(outcome, Planned), outcome
    assert outcome.attempts == 2
    assert outcome.plan.uncovered == []
    assert (
        "plainly_served: part 'check stock' is listed as uncovered, but InventoryService "
        "plainly serves it" in repair_prompt(llm_server, 1)
    )


async def test_an_honestly_uncovered_part_is_refused_by_default_and_listed_when_partial(
    llm_server: ScriptedLlm, settings: LlmSettings, services: list[ServiceRegistered]
) -> None:
    action = "Charge the order and translate the invoice into French"
    parts = ["Charge the order", "translate the invoice into French"]
    gap = [
        {
            "part": "translate the invoice into French",
            "reason": "nothing registered can translate: 'translate the invoice into French'",
        }
    ]
    reply = answer([PAYMENT], parts=parts, uncovered=gap)
    llm_server.then(reply, reply)
    data = DATA[:2]
    refused = await run(settings, request(services, action=action, data=data))
    assert isinstance(refused, PlanRejected)
    assert refused.status == "not_actionable"
    assert refused.reasons[0] == gap[0]["reason"]
    assert [u.part for u in refused.uncovered] == ["translate the invoice into French"]

    partial = await run(settings, request(services, action=action, allow_partial=True, data=data))
    assert isinstance(partial, Planned), partial
    assert [(u.part, u.reason) for u in partial.plan.uncovered] == [
        (gap[0]["part"], gap[0]["reason"])
    ]


async def test_parts_that_are_not_the_users_words_are_challenged(
    llm_server: ScriptedLlm, settings: LlmSettings, services: list[ServiceRegistered]
) -> None:
    reworded = {**PAYMENT, "serves": "take payment for the order"}
    llm_server.then(
        answer([reworded, STOCK], parts=["take payment for the order", "check stock"]),
        answer([PAYMENT, STOCK]),
    )
    outcome = await run(settings, request(services))
    assert isinstance(outcome, Planned), outcome
    assert "part_not_in_action: part 'take payment for the order'" in repair_prompt(llm_server, 1)
