"""The contract check every test receiver runs: what it accepts, and what it refuses.

The bodies the notifier builds for every kind of event match the document the gateway
publishes; a body that differs from it in any way (the payload before the schema was
published, a field missing or added, a status outside the enum) and a delivery without
its signature headers or content type are reported, and fail the test that received them.
"""

from __future__ import annotations

import json
from typing import Any

import msgspec

from orra_events import CompensationSummary, OrchestrationAborted, OrchestrationFailed
from orra_notifier.domain import build_payload, compensation_report, encode_payload
from orra_notifier.signing import generate_secret, webhook_headers
from tests import webhook_contract

from .helpers import done

SECRET = generate_secret()


def headers_for(body: bytes) -> dict[str, str]:
    return {"content-type": "application/json", **webhook_headers([SECRET], "msg_x", 1, body)}


def every_kind_of_body() -> list[bytes]:
    summary = CompensationSummary(compensated=["payment"], failed=["inventory"])
    user_abort = OrchestrationAborted(event_id="e", orchestration_id="o_3", reason="by user")
    payloads = [
        build_payload(done("o_1", None)),
        build_payload(
            OrchestrationFailed(
                event_id="e", orchestration_id="o_2", error="boom", compensation=summary
            )
        ),
        build_payload(user_abort),
        build_payload(
            OrchestrationAborted(
                event_id="e", orchestration_id="o_4", reason="refused", payload={"by": "svc"}
            )
        ),
        compensation_report(user_abort, summary),
    ]
    return [encode_payload(p) for p in payloads]


def completed_body(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(every_kind_of_body()[0])
    body.update(changes)
    return body


def test_every_body_the_notifier_builds_matches_the_published_document() -> None:
    for body in every_kind_of_body():
        assert webhook_contract.problems(headers_for(body), body) == []


def test_the_payload_from_before_the_published_schema_is_refused() -> None:
    old = msgspec.json.encode(
        {"orchestrationId": "o_1", "status": "completed", "results": {}, "error": None}
    )
    [problem] = webhook_contract.problems(headers_for(old), old)
    assert "type None is not a published webhook" in problem


def test_a_missing_an_added_or_a_wrong_field_is_refused() -> None:
    missing = completed_body()
    del missing["resultsByTask"]
    assert any("resultsByTask" in p for p in webhook_contract.body_problems(missing))
    added = completed_body(debug=True)
    assert any("debug" in p for p in webhook_contract.body_problems(added))
    wrong = completed_body(status="done")
    assert any(
        p.startswith("orchestration.result: status:") for p in webhook_contract.body_problems(wrong)
    )
    nested = completed_body(uncovered=[{"part": "x"}])
    assert any("uncovered/0" in p for p in webhook_contract.body_problems(nested))
    report = json.loads(every_kind_of_body()[-1])
    assert webhook_contract.body_problems({**report, "compensation": None})


def test_a_delivery_without_its_headers_is_refused() -> None:
    body = every_kind_of_body()[0]
    headers = headers_for(body)
    del headers["webhook-signature"]
    headers["content-type"] = "text/plain"
    assert webhook_contract.problems(headers, body) == [
        "orchestration.result: header webhook-signature is missing",
        "orchestration.result: content-type 'text/plain' is not one of ['application/json']",
    ]
    assert webhook_contract.problems(headers_for(b"not json"), b"not json")[0].startswith(
        "the body is not JSON"
    )


def test_observed_deliveries_are_checked_once_after_the_test() -> None:
    good = every_kind_of_body()[0]
    webhook_contract.observe("receiver A", headers_for(good), good)
    bad = msgspec.json.encode(completed_body(status="done"))
    webhook_contract.observe("receiver B", headers_for(bad), bad)
    [violation] = webhook_contract.take_violations()
    assert violation.startswith("receiver B: orchestration.result: status:")
    assert webhook_contract.take_violations() == []
