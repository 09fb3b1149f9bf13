"""Pure rules of the notifier: payloads, targets, URL safety, retry decisions, records."""

from __future__ import annotations

import msgspec
import pytest

from orra_events import (
    OrchestrationAborted,
    OrchestrationDone,
    OrchestrationFailed,
    ProjectWebhooks,
    SigningSecretRecord,
    UncoveredPart,
    WebhookAttempt,
    WebhookDelivered,
    WebhookFailed,
    WebhookRecord,
    decode_project_webhooks,
    decode_signing_secret,
    encode_record,
    first_signing_secret,
    rotate_signing_secret,
    signing_secrets,
)
from orra_notifier import InvalidSettings, NotifierSettings, UnsafeWebhookUrl
from orra_notifier.domain import (
    MAX_ATTEMPT_ERROR,
    MAX_ATTEMPT_LOG,
    AttemptResult,
    DeliveryOutcome,
    RetryPolicy,
    Verdict,
    backoff_s,
    build_payload,
    check_url_shape,
    decide,
    delivery_event_id,
    encode_payload,
    is_public_address,
    log_attempt,
    non_public_refusal,
    outcome_event,
    parse_retry_after,
    status_of,
    target_urls,
    webhook_id,
)

from .helpers import done

POLICY = RetryPolicy(base_s=1.0, max_s=60.0, deadline_s=3600.0)


def test_payload_of_each_terminal_event() -> None:
    completed = done("o_1", None, results={"deliveryTracking": "DLV987"})
    failed = OrchestrationFailed(event_id="end:o_2", orchestration_id="o_2", error="no stock")
    aborted = OrchestrationAborted(
        event_id="end:o_3", orchestration_id="o_3", reason="user abort", payload={"by": "me"}
    )
    assert build_payload(completed) == {
        "orchestrationId": "o_1",
        "status": "completed",
        "results": {"deliveryTracking": "DLV987"},
        "error": None,
        "uncovered": [],
    }
    assert build_payload(failed) == {
        "orchestrationId": "o_2",
        "status": "failed",
        "results": None,
        "error": "no stock",
        "uncovered": [],
    }
    assert build_payload(aborted) == {
        "orchestrationId": "o_3",
        "status": "aborted",
        "results": {"by": "me"},
        "error": "user abort",
        "uncovered": [],
    }
    assert [status_of(e) for e in (completed, failed, aborted)] == [
        "completed",
        "failed",
        "aborted",
    ]
    assert encode_payload(build_payload(completed)).startswith(b'{"orchestrationId":"o_1"')


def test_the_payload_says_what_a_partial_plan_left_out() -> None:
    gap = UncoveredPart(part="gift-wrap it", reason="nothing registered can gift-wrap")
    completed = OrchestrationDone(
        event_id="end:o_p", orchestration_id="o_p", results={}, outputs={}, uncovered=[gap]
    )
    assert build_payload(completed)["uncovered"] == [
        {"part": "gift-wrap it", "reason": "nothing registered can gift-wrap"}
    ]


def test_targets_keep_order_and_drop_duplicates_and_blanks() -> None:
    assert target_urls("https://a/x", ["https://b/y", "https://a/x", " ", ""]) == [
        "https://a/x",
        "https://b/y",
    ]
    assert target_urls(None, []) == []


def test_project_webhooks_record_is_the_gateways_format() -> None:
    raw = (
        b'{"webhooks": [{"id": "wh_1", "url": "https://a", "createdAt": 1.0},'
        b' {"id": "wh_2", "url": "https://b", "createdAt": 2.0, "extra": true},'
        b' {"id": "wh_3", "url": "https://a", "createdAt": 3.0}]}'
    )
    record = decode_project_webhooks(raw)
    assert record.urls() == ["https://a", "https://b"]
    assert record.webhooks[0] == WebhookRecord(id="wh_1", url="https://a", created_at=1.0)
    assert decode_project_webhooks(encode_record(record)) == record
    assert ProjectWebhooks().urls() == []
    with pytest.raises(msgspec.DecodeError):
        decode_project_webhooks(b'["https://a"]')


def test_ids_are_stable_and_distinct_per_url() -> None:
    a = webhook_id("o_1", "https://a")
    assert a == webhook_id("o_1", "https://a")
    assert a.startswith("msg_")
    assert a != webhook_id("o_1", "https://b") != webhook_id("o_2", "https://a")
    assert delivery_event_id("o_1", "https://a").startswith("w:o_1:")


@pytest.mark.parametrize(
    "url", ["ftp://example.com/x", "http:///nohost", "example.com/x", "http://a:99999/"]
)
def test_malformed_urls_are_refused(url: str) -> None:
    with pytest.raises(UnsafeWebhookUrl):
        check_url_shape(url)


def test_url_shape_gives_host_and_default_port() -> None:
    assert check_url_shape("https://example.com/hook") == ("example.com", 443)
    assert check_url_shape("http://example.com:8080/hook") == ("example.com", 8080)


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("8.8.8.8", True),
        ("2606:4700:4700::1111", True),
        ("127.0.0.1", False),
        ("10.1.2.3", False),
        ("172.16.0.1", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),
        ("100.64.0.1", False),
        ("0.0.0.0", False),
        ("::1", False),
        ("fe80::1%eth0", False),
        ("fd00::1", False),
        ("::ffff:10.0.0.1", False),
        ("224.0.0.1", False),
    ],
)
def test_public_addresses(address: str, public: bool) -> None:
    assert is_public_address(address) is public


def test_backoff_doubles_with_jitter_and_is_capped() -> None:
    assert backoff_s(1, POLICY, 0.0) == 0.5
    assert backoff_s(1, POLICY, 0.999) < 1.0
    assert backoff_s(3, POLICY, 0.0) == 2.0
    assert backoff_s(50, POLICY, 0.0) == 30.0
    assert backoff_s(10_000, POLICY, 0.5) <= 60.0


def response(code: int, retry_after: float | None = None) -> AttemptResult:
    return AttemptResult(kind="response", status_code=code, retry_after_s=retry_after)


@pytest.mark.parametrize(
    ("result", "verdict"),
    [
        (response(200), Verdict.DELIVERED),
        (response(204), Verdict.DELIVERED),
        (response(500), Verdict.RETRY),
        (response(503), Verdict.RETRY),
        (response(408), Verdict.RETRY),
        (response(429), Verdict.RETRY),
        (AttemptResult(kind="timeout"), Verdict.RETRY),
        (AttemptResult(kind="connection", error="refused"), Verdict.RETRY),
        (response(400), Verdict.GIVE_UP),
        (response(401), Verdict.GIVE_UP),
        (response(404), Verdict.GIVE_UP),
        (response(410), Verdict.GIVE_UP),
        (response(301), Verdict.GIVE_UP),
        (AttemptResult(kind="refused", error="private"), Verdict.GIVE_UP),
    ],
)
def test_what_is_retried(result: AttemptResult, verdict: Verdict) -> None:
    decision = decide(result, attempt=1, first_attempt_at=0.0, now=1.0, policy=POLICY, rand=0.0)
    assert decision.verdict is verdict


def test_retry_after_is_honoured_and_the_deadline_ends_retries() -> None:
    decision = decide(
        response(429, 120.0), attempt=1, first_attempt_at=0.0, now=0.0, policy=POLICY, rand=0.0
    )
    assert decision.delay_s == 120.0
    late = decide(
        response(500), attempt=9, first_attempt_at=0.0, now=3599.0, policy=POLICY, rand=0.0
    )
    assert late.verdict is Verdict.GIVE_UP
    assert "HTTP 500" in late.reason
    assert "deadline" in late.reason


def test_retry_after_header_forms() -> None:
    assert parse_retry_after("7", now=0.0) == 7.0
    assert parse_retry_after("Thu, 01 Jan 1970 00:01:40 GMT", now=40.0) == 60.0
    assert parse_retry_after("soon", now=0.0) is None
    assert parse_retry_after(None, now=0.0) is None


def test_outcome_events() -> None:
    ok = DeliveryOutcome(
        orchestration_id="o_1",
        url="https://a",
        delivered=True,
        attempts=3,
        status_code=200,
        error=None,
        webhook_id="msg_x",
        at=5.0,
    )
    event = outcome_event(ok)
    assert isinstance(event, WebhookDelivered)
    assert (event.attempt, event.status_code, event.event_id) == (
        3,
        200,
        delivery_event_id("o_1", "https://a"),
    )
    failed = outcome_event(
        DeliveryOutcome(
            orchestration_id="o_1",
            url="https://a",
            delivered=False,
            attempts=1,
            status_code=400,
            error="HTTP 400 is not retried",
            webhook_id="msg_x",
            at=5.0,
        )
    )
    assert isinstance(failed, WebhookFailed)
    assert (failed.attempts, failed.status_code, failed.error) == (
        1,
        400,
        "HTTP 400 is not retried",
    )


def test_secret_records_and_rotation_grace() -> None:
    record = decode_signing_secret(
        b'{"secret": "whsec_bmV3", "createdAt": 90.0, "previousSecret": "whsec_b2xk",'
        b' "rotatedAt": 90.0, "previousExpiresAt": 100.0}'
    )
    assert record == SigningSecretRecord(
        secret="whsec_bmV3",
        created_at=90.0,
        previous_secret="whsec_b2xk",
        rotated_at=90.0,
        previous_expires_at=100.0,
    )
    assert signing_secrets(record, now=95.0) == ["whsec_bmV3", "whsec_b2xk"]
    assert signing_secrets(record, now=150.0) == ["whsec_bmV3"]
    no_expiry = SigningSecretRecord(secret="whsec_bmV3", created_at=0.0, previous_secret="x")
    assert signing_secrets(no_expiry, now=0.0) == ["whsec_bmV3"]


def test_rotation_keeps_the_previous_secret_for_the_grace_period() -> None:
    first = first_signing_secret("whsec_b2xk", now=10.0)
    assert signing_secrets(first, now=10.0) == ["whsec_b2xk"]
    rotated = rotate_signing_secret(first, "whsec_bmV3", now=20.0, grace_s=60.0)
    assert rotated == SigningSecretRecord(
        secret="whsec_bmV3",
        created_at=20.0,
        previous_secret="whsec_b2xk",
        rotated_at=20.0,
        previous_expires_at=80.0,
    )
    assert signing_secrets(rotated, now=79.0) == ["whsec_bmV3", "whsec_b2xk"]
    assert signing_secrets(rotated, now=80.0) == ["whsec_bmV3"]
    again = rotate_signing_secret(rotated, "whsec_dGhpcmQ=", now=30.0, grace_s=60.0)
    assert signing_secrets(again, now=31.0) == ["whsec_dGhpcmQ=", "whsec_bmV3"]
    fresh = rotate_signing_secret(None, "whsec_bmV3", now=5.0)
    assert (fresh.previous_secret, fresh.previous_expires_at) == (None, None)
    assert decode_signing_secret(encode_record(rotated)) == rotated
    assert b'"previousExpiresAt":80.0' in encode_record(rotated)


def test_settings_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORRA_NOTIFIER_DEADLINE_S", "120")
    monkeypatch.setenv("ORRA_NOTIFIER_TIMEOUT_S", "3")
    monkeypatch.setenv("ORRA_ALLOW_PRIVATE_WEBHOOKS", "true")
    settings = NotifierSettings.from_env()
    assert (settings.deadline_s, settings.timeout_s, settings.allow_private) == (120, 3, True)
    monkeypatch.delenv("ORRA_ALLOW_PRIVATE_WEBHOOKS")
    monkeypatch.delenv("ORRA_NOTIFIER_DEADLINE_S")
    defaults = NotifierSettings.from_env()
    assert (defaults.deadline_s, defaults.allow_private) == (86_400.0, False)
    with pytest.raises(InvalidSettings):
        NotifierSettings(timeout_s=0)


def test_the_payload_says_how_a_compensation_went() -> None:
    from orra_events import CompensationSummary

    summary = CompensationSummary(compensated=["delivery"], failed=["inventory"])
    failed = OrchestrationFailed(
        event_id="e", orchestration_id="o_1", error="notify failed", compensation=summary
    )
    assert build_payload(failed)["compensation"] == {
        "compensated": ["delivery"],
        "failed": ["inventory"],
        "skipped": [],
    }
    assert "compensation" not in build_payload(done("o_2", None))


def test_only_a_failed_compensation_after_a_users_abort_is_reported() -> None:
    from orra_events import CompensationSummary
    from orra_notifier.domain import (
        COMPENSATION,
        compensation_report,
        delivery_key,
        needs_compensation_report,
    )

    user_abort = OrchestrationAborted(event_id="e", orchestration_id="o_1", reason="by user")
    failed = CompensationSummary(failed=["inventory"])
    clean = CompensationSummary(compensated=["payment"])
    assert needs_compensation_report(user_abort, failed)
    assert not needs_compensation_report(user_abort, clean)
    ended_by_dispatcher = OrchestrationAborted(
        event_id="e", orchestration_id="o_1", reason="by service", compensation=failed
    )
    assert not needs_compensation_report(ended_by_dispatcher, failed)
    assert not needs_compensation_report(None, failed)
    report = compensation_report(user_abort, failed)
    assert report["status"] == "aborted"
    assert report["compensation"]["failed"] == ["inventory"]
    url = "https://example.com/h"
    assert webhook_id("o_1", url, COMPENSATION) != webhook_id("o_1", url)
    assert delivery_key("o_1", url, COMPENSATION) != delivery_key("o_1", url)
    assert delivery_event_id("o_1", url, COMPENSATION) != delivery_event_id("o_1", url)


def test_the_attempt_log_keeps_codes_short_errors_and_the_latest_attempts() -> None:
    log = log_attempt(
        [], AttemptResult(kind="response", status_code=503), attempt=1, at=1.0, duration_s=0.25
    )
    log = log_attempt(
        log, AttemptResult(kind="connection", error="x" * 500), attempt=2, at=2.0, duration_s=0
    )
    log = log_attempt(
        log, AttemptResult(kind="response", status_code=200), attempt=3, at=3.0, duration_s=0.01
    )
    assert [(a.n, a.status_code) for a in log] == [(1, 503), (2, None), (3, 200)]
    assert log[0] == WebhookAttempt(n=1, at=1.0, status_code=503, duration_ms=250.0)
    assert log[1].error is not None
    assert log[1].error.startswith("connection: xxx")
    assert len(log[1].error) == MAX_ATTEMPT_ERROR
    assert log[2].error is None
    # an attempt redelivered after a crash while being recorded replaces its record
    again = log_attempt(
        log, AttemptResult(kind="timeout", error="slow"), attempt=3, at=4.0, duration_s=1
    )
    assert [(a.n, a.error) for a in again] == [(1, None), (2, log[1].error), (3, "timeout: slow")]
    # only the latest attempts are kept; their numbers say how many came before
    long: list[WebhookAttempt] = []
    for n in range(1, MAX_ATTEMPT_LOG + 6):
        long = log_attempt(
            long, AttemptResult(kind="response", status_code=500), attempt=n, at=n, duration_s=0
        )
    assert len(long) == MAX_ATTEMPT_LOG
    assert [a.n for a in long] == list(range(6, MAX_ATTEMPT_LOG + 6))


def test_outcome_events_carry_the_attempt_log() -> None:
    log = [
        WebhookAttempt(n=1, at=1.0, status_code=503),
        WebhookAttempt(n=2, at=2.0, status_code=200),
    ]
    fields = {"orchestration_id": "o_1", "url": "https://a", "webhook_id": "msg_1", "at": 3.0}
    delivered = outcome_event(
        DeliveryOutcome(
            delivered=True, attempts=2, status_code=200, error=None, attempt_log=log, **fields
        )
    )
    assert isinstance(delivered, WebhookDelivered)
    assert delivered.attempt_log == log
    failed = outcome_event(
        DeliveryOutcome(
            delivered=False,
            attempts=1,
            status_code=400,
            error="HTTP 400",
            attempt_log=log[:1],
            **fields,
        )
    )
    assert isinstance(failed, WebhookFailed)
    assert [a.status_code for a in failed.attempt_log] == [503]
    # an outcome recorded before the log existed still decodes
    stored = msgspec.json.decode(
        b'{"orchestration_id":"o_1","url":"https://a","delivered":false,"attempts":1,'
        b'"status_code":400,"error":"HTTP 400","webhook_id":"msg_1","at":3.0}',
        type=DeliveryOutcome,
    )
    assert stored.attempt_log == []


def test_a_host_is_refused_if_any_of_its_addresses_is_not_public() -> None:
    assert non_public_refusal("example.com", ["93.184.216.34"]) is None
    refusal = non_public_refusal("evil.example", ["93.184.216.34", "10.0.0.5"])
    assert refusal is not None
    assert "10.0.0.5" in refusal
    assert "ORRA_ALLOW_PRIVATE_WEBHOOKS" in refusal
    assert non_public_refusal("nothing.example", []) is not None
    for private in ("127.0.0.1", "::1", "169.254.169.254", "::ffff:192.168.1.1", "0.0.0.0"):
        assert non_public_refusal("h", [private]) is not None, private
