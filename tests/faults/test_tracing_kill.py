"""kill -9 of the dispatcher in the middle of a traced orchestration: still one trace.

The restarted dispatcher knows the orchestration's trace only from its stored snapshot and
the stored messages; the second group, its attempts (linked to the first group's, which
the killed process recorded), the handlers under them and the webhook attempt must join
the same trace, every span's parent a span of that trace (docs/tracing.md).
"""

from __future__ import annotations

import asyncio
import secrets
import time

import pytest

from orra_events import ActionSubmitted, Bus, DataField, new_orchestration_id
from tests.e2e.otlp_receiver import OtlpReceiver, Span
from tests.faults.harness import NEW_ORDER, Stack, wait_terminal
from tests.notifier.receiver import Receiver

pytestmark = pytest.mark.e2e


async def _wait_spans(otlp: OtlpReceiver, trace_id: str, names: set[str], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not names <= {s.name for s in otlp.of_trace(trace_id)}:
        got = sorted(s.name for s in otlp.of_trace(trace_id))
        assert time.monotonic() < deadline, f"missing {names}; got {got}"
        await asyncio.sleep(0.05)


async def test_kill_9_of_the_dispatcher_mid_orchestration_keeps_one_connected_trace(
    bus: Bus, stack: Stack, receiver: Receiver
) -> None:
    otlp = OtlpReceiver().start()
    try:
        traced = {
            "OTEL_TRACES_EXPORTER": "otlp",
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": otlp.endpoint,
            "OTEL_BSP_SCHEDULE_DELAY": "50",
        }
        await asyncio.to_thread(stack.start_many, "planner", "dispatcher", "notifier", **traced)
        # handlers of a second or so: the kill lands while the first group runs
        await stack.astart("examples", ORRA_EXAMPLES_LATENCY_SCALE="3", **traced)

        trace_id, caller = secrets.token_hex(16), secrets.token_hex(8)
        orch = new_orchestration_id()
        await bus.publish(
            ActionSubmitted(
                event_id=f"a:{orch}",
                orchestration_id=orch,
                action=NEW_ORDER,
                data=[
                    DataField("orderId", "ORD777"),
                    DataField("customerId", "CUST777"),
                    DataField("items", [{"id": "PROD789", "quantity": 1}]),
                ],
                webhook=receiver.url(),
            ),
            headers={"traceparent": f"00-{trace_id}-{caller}-01"},
        )
        # the first group's spans are exported: now kill the dispatcher that made them
        await _wait_spans(otlp, trace_id, {"orra task payment", "orra task inventory"}, 30)
        await stack.kill("dispatcher")
        await asyncio.sleep(0.5)
        await stack.restart("dispatcher")

        assert await wait_terminal(bus, [orch], timeout_s=60) == {orch}
        requests = await receiver.wait_for(1, timeout=30)
        await _wait_spans(
            otlp,
            trace_id,
            {"orra group 1", "orra handle DeliveryAgent", "orra handle NotificationService"}
            | {"orra webhook result"},
            30,
        )
    finally:
        otlp.stop()

    spans = otlp.of_trace(trace_id)
    ids = {s.span_id for s in spans}
    orphans = [s for s in spans if s.parent_id not in ids and s.parent_id != caller]
    assert not orphans, [(s.service, s.name, s.parent_id) for s in orphans]
    # one root: the span the action named as its parent (the caller's)
    assert [s.name for s in spans if s.parent_id == caller] == ["orra plan"]

    by_name: dict[str, list[Span]] = {}
    for s in spans:
        by_name.setdefault(s.name, []).append(s)
    first_attempts = {by_name[f"orra task {t}"][0].span_id for t in ("payment", "inventory")}
    # the restarted dispatcher released group 1 linked to the attempts the killed one sent
    group_1 = by_name["orra group 1"][0]
    assert {link.span_id for link in group_1.links} == first_attempts
    assert all(link.trace_id == trace_id for link in group_1.links)
    for task, service in (("delivery", "DeliveryAgent"), ("notification", "NotificationService")):
        (handler,) = by_name[f"orra handle {service}"]
        assert handler.parent_id in {a.span_id for a in by_name[f"orra task {task}"]}
    posted = requests[0].headers.get("traceparent", "")
    assert posted.split("-")[1:2] == [trace_id], posted
