"""The notifier end to end: a real nats-server, real HTTP receivers, real restarts."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from typing import Any

import msgspec
import pytest
import standardwebhooks
import standardwebhooks.webhooks
from nats.js.errors import NotFoundError

from orra_events import (
    Bus,
    CompensationSummary,
    Event,
    OrchestrationAborted,
    OrchestrationCompensated,
    OrchestrationFailed,
    WebhookDelivered,
    WebhookFailed,
    decode,
)
from orra_events.bus import HDR_REASON
from orra_events.projection import fold
from orra_notifier.domain import delivery_key
from orra_notifier.handlers import DELIVERY_CONSUMER, FANOUT_CONSUMER, jobs_stream
from orra_notifier.stores import DELIVERIES_BUCKET, SECRETS_BUCKET, WEBHOOKS_BUCKET, Stores

from .conftest import StartNotifier
from .helpers import done, outcomes
from .receiver import Receiver, Reply, Request, free_port, script


def standard_webhooks_verify(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """An independent verifier, written from the Standard Webhooks specification text.

    "The signature is the base64 of HMAC-SHA256 over ``msg_id.timestamp.payload``, keyed
    with the base64-decoded part of the secret after ``whsec_``; the header is a space
    delimited list of ``version,signature``; compare in constant time; reject timestamps
    too far from now."
    """
    key = base64.b64decode(secret.split("_", 1)[1])
    msg_id, timestamp = headers["webhook-id"], headers["webhook-timestamp"]
    if abs(time.time() - int(timestamp)) > 5 * 60:
        return False
    to_sign = f"{msg_id}.{timestamp}.".encode() + body
    expected = base64.b64encode(hmac.new(key, to_sign, hashlib.sha256).digest()).decode()
    for versioned in headers["webhook-signature"].split(" "):
        version, _, signature = versioned.partition(",")
        if version == "v1" and hmac.compare_digest(signature, expected):
            return True
    return False


async def project_secret(bus: Bus, project: str = "default") -> str:
    """The project's current secret, read as the gateway would to show it to its user."""
    kv = await bus.kv(SECRETS_BUCKET)
    entry = await kv.get(project)
    return str(json.loads(entry.value or b"")["secret"])


async def test_a_delivery_is_signed_so_a_standard_verifier_accepts_it(
    bus: Bus, start_notifier: StartNotifier
) -> None:
    async with Receiver() as receiver:
        await start_notifier()
        results = {"orderStatus": "processed", "deliveryTracking": "DLV987"}
        await bus.publish(done("o_sign1", receiver.url(), results=results))
        [outcome] = await outcomes(bus, "o_sign1")
        [request] = receiver.requests

    assert isinstance(outcome, WebhookDelivered)
    assert (outcome.attempt, outcome.status_code, outcome.url) == (1, 200, receiver.url())
    assert request.method == "POST"
    assert request.path == "/webhooks/orra"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["webhook-id"] == outcome.webhook_id
    assert json.loads(request.body) == {
        "type": "orchestration.result",
        "orchestrationId": "o_sign1",
        "status": "completed",
        "results": results,
        "resultsByTask": {"notify": results},
        "error": None,
        "compensation": None,
        "uncovered": [],
    }
    secret = await project_secret(bus)
    assert standard_webhooks_verify(secret, request.headers, request.body)
    assert not standard_webhooks_verify(secret, request.headers, request.body + b" ")
    # and the reference implementation of the specification agrees
    verified = standardwebhooks.Webhook(secret).verify(request.body, dict(request.headers))
    assert verified["orchestrationId"] == "o_sign1"
    with pytest.raises(standardwebhooks.webhooks.WebhookVerificationError):
        standardwebhooks.Webhook(secret).verify(request.body + b" ", dict(request.headers))


async def test_a_receiver_failing_twice_gets_it_on_the_third_attempt_with_one_webhook_id(
    bus: Bus, start_notifier: StartNotifier
) -> None:
    async with Receiver(script(500, 500, 200)) as receiver:
        await start_notifier()
        await bus.publish(done("o_retry1", receiver.url()))
        [outcome] = await outcomes(bus, "o_retry1")
        requests = list(receiver.requests)

    assert isinstance(outcome, WebhookDelivered)
    assert (outcome.attempt, outcome.status_code) == (3, 200)
    assert len(requests) == 3
    assert {r.headers["webhook-id"] for r in requests} == {outcome.webhook_id}
    assert len({r.body for r in requests}) == 1
    secret = await project_secret(bus)
    assert all(standard_webhooks_verify(secret, r.headers, r.body) for r in requests)


async def test_a_pending_retry_survives_a_restart_while_the_receiver_is_down(
    bus: Bus, start_notifier: StartNotifier
) -> None:
    port = free_port()  # nobody listens: connection refused
    url = f"http://127.0.0.1:{port}/webhooks/orra"
    stop = await start_notifier()
    await bus.publish(done("o_down1", url))

    async def deliveries() -> int:
        info = await bus.js.consumer_info(jobs_stream(bus.topology), DELIVERY_CONSUMER)
        return int(info.delivered.consumer_seq)

    while await deliveries() < 2:  # the first attempts failed and a retry is scheduled
        await asyncio.sleep(0.05)
    await stop()

    async with Receiver(port=port) as receiver:
        await asyncio.sleep(0.6)  # longer than any backoff: nobody retries while stopped
        assert receiver.requests == []
        await start_notifier()
        [outcome] = await outcomes(bus, "o_down1")
        assert len(receiver.requests) == 1

    assert isinstance(outcome, WebhookDelivered)
    assert outcome.attempt >= 3
    assert outcome.status_code == 200
    # the attempts before the restart are in the log, kept in KV across it
    log = outcome.attempt_log
    numbers = [a.n for a in log]
    assert numbers == sorted(set(numbers))
    assert numbers[0] == 1
    assert log[-1].n == outcome.attempt
    assert log[-1].status_code == 200
    assert len(log) >= 2
    for earlier in log[:-1]:
        assert earlier.status_code is None
        assert earlier.error is not None
        assert earlier.error.startswith("connection:")


async def test_a_400_is_not_retried(bus: Bus, start_notifier: StartNotifier) -> None:
    async with Receiver(script(400, 200)) as receiver:
        await start_notifier()
        await bus.publish(done("o_bad1", receiver.url()))
        [outcome] = await outcomes(bus, "o_bad1")
        await asyncio.sleep(0.4)  # several backoffs: a retry would have arrived by now
        assert len(receiver.requests) == 1

    assert isinstance(outcome, WebhookFailed)
    assert (outcome.attempts, outcome.status_code) == (1, 400)
    assert "HTTP 400 is not retried" in outcome.error
    assert [(a.n, a.status_code, a.error) for a in outcome.attempt_log] == [(1, 400, None)]


async def test_each_attempt_is_logged_503_then_a_timeout_then_200(
    bus: Bus, start_notifier: StartNotifier
) -> None:
    async with Receiver(script(503, Reply(200, delay_s=1.5), 200)) as receiver:
        await start_notifier(timeout_s=0.5)
        started = time.time()
        await bus.publish(done("o_log1", receiver.url()))
        [outcome] = await outcomes(bus, "o_log1")
        assert len(receiver.requests) == 3

    assert isinstance(outcome, WebhookDelivered)
    assert (outcome.attempt, outcome.status_code) == (3, 200)
    log = outcome.attempt_log
    assert [a.n for a in log] == [1, 2, 3]
    assert [a.status_code for a in log] == [503, None, 200]
    assert [a.error for a in (log[0], log[2])] == [None, None]
    assert log[1].error == "timeout: no response within 0.5s"
    assert 400 <= log[1].duration_ms < 1500
    assert started <= log[0].at < log[1].at < log[2].at <= outcome.at
    # and the read model shows it
    sub = await bus.js.subscribe(
        bus.topology.history_of("o_log1"), stream=bus.topology.events_stream, ordered_consumer=True
    )
    events: list[Event] = []
    try:
        while not events or not isinstance(events[-1], WebhookDelivered):
            events.append(decode((await sub.next_msg(timeout=5)).data))
    finally:
        await sub.unsubscribe()
    [delivery] = fold(events)["o_log1"].webhooks
    assert delivery.status_codes == [503, None, 200]


async def test_a_failed_attempt_costs_one_kv_write_and_a_first_attempt_success_none(
    bus: Bus, start_notifier: StartNotifier
) -> None:
    async with Receiver(script(503, 200)) as flaky, Receiver() as healthy:
        await start_notifier()
        await bus.publish(done("o_writes1", flaky.url()))
        [retried] = await outcomes(bus, "o_writes1")
        await bus.publish(done("o_writes2", healthy.url()))
        [at_once] = await outcomes(bus, "o_writes2")

    kv = await bus.kv(DELIVERIES_BUCKET)
    first, second = delivery_key("o_writes1", flaky.url()), delivery_key("o_writes2", healthy.url())
    assert set(await kv.keys()) == {first, f"{first}.log", second}
    info = await bus.js.stream_info(f"KV_{bus.topology.bucket(DELIVERIES_BUCKET)}")
    assert info.state.last_seq == 3  # the failed attempt's log, then each outcome
    assert [a.status_code for a in retried.attempt_log] == [503, 200]
    assert [a.status_code for a in at_once.attempt_log] == [200]


async def test_a_handler_written_like_the_seeds_express_example(
    bus: Bus, start_notifier: StartNotifier
) -> None:
    processed: list[Any] = []
    handled_errors: list[Any] = []

    def express_like(request: Request) -> Reply:
        # app.post('/webhooks/orra', (req, res) => { const {orchestrationId, status,
        #   results, error} = req.body; if (status === 'completed') processResults(results)
        #   else if (status === 'failed') handleError(error); res.sendStatus(200); })
        body = json.loads(request.body)
        status, results, error = body["status"], body["results"], body["error"]
        assert body["orchestrationId"].startswith("o_express")
        if status == "completed":
            processed.append(results)
        elif status == "failed":
            handled_errors.append(error)
        return Reply(200)

    async with Receiver(express_like) as receiver:
        await start_notifier()
        await bus.publish(done("o_express1", receiver.url(), results={"paymentStatus": "ok"}))
        await bus.publish(
            OrchestrationFailed(
                event_id="end:o_express2",
                orchestration_id="o_express2",
                error="InventoryService: out of stock",
                webhook=receiver.url(),
            )
        )
        await bus.publish(
            OrchestrationAborted(
                event_id="end:o_express3",
                orchestration_id="o_express3",
                reason="aborted by user",
                webhook=receiver.url(),
            )
        )
        for orch in ("o_express1", "o_express2", "o_express3"):
            [outcome] = await outcomes(bus, orch)
            assert isinstance(outcome, WebhookDelivered)

    assert processed == [{"paymentStatus": "ok"}]
    assert handled_errors == ["InventoryService: out of stock"]
    statuses = sorted(json.loads(r.body)["status"] for r in receiver.requests)
    assert statuses == ["aborted", "completed", "failed"]


async def test_a_private_url_is_refused_unless_allowed(
    bus: Bus, start_notifier: StartNotifier
) -> None:
    async with Receiver() as receiver:
        await start_notifier(allow_private=False)
        await bus.publish(done("o_private1", receiver.url()))
        [outcome] = await outcomes(bus, "o_private1")
        assert receiver.requests == []

    assert isinstance(outcome, WebhookFailed)
    assert outcome.status_code is None
    assert outcome.attempts == 1
    assert "127.0.0.1" in outcome.error
    assert "ORRA_ALLOW_PRIVATE_WEBHOOKS" in outcome.error


async def test_a_name_resolving_to_loopback_is_refused_at_delivery_unless_allowed(
    bus: Bus, start_notifier: StartNotifier
) -> None:
    async with Receiver() as receiver:
        url = f"http://localhost:{receiver.port}/webhooks/orra"
        stop = await start_notifier(allow_private=False)
        await bus.publish(done("o_rebind1", url))
        [refused] = await outcomes(bus, "o_rebind1")
        await asyncio.sleep(0.4)  # several backoffs: a retry would have arrived by now
        assert receiver.requests == []
        # one attempt (the fan-out's, holding the terminal event), not redelivered
        fan = await bus.js.consumer_info(bus.topology.events_stream, FANOUT_CONSUMER)
        assert (fan.num_ack_pending, fan.num_redelivered) == (0, 0)
        info = await bus.js.consumer_info(jobs_stream(bus.topology), DELIVERY_CONSUMER)
        assert info.num_ack_pending == 0
        assert info.delivered.consumer_seq == 0  # no job: nothing to retry
        await stop()

        await start_notifier(allow_private=True)
        await bus.publish(done("o_rebind2", url))
        [delivered] = await outcomes(bus, "o_rebind2")
        assert len(receiver.requests) == 1

    assert isinstance(refused, WebhookFailed)
    assert (refused.attempts, refused.status_code) == (1, None)
    assert "webhook host localhost resolves to a non-public address" in refused.error
    assert "127.0.0.1" in refused.error
    assert "ORRA_ALLOW_PRIVATE_WEBHOOKS=false" in refused.error
    [attempt] = refused.attempt_log
    assert attempt.error is not None
    assert attempt.error.startswith("refused:")
    assert isinstance(delivered, WebhookDelivered)
    assert delivered.status_code == 200


async def test_project_webhooks_get_it_too_and_a_retry_skips_urls_that_succeeded(
    bus: Bus, start_notifier: StartNotifier
) -> None:
    async with Receiver() as healthy, Receiver(script(503, 503, 200)) as flaky:
        webhooks = await bus.kv(WEBHOOKS_BUCKET)
        hooks = [
            {"id": f"wh_{i}", "url": url, "createdAt": time.time()}
            for i, url in enumerate([flaky.url("/a"), healthy.url("/b")])
        ]
        await webhooks.put("shop", json.dumps({"webhooks": hooks}).encode())
        await start_notifier()
        await bus.publish(done("o_multi1", healthy.url("/b"), project="shop"))
        found = await outcomes(bus, "o_multi1", count=2)
        await asyncio.sleep(0.3)
        assert len(healthy.requests) == 1
        assert len(flaky.requests) == 3

    by_url = {o.url: o for o in found}
    assert isinstance(by_url[healthy.url("/b")], WebhookDelivered)
    flaky_outcome = by_url[flaky.url("/a")]
    assert isinstance(flaky_outcome, WebhookDelivered)
    assert flaky_outcome.attempt == 3
    assert flaky_outcome.webhook_id != by_url[healthy.url("/b")].webhook_id
    secret = await project_secret(bus, "shop")
    assert standard_webhooks_verify(secret, healthy.requests[0].headers, healthy.requests[0].body)


async def test_retry_after_is_honoured(bus: Bus, start_notifier: StartNotifier) -> None:
    async with Receiver(script(Reply(429, {"Retry-After": "1"}), 200)) as receiver:
        await start_notifier()
        await bus.publish(done("o_429", receiver.url()))
        [outcome] = await outcomes(bus, "o_429")
        first, second = receiver.requests

    assert isinstance(outcome, WebhookDelivered)
    assert outcome.attempt == 2
    assert second.at - first.at >= 0.9


async def test_a_slow_receiver_times_out_and_is_retried(
    bus: Bus, start_notifier: StartNotifier
) -> None:
    async with Receiver(script(Reply(200, delay_s=1.5), 200)) as receiver:
        await start_notifier(timeout_s=0.5)
        await bus.publish(done("o_slow1", receiver.url()))
        [outcome] = await outcomes(bus, "o_slow1")

    assert isinstance(outcome, WebhookDelivered)
    assert outcome.attempt == 2


async def test_retries_end_at_the_deadline(bus: Bus, start_notifier: StartNotifier) -> None:
    async with Receiver(script(503)) as receiver:
        await start_notifier(deadline_s=0.5)
        await bus.publish(done("o_deadline1", receiver.url()))
        [outcome] = await outcomes(bus, "o_deadline1")
        sent = len(receiver.requests)

    assert isinstance(outcome, WebhookFailed)
    assert outcome.attempts == sent
    assert outcome.status_code == 503
    assert "deadline" in outcome.error
    assert outcome.attempts >= 2


async def test_two_replicas_never_send_one_attempt_twice(
    bus: Bus, nats_url: str, start_notifier: StartNotifier
) -> None:
    seen: dict[str, int] = {}

    def fail_first(request: Request) -> Reply:
        wid = request.headers["webhook-id"]
        seen[wid] = seen.get(wid, 0) + 1
        return Reply(500 if seen[wid] == 1 else 200)

    other = await Bus.connect(nats_url, bus.topology, name="replica-2")
    try:
        async with Receiver(fail_first) as receiver:
            await start_notifier()
            stop_other = await start_notifier(on=other)
            orchs = [f"o_pair{i}" for i in range(8)]
            for orch in orchs:
                await bus.publish(done(orch, receiver.url()))
            for orch in orchs:
                [outcome] = await outcomes(bus, orch)
                assert isinstance(outcome, WebhookDelivered)
                assert outcome.attempt == 2
            await asyncio.sleep(0.3)
            await stop_other()
    finally:
        await other.close()
    assert sorted(seen.values()) == [2] * 8
    assert len(receiver.requests) == 16


async def test_an_undecodable_event_is_parked_and_the_next_one_delivered(
    bus: Bus, start_notifier: StartNotifier
) -> None:
    async with Receiver() as receiver:
        await start_notifier()
        await bus.js.publish(bus.topology.subject("orchestration.done", "o_garbage"), b"{nope")
        await bus.publish(done("o_after1", receiver.url()))
        [outcome] = await outcomes(bus, "o_after1")
        assert isinstance(outcome, WebhookDelivered)

    parked = await bus.js.get_last_msg(
        bus.topology.dlq_stream,
        bus.topology.dead_letter(bus.topology.subject("orchestration.done", "o_garbage")),
    )
    assert parked.data == b"{nope"
    assert "not valid JSON" in (parked.headers or {}).get(HDR_REASON, "")  # with its reason


async def test_a_fan_out_that_fails_is_redelivered_not_dropped_nor_parked(
    bus: Bus, start_notifier: StartNotifier, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The notifier settles its messages itself: an exception in the handler means "again
    # later" (FastStream's default NATS ack policy would drop the terminal event).
    real = Stores.project_webhooks
    calls = 0

    async def flaky(self: Stores, project: str) -> list[str]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionError("the webhooks bucket is away for a moment")
        return await real(self, project)

    monkeypatch.setattr(Stores, "project_webhooks", flaky)
    subject = bus.topology.subject("orchestration.done", "o_flaky")
    async with Receiver() as receiver:
        await start_notifier()
        await bus.publish(done("o_flaky", receiver.url()))
        [outcome] = await outcomes(bus, "o_flaky")
        assert isinstance(outcome, WebhookDelivered)
        assert len(receiver.requests) == 1
    assert calls == 2  # delivered a second time, after the failure
    with pytest.raises(NotFoundError):
        await bus.js.get_last_msg(bus.topology.dlq_stream, bus.topology.dead_letter(subject))


async def test_two_replicas_agree_on_a_new_projects_secret(bus: Bus) -> None:
    first, second = await asyncio.gather(
        Stores.open(bus, deadline_s=60), Stores.open(bus, deadline_s=60)
    )
    a, b = await asyncio.gather(
        first.signing_secrets("newproj", time.time()),
        second.signing_secrets("newproj", time.time()),
    )
    assert a == b == [await project_secret(bus, "newproj")]


async def test_during_a_rotation_both_secrets_sign(bus: Bus, start_notifier: StartNotifier) -> None:
    old, new = (
        "whsec_" + base64.b64encode(b"o" * 32).decode(),
        "whsec_" + base64.b64encode(b"n" * 32).decode(),
    )
    secrets = await bus.kv(SECRETS_BUCKET)
    record = {
        "secret": new,
        "createdAt": time.time(),
        "previousSecret": old,
        "rotatedAt": time.time(),
        "previousExpiresAt": time.time() + 3600,
    }
    await secrets.put("rot", msgspec.json.encode(record))
    async with Receiver() as receiver:
        await start_notifier()
        await bus.publish(done("o_rot1", receiver.url(), project="rot"))
        await outcomes(bus, "o_rot1")
        [request] = receiver.requests

    assert len(request.headers["webhook-signature"].split(" ")) == 2
    assert standard_webhooks_verify(old, request.headers, request.body)
    assert standard_webhooks_verify(new, request.headers, request.body)


async def test_a_malformed_delivery_job_is_parked_and_the_next_one_delivered(
    bus: Bus, start_notifier: StartNotifier
) -> None:
    from orra_notifier.handlers import job_subject

    bad_subject = job_subject(bus.topology, "o_badjob")
    async with Receiver() as receiver:
        await start_notifier()
        await bus.js.publish(bad_subject, b'{"orchestration_id": "o_badjob"}')
        await bus.publish(done("o_afterjob", receiver.url()))
        [outcome] = await outcomes(bus, "o_afterjob")
        assert isinstance(outcome, WebhookDelivered)

    parked = await bus.js.get_last_msg(
        bus.topology.dlq_stream, bus.topology.dead_letter(bad_subject)
    )
    assert parked.data == b'{"orchestration_id": "o_badjob"}'
    reason = (parked.headers or {}).get(HDR_REASON, "")
    assert "delivery job" in reason
    assert "project" in reason  # the missing field is named


async def test_a_compensation_that_fails_after_a_users_abort_is_reported_by_webhook(
    bus: Bus, start_notifier: StartNotifier
) -> None:
    async with Receiver() as receiver:
        await start_notifier()
        # the gateway appends the user's abort: delivered at once, no compensation yet
        await bus.publish(
            OrchestrationAborted(
                event_id="end:o_compfail",
                orchestration_id="o_compfail",
                reason="aborted by user",
                webhook=receiver.url(),
            )
        )
        [first] = await outcomes(bus, "o_compfail")
        assert isinstance(first, WebhookDelivered)
        # then the dispatcher compensates; one revert finally fails
        await bus.publish(
            OrchestrationCompensated(
                event_id="comp-end:o_compfail",
                orchestration_id="o_compfail",
                compensation=CompensationSummary(compensated=["payment"], failed=["inventory"]),
            )
        )
        [first_again, report] = await outcomes(bus, "o_compfail", count=2)
        assert first_again == first
        assert isinstance(report, WebhookDelivered)
        # a compensation without failures after another abort sends nothing more
        await bus.publish(
            OrchestrationAborted(
                event_id="end:o_compok",
                orchestration_id="o_compok",
                reason="aborted by user",
                webhook=receiver.url(),
            )
        )
        await bus.publish(
            OrchestrationCompensated(
                event_id="comp-end:o_compok",
                orchestration_id="o_compok",
                compensation=CompensationSummary(compensated=["payment"]),
            )
        )
        await outcomes(bus, "o_compok")
        await asyncio.sleep(0.5)

    bodies = [json.loads(r.body) for r in receiver.requests]
    ids = [r.headers["webhook-id"] for r in receiver.requests]
    by_orch = [b["orchestrationId"] for b in bodies]
    assert by_orch.count("o_compfail") == 2
    assert by_orch.count("o_compok") == 1
    first_body, report_body = [b for b in bodies if b["orchestrationId"] == "o_compfail"]
    assert first_body["type"] == "orchestration.result"
    assert first_body["compensation"] is None  # sent before the compensation ran
    assert report_body == {
        "type": "orchestration.compensation",
        "orchestrationId": "o_compfail",
        "status": "aborted",
        "results": None,
        "resultsByTask": None,
        "error": "aborted by user",
        "compensation": {"compensated": ["payment"], "failed": ["inventory"], "skipped": []},
        "uncovered": [],
    }
    assert len(set(ids)) == len(ids)  # the report has its own webhook-id
    assert report.webhook_id != first.webhook_id


async def test_an_outcome_that_cannot_be_recorded_at_once_is_retried_without_posting_again(
    bus: Bus, start_notifier: StartNotifier, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_record = Stores.record
    failures = 2

    async def flaky_record(self: Stores, key: str, outcome: Any) -> None:
        nonlocal failures
        if failures:
            failures -= 1
            raise TimeoutError("the broker is away")
        await real_record(self, key, outcome)

    monkeypatch.setattr(Stores, "record", flaky_record)
    async with Receiver() as receiver:
        await start_notifier()
        await bus.publish(done("o_rec1", receiver.url()))
        [outcome] = await outcomes(bus, "o_rec1")
        await asyncio.sleep(0.5)  # a redelivered job would have posted again by now
        assert len(receiver.requests) == 1
    assert failures == 0
    assert isinstance(outcome, WebhookDelivered)
    assert outcome.attempt == 1


async def test_an_outcome_unrecordable_for_longer_than_the_ack_wait_is_kept_not_posted_again(
    bus: Bus, start_notifier: StartNotifier, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An outage longer than the ack wait: the outcome is kept and the job kept in progress."""
    ack_wait_s = 1.0
    real_record = Stores.record
    broken_until = 0.0

    async def failing_record(self: Stores, key: str, outcome: Any) -> None:
        if time.monotonic() < broken_until:
            raise TimeoutError("the broker is away")
        await real_record(self, key, outcome)

    monkeypatch.setattr(Stores, "record", failing_record)
    async with Receiver() as receiver:
        await start_notifier(ack_wait_s=ack_wait_s)
        broken_until = time.monotonic() + 2.5 * ack_wait_s
        await bus.publish(done("o_rec2", receiver.url()))
        [outcome] = await outcomes(bus, "o_rec2", timeout=10)
        await asyncio.sleep(ack_wait_s * 1.5)  # a redelivered job would have posted again
        assert len(receiver.requests) == 1
    assert time.monotonic() >= broken_until
    assert isinstance(outcome, WebhookDelivered)
    assert outcome.attempt == 1
