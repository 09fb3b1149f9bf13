"""The LLM planner over HTTP: the real openai client against a scripted server."""

from __future__ import annotations

import asyncio
import json
import time

import msgspec
import pytest

from orra_events import DataField
from orra_planner.llm import LlmPlanner, LlmSettings, PlanCache, parse_groundings

from .conftest import completion, error

ACTION = "Process new order and arrange optimal delivery"
DATA = [
    DataField("orderId", "ORD123"),
    DataField("amount", "299.99"),
    DataField("productId", "PROD456"),
]

GOOD = {
    "tasks": [
        {
            "id": "payment",
            "service": "PaymentService",
            "input": {"orderId": "ORD123", "amount": "299.99"},
        },
        {"id": "inventory", "service": "InventoryService", "input": {"productId": "PROD456"}},
        {
            "id": "delivery",
            "service": "DeliveryAgent",
            "input": {"orderId": "ORD123", "inStock": "$inventory.inStock"},
        },
    ],
    # Deliberately poor groups: the planner recomputes them from the references.
    "parallel_groups": [["payment"], ["inventory"], ["delivery"]],
}

HALLUCINATED = {
    "tasks": [
        {
            "id": "payment",
            "service": "PaymentService",
            "input": {"orderId": "ORD123", "amount": "299.99"},
        },
        {"id": "ship", "service": "ShippingService", "input": {"orderId": "ORD123"}},
    ],
    "parallel_groups": [["payment", "ship"]],
}


def user_text(request: dict) -> str:
    return "\n".join(m["content"] for m in request["messages"] if m["role"] == "user")


async def plan(planner: LlmPlanner, services, validate, *, action=ACTION, data=DATA, **kw):
    return await planner.plan(
        action=action, data=list(data), services=services, validate=validate, **kw
    )


async def test_valid_plan(llm_server, settings, services, validate):
    llm_server.then(json.dumps(GOOD))
    async with LlmPlanner(settings) as planner:
        outcome = await plan(planner, services, validate)
    assert outcome.ok, outcome
    assert outcome.status is None
    assert outcome.planner == "llm"
    assert outcome.model == "test-model"
    assert outcome.attempts == 1
    assert not outcome.cache_hit
    assert outcome.usage == {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120}
    assert outcome.latency_ms > 0
    assert outcome.plan is not None
    assert [t.id for t in outcome.plan.tasks] == ["payment", "inventory", "delivery"]
    assert outcome.plan.parallel_groups == [["payment", "inventory"], ["delivery"]]

    (request,) = llm_server.requests
    assert request["model"] == "test-model"
    fmt = request["response_format"]
    assert fmt["type"] == "json_schema"
    assert fmt["json_schema"]["strict"] is True
    schema = fmt["json_schema"]["schema"]
    assert set(schema["required"]) == {
        "not_actionable",
        "reason",
        "parts",
        "tasks",
        "uncovered",
        "parallel_groups",
    }
    system = request["messages"][0]["content"]
    assert '"serves"' in system
    assert '"uncovered"' in system
    assert "$<task id>.<field>" in system
    assert "not_actionable" in system
    assert "parallelism" in system
    text = user_text(request)
    for name in ("PaymentService", "InventoryService", "DeliveryAgent", "trackingId", ACTION):
        assert name in text
    assert '- orderId: "ORD123"' in text


async def test_hallucinated_service_is_repaired(llm_server, settings, services, validate):
    llm_server.then(json.dumps(HALLUCINATED), json.dumps(GOOD))
    async with LlmPlanner(settings) as planner:
        outcome = await plan(planner, services, validate)
    assert outcome.ok
    assert outcome.attempts == 2
    assert outcome.attempt_errors == [["task 'ship': unknown service 'ShippingService'"]]
    assert outcome.usage["total_tokens"] == 240
    first, second = llm_server.requests
    assert "ShippingService" not in user_text(first)
    last = second["messages"][-1]
    assert last["role"] == "user"
    assert "task 'ship': unknown service 'ShippingService'" in last["content"]
    assert second["messages"][-2] == {"role": "assistant", "content": json.dumps(HALLUCINATED)}


async def test_invalid_after_every_attempt(llm_server, settings, services, validate):
    llm_server.then(*[json.dumps(HALLUCINATED)] * 3)
    async with LlmPlanner(settings) as planner:
        outcome = await plan(planner, services, validate)
    assert not outcome.ok
    assert outcome.status == "invalid"
    assert outcome.attempts == 3
    assert len(outcome.attempt_errors) == 3
    assert outcome.reasons == [
        f"attempt {i}: task 'ship': unknown service 'ShippingService'" for i in (1, 2, 3)
    ]
    assert llm_server.chat_count == 3


async def test_garbage_then_fenced_json_after_think(llm_server, settings, services, validate):
    answer = (
        '<think>The user wants {an order}. Maybe {"tasks": []}? Let me plan.</think>\n'
        "Here is the plan:\n```json\n" + json.dumps(GOOD, indent=2) + "\n```\nDone."
    )
    llm_server.then("Sure! I would love to help you with that order.", answer)
    async with LlmPlanner(settings) as planner:
        outcome = await plan(planner, services, validate)
    assert outcome.ok, outcome
    assert outcome.attempts == 2
    assert "no JSON object" in outcome.attempt_errors[0][0]
    assert "no JSON object" in llm_server.requests[1]["messages"][-1]["content"]


async def test_rate_limit_retry_after_then_success(llm_server, settings, services, validate):
    llm_server.then(error(429, "slow down", retry_after="1"), json.dumps(GOOD))
    beats = 0

    async def keepalive() -> None:
        nonlocal beats
        beats += 1

    started = time.monotonic()
    async with LlmPlanner(settings) as planner:
        outcome = await plan(planner, services, validate, keepalive=keepalive)
    assert outcome.ok
    assert outcome.attempts == 1
    assert llm_server.chat_count == 2
    assert time.monotonic() - started >= 0.9  # Retry-After honoured, not the 10 ms backoff
    assert beats >= 5  # keepalive_s is 50 ms: called throughout the wait


async def test_keepalive_during_a_long_call(llm_server, settings, services, validate):
    reply = completion(json.dumps(GOOD))
    reply.delay_s = 0.4
    llm_server.then(reply)
    beats = 0

    async def keepalive() -> None:
        nonlocal beats
        beats += 1

    async with LlmPlanner(settings) as planner:
        outcome = await plan(planner, services, validate, keepalive=keepalive)
    assert outcome.ok
    assert beats >= 3


async def test_server_errors_exhaust_retries(llm_server, settings, services, validate):
    llm_server.then(*[error(503, "overloaded")] * 3)
    async with LlmPlanner(settings) as planner:
        outcome = await plan(planner, services, validate)
    assert outcome.status == "error"
    assert outcome.retryable
    assert "HTTP 503" in outcome.reasons[0]
    assert llm_server.chat_count == 3  # first call + max_retries=2


async def test_authentication_error_is_not_retried(llm_server, settings, services, validate):
    llm_server.then(error(401, "bad key"))
    async with LlmPlanner(settings) as planner:
        outcome = await plan(planner, services, validate)
    assert outcome.status == "error"
    assert not outcome.retryable
    assert llm_server.chat_count == 1


async def test_not_actionable(llm_server, settings, services, validate):
    llm_server.then(json.dumps({"not_actionable": True, "reason": "No service can bake a cake."}))
    async with LlmPlanner(settings) as planner:
        outcome = await plan(planner, services, validate, action="Bake a birthday cake")
    assert outcome.status == "not_actionable"
    assert outcome.reasons == ["No service can bake a cake."]
    assert outcome.plan is None
    assert outcome.attempts == 1


async def test_structured_output_rejected_falls_back_to_text(
    llm_server, settings, services, validate
):
    llm_server.then(
        error(400, "response_format of type json_schema is not supported", param="response_format"),
        "```json\n" + json.dumps(GOOD) + "\n```",
        json.dumps(GOOD),
    )
    async with LlmPlanner(settings) as planner:
        first = await plan(planner, services, validate)
        second = await plan(planner, services, validate)
    assert first.ok
    assert first.attempts == 1
    assert second.ok
    rejected, fallback, later = llm_server.requests
    assert "response_format" in rejected
    assert "response_format" not in fallback
    assert "response_format" not in later  # remembered: no second rejected request


async def test_structured_off_never_asks(llm_server, settings, services, validate):
    llm_server.then(json.dumps(GOOD))
    off = LlmSettings(**{**settings.__dict__, "structured": "off"})
    async with LlmPlanner(off) as planner:
        assert (await plan(planner, services, validate)).ok
    assert "response_format" not in llm_server.requests[0]


async def test_cache_hit_with_new_values_makes_no_request(
    llm_server, settings, services, validate, bus, plan_cache
):
    llm_server.then(json.dumps(GOOD))
    async with LlmPlanner(settings, cache=plan_cache) as planner:
        first = await plan(planner, services, validate)
        assert first.ok
        assert llm_server.chat_count == 1
        new_data = [
            DataField("productId", "PROD999"),
            DataField("orderId", "ORD777"),
            DataField("amount", "10.00"),
        ]
        second = await plan(
            planner,
            services,
            validate,
            action="  process NEW order, and arrange optimal delivery!",
            data=new_data,
        )
    assert llm_server.chat_count == 1
    assert second.ok
    assert second.planner == "cache"
    assert second.cache_hit
    assert second.attempts == 0
    assert second.model == "test-model"
    assert second.plan is not None
    inputs = {t.id: t.input for t in second.plan.tasks}
    assert inputs == {
        "payment": {"orderId": "ORD777", "amount": "10.00"},
        "inventory": {"productId": "PROD999"},
        "delivery": {"orderId": "ORD777", "inStock": "$inventory.inStock"},
    }
    assert second.plan.parallel_groups == [["payment", "inventory"], ["delivery"]]

    # Another replica (or a restarted planner) shares the cache through JetStream KV.
    async with LlmPlanner(settings, cache=await PlanCache.open(bus)) as replica:
        third = await plan(replica, services, validate)
    assert third.cache_hit
    assert llm_server.chat_count == 1

    # A change to a service's schema misses.
    llm_server.then(json.dumps(GOOD))
    changed = [*services[:-1], msgspec.structs.replace(services[-1], schema_hash="h-new")]
    async with LlmPlanner(settings, cache=plan_cache) as planner:
        fourth = await plan(planner, changed, validate)
    assert not fourth.cache_hit
    assert llm_server.chat_count == 2


async def test_cached_plan_failing_validation_goes_to_the_model(
    llm_server, settings, services, validate
):
    llm_server.then(json.dumps(GOOD), json.dumps(GOOD))
    cache = PlanCache.memory()
    async with LlmPlanner(settings, cache=cache) as planner:
        assert (await plan(planner, services, validate)).ok

        def refuse(p):
            return ["no longer valid"] if llm_server.chat_count == 1 else validate(p)

        again = await plan(planner, services, refuse)
    assert not again.cache_hit
    assert again.ok
    assert llm_server.chat_count == 2


async def test_concurrent_identical_misses_make_one_call(llm_server, settings, services, validate):
    reply = completion(json.dumps(GOOD))
    reply.delay_s = 0.3
    llm_server.then(reply)
    cache = PlanCache.memory()
    async with LlmPlanner(settings, cache=cache) as planner:
        outcomes = await asyncio.gather(
            plan(planner, services, validate),
            plan(planner, services, validate),
            plan(
                planner,
                services,
                validate,
                data=[
                    DataField("orderId", "X1"),
                    DataField("amount", "1"),
                    DataField("productId", "P"),
                ],
            ),
        )
    assert llm_server.chat_count == 1
    assert all(o.ok for o in outcomes)
    assert [o.cache_hit for o in outcomes].count(True) == 2
    third = outcomes[2].plan
    assert third is not None
    assert third.tasks[0].input == {"orderId": "X1", "amount": "1"}


async def test_semantic_cache_hit(llm_server, settings, services, validate):
    llm_server.then(json.dumps(GOOD))
    semantic = LlmSettings(
        **{**settings.__dict__, "cache_similarity": 0.9, "embedding_model": "test-embed"}
    )
    llm_server.embeddings.update(
        {
            "process new order and arrange optimal delivery": [1.0, 0.0, 0.1],
            "handle a fresh order and ship it optimally": [0.98, 0.05, 0.12],
            "bake a cake": [0.0, 1.0, 0.0],
        }
    )
    async with LlmPlanner(semantic, cache=PlanCache.memory()) as planner:
        assert (await plan(planner, services, validate)).ok
        similar = await plan(
            planner, services, validate, action="Handle a fresh order and ship it optimally"
        )
        llm_server.then(json.dumps({"not_actionable": True, "reason": "no"}))
        different = await plan(planner, services, validate, action="Bake a cake")
    assert similar.cache_hit
    assert not different.cache_hit
    assert llm_server.chat_count == 2
    assert llm_server.embedding_requests[0]["model"] == "test-embed"


GROUNDING = """
name: ecommerce
domain: e-commerce
use-cases:
  - action: "Process new order {orderId} and arrange delivery"
    intent: Charge the customer, check stock and ship only what is in stock
    capabilities: [payment, inventory check, delivery]
    services: [PaymentService, InventoryService, DeliveryAgent]
    params: {orderId: ORD1}
  - action: "Refund order {orderId}"
    intent: Return the money to the customer
constraints:
  - Never arrange delivery before stock is confirmed
"""


async def test_grounding_example_in_prompt(
    llm_server, settings, services, validate, grounding_store
):
    await grounding_store.put(parse_groundings(GROUNDING))
    assert [g.name for g in await grounding_store.list()] == ["ecommerce"]
    llm_server.then(json.dumps(GOOD))
    async with LlmPlanner(settings, grounding=grounding_store) as planner:
        outcome = await plan(
            planner, services, validate, action="Process new order ORD123 and arrange delivery"
        )
    assert outcome.ok
    text = user_text(llm_server.requests[0])
    assert "Worked examples" in text
    assert "Charge the customer, check stock and ship only what is in stock" in text
    assert '"orderId":"ORD123"' in text  # the placeholder read from the action
    assert "Never arrange delivery before stock is confirmed" in text
    assert "Refund order" not in text
    assert await grounding_store.remove("ecommerce")
    assert not await grounding_store.remove("ecommerce")
    assert await grounding_store.list() == []


async def test_service_examples_reach_the_prompt_and_the_grounding(
    llm_server, settings, services, validate, grounding_store
):
    """A service's example phrases teach the model its users' words (issue 15, item 3)."""
    taught = [
        msgspec.structs.replace(s, examples=["how upset is the customer", "rate the mood"])
        if s.service == "InventoryService"
        else s
        for s in services
    ]
    llm_server.then(json.dumps(GOOD))
    async with LlmPlanner(settings, grounding=grounding_store) as planner:
        outcome = await plan(planner, taught, validate, action="Tell me how upset the customer is")
    assert outcome.ok
    text = user_text(llm_server.requests[0])
    assert 'How users ask for it: "how upset is the customer"; "rate the mood"' in text
    # matched like a grounding's use case: a worked example naming the service
    assert "Example 1 (service-examples): action 'how upset is the customer'" in text
    assert "services expected: InventoryService" in text
    assert "rate the mood'" not in text.split("Worked examples", 1)[1]


async def test_strict_grounding_refuses_unmatched_action(
    llm_server, settings, services, validate, grounding_store
):
    await grounding_store.put(
        parse_groundings(GROUNDING.replace("domain: e-commerce", "strict: true"))
    )
    async with LlmPlanner(settings, grounding=grounding_store) as planner:
        refused = await plan(planner, services, validate, action="Bake a birthday cake")
        llm_server.then(json.dumps(GOOD))
        accepted = await plan(planner, services, validate, action="Refund order ORD9")
    assert refused.status == "not_actionable"
    assert "ecommerce" in refused.reasons[0]
    assert accepted.ok
    assert llm_server.chat_count == 1


def test_planner_refuses_unconfigured_settings():
    with pytest.raises(ValueError, match="ORRA_LLM_MODEL"):
        LlmPlanner(LlmSettings())
