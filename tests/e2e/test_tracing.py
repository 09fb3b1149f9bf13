"""One trace per orchestration (docs/tracing.md), across the real processes of ``orra up``.

Every process exports its spans over OTLP/HTTP to a receiver run by this module, as it
would to a collector; the seed's 2+2 order action, submitted over HTTP with a caller's
``traceparent``, must come back as one trace: the caller's span, the gateway's request and
submit spans, the plan, two parallel groups, four task attempts (the second group's
linked to the attempts whose outputs they take), the handlers under them, and the webhook
attempt, whose ``traceparent`` the receiver sees.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.e2e.otlp_receiver import OtlpReceiver, Span
from tests.e2e.stack_fixtures import StackHandle, WebhookReceiver

pytestmark = pytest.mark.e2e

HOOK = "/webhooks/traced"
ORDER = {
    "action": {"content": "Process new order and arrange optimal delivery"},
    "data": [
        {"field": "orderId", "value": "ORD123"},
        {"field": "customerId", "value": "CUST456"},
        {"field": "items", "value": [{"id": "PROD789", "quantity": 2}]},
    ],
}
HANDLERS = {
    "payment": "PaymentService",
    "inventory": "InventoryService",
    "delivery": "DeliveryAgent",
    "notification": "NotificationService",
}


@pytest.fixture(scope="module")
def otlp() -> Iterator[OtlpReceiver]:
    receiver = OtlpReceiver().start()
    try:
        yield receiver
    finally:
        receiver.stop()


@pytest.fixture(scope="module")
def hooks() -> Iterator[WebhookReceiver]:
    server = WebhookReceiver().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, otlp: OtlpReceiver) -> Iterator[StackHandle]:
    base = tmp_path_factory.mktemp("orra-traced")
    handle = StackHandle(
        data_dir=base / "data",
        cli_config=base / "cli-config.json",
        extra_env={
            "ORRA_EXAMPLES_LATENCY_SCALE": "0.2",
            "OTEL_TRACES_EXPORTER": "otlp",
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": otlp.endpoint,
            "OTEL_BSP_SCHEDULE_DELAY": "200",
        },
        children=[],
    )
    try:
        handle.start(demo=True)
        yield handle
    finally:
        handle.stop()


def _one(spans: list[Span], name: str) -> Span:
    found = [s for s in spans if s.name == name]
    assert len(found) == 1, (name, [(s.service, s.name) for s in spans])
    return found[0]


def test_the_seed_order_is_one_trace_from_the_request_to_the_webhook(
    stack: StackHandle, otlp: OtlpReceiver, hooks: WebhookReceiver
) -> None:
    trace_id, caller_span = secrets.token_hex(16), secrets.token_hex(8)
    resp = httpx.post(
        f"{stack.gateway_url}/orchestrations",
        headers={
            "Authorization": f"Bearer {stack.api_key}",
            "traceparent": f"00-{trace_id}-{caller_span}-01",
        },
        json={**ORDER, "webhook": hooks.url(HOOK)},
        timeout=30,
    )
    assert resp.status_code in (201, 202), resp.text
    orch = resp.json()["orchestrationId"]
    delivery = hooks.wait_for(orch, HOOK)
    assert delivery.json["status"] == "completed", delivery.json

    def complete(spans: list[Span]) -> bool:
        names = {s.name for s in spans if s.trace_id == trace_id}
        return {"orra webhook result", "orra handle NotificationService"} <= names and (
            "orra handle DeliveryAgent" in names
        )

    otlp.wait(complete)
    spans = otlp.of_trace(trace_id)
    by_id = {s.span_id: s for s in spans}

    # the webhook receiver's spans would join the same trace
    version, got_trace, _parent, _flags = delivery.headers["traceparent"].split("-")
    assert (version, got_trace) == ("00", trace_id)

    # every Orra span of the trace names the orchestration
    for s in spans:
        if s.name.startswith("orra "):
            assert s.attributes.get("orra.orchestration.id") == orch, s

    submit = _one(spans, "orra submit")
    assert submit.service == "orra-gateway"
    # the submit span descends from the caller's span (through the ASGI server span)
    ancestor = submit
    while ancestor.parent_id in by_id:
        ancestor = by_id[ancestor.parent_id]
    assert ancestor.parent_id == caller_span

    plan = _one(spans, "orra plan")
    assert (plan.service, plan.parent_id) == ("orra-planner", submit.span_id)

    groups = [_one(spans, "orra group 0"), _one(spans, "orra group 1")]
    for group in groups:
        assert (group.service, group.parent_id) == ("orra-dispatcher", plan.span_id)

    view = stack.get(f"/orchestrations/{orch}")
    plan_groups = view["parallel_groups"]
    assert sorted(plan_groups[0]) == ["inventory", "payment"], plan_groups
    attempts = {}
    for n, group_tasks in enumerate(plan_groups):
        for task in group_tasks:
            attempt = _one(spans, f"orra task {task}")
            assert attempt.parent_id == groups[n].span_id, attempt
            assert attempt.attributes["orra.task.attempt"] == 1
            attempts[task] = attempt
            handler = _one(spans, f"orra handle {HANDLERS[task]}")
            assert handler.parent_id == attempt.span_id, handler
    assert len(attempts) == 4

    # a task of the second group links to the attempts whose outputs it takes
    depends = {t["id"]: t.get("dependsOn") or [] for t in view["tasks"]}
    assert any(len(d) >= 1 for d in depends.values()), depends
    for task, deps in depends.items():
        links = {(link.trace_id, link.span_id) for link in attempts[task].links}
        assert links == {(trace_id, attempts[d].span_id) for d in deps}, (task, deps)

    # the second group was released by both tasks of the first: a span with two causes
    released_by = {(link.trace_id, link.span_id) for link in groups[1].links}
    assert released_by == {(trace_id, attempts[t].span_id) for t in plan_groups[0]}
    assert groups[0].links == ()

    webhook = _one(spans, "orra webhook result")
    assert (webhook.service, webhook.parent_id) == ("orra-notifier", plan.span_id)
    # the POST's traceparent names the attempt's span or its HTTP client span
    posted = delivery.headers["traceparent"].split("-")[2]
    chain: list[Any] = []
    node = by_id.get(posted)
    while node is not None:
        chain.append(node.span_id)
        node = by_id.get(node.parent_id)
    assert webhook.span_id in chain, (posted, [(s.name, s.span_id) for s in spans])


def test_a_plan_that_fails_still_reports_in_the_callers_trace(
    stack: StackHandle, otlp: OtlpReceiver, hooks: WebhookReceiver
) -> None:
    trace_id = secrets.token_hex(16)
    resp = httpx.post(
        f"{stack.gateway_url}/orchestrations",
        headers={
            "Authorization": f"Bearer {stack.api_key}",
            "traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01",
        },
        json={"action": {"content": "Launch a rocket to the moon"}, "webhook": hooks.url(HOOK)},
        timeout=30,
    )
    assert resp.status_code == 422, resp.text
    orch = resp.json()["orchestrationId"]
    delivery = hooks.wait_for(orch, HOOK)
    assert delivery.json["status"] == "failed", delivery.json
    assert delivery.headers["traceparent"].split("-")[1] == trace_id
    otlp.wait(
        lambda spans: (
            {"orra plan", "orra webhook result"}
            <= {s.name for s in spans if s.trace_id == trace_id}
        )
    )
    spans = otlp.of_trace(trace_id)
    webhook = _one(spans, "orra webhook result")
    assert webhook.parent_id == _one(spans, "orra plan").span_id
