"""The notifier's log context: every line of a delivery names its orchestration and webhook."""

from __future__ import annotations

from orra_events import Bus, WebhookDelivered
from tests.planner.json_logs import json_logs

from .conftest import StartNotifier
from .helpers import done, outcomes
from .receiver import Receiver, script


async def test_log_lines_of_a_delivery_carry_its_orchestration_and_webhook_ids(
    bus: Bus, start_notifier: StartNotifier
) -> None:
    with json_logs("notifier") as logs:
        async with Receiver(script(500, 200)) as receiver:
            await start_notifier()
            await bus.publish(done("o_logs1", receiver.url()))
            [outcome] = await outcomes(bus, "o_logs1")
            await bus.publish(done("o_logs2", receiver.url()))
            [second] = await outcomes(bus, "o_logs2")
    assert isinstance(outcome, WebhookDelivered)
    assert isinstance(second, WebhookDelivered)
    ids = {"orchestration_id": "o_logs1", "webhook_id": outcome.webhook_id}
    # The stores' line (given no id), then the failed and the successful attempts.
    [secret] = logs.where(event="created the project's webhook signing secret")
    assert secret.items() >= {**ids, "delivery_kind": "result", "service": "notifier"}.items()
    [retry] = logs.where(event="webhook attempt failed; will retry")
    assert retry.items() >= ids.items()
    [delivered] = logs.where(event="webhook delivered", orchestration_id="o_logs1")
    assert delivered.items() >= {**ids, "attempt": 2}.items()
    [queued] = logs.where(event="webhooks queued", orchestration_id="o_logs1")
    assert "webhook_id" not in queued  # the fan-out is not about one webhook
    # The next message's lines carry its own ids, nothing left from the first one.
    [delivered] = logs.where(event="webhook delivered", orchestration_id="o_logs2")
    assert delivered["webhook_id"] == second.webhook_id != outcome.webhook_id
