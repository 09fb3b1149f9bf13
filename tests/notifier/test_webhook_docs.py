"""docs/webhooks.md against real deliveries: its snippets run, its tables list every field.

The notifier delivers one of each kind of body (completed, failed after a compensation,
aborted by a service, aborted by a user, and the compensation report that follows) to a
real receiver; the page's Node snippet (under ``node``), its Python snippet and its
extended seed handler (under ``node``, with a stand-in for Express) must accept every
genuine delivery and refuse forged, stale and tampered ones.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import msgspec
import pytest

from orra_events import (
    Bus,
    CompensationSummary,
    OrchestrationAborted,
    OrchestrationCompensated,
    OrchestrationFailed,
)
from orra_events.records import new_signing_secret
from orra_events.webhooks import flat_results, schema_components
from orra_notifier.signing import webhook_headers
from orra_notifier.stores import SECRETS_BUCKET
from tests import webhook_contract

from .conftest import StartNotifier
from .helpers import done, outcomes
from .receiver import Receiver, Request

DOC = Path(__file__).resolve().parents[2] / "docs" / "webhooks.md"
SNIPPET = re.compile(r"<!-- snippet: (\S+) -->\n```\w*\n(.*?)\n```", re.DOTALL)
SEED_RESULTS = {
    "orderStatus": "processed",
    "paymentStatus": "confirmed",
    "deliveryTracking": "DLV987",
    "estimatedDelivery": "2024-11-10",
}

NODE_HARNESS = r"""
const fs = require('node:fs');
const path = require('node:path');
const vm = require('node:vm');
const [dir, casesFile] = process.argv.slice(2);
const cases = JSON.parse(fs.readFileSync(casesFile, 'utf8'));
const verifier = path.join(dir, 'verify-orra-webhook.js');
const { verifyOrraWebhook } = require(verifier);
const out = { verify: [], handler: [] };
for (const c of cases.verify) {
  try {
    const payload = verifyOrraWebhook(c.secret, c.headers, Buffer.from(c.body, 'base64'));
    out.verify.push({ ok: true, orchestrationId: payload.orchestrationId });
  } catch (err) {
    out.verify.push({ ok: false, error: err.message });
  }
}
// the extended seed handler, with a stand-in for Express and the user's functions
let route = null;
const express = () => ({ post: (routePath, ...handlers) => { route = { routePath, handlers }; } });
express.raw = () => (req, res, next) => next();
const calls = [];
const record = (name) => (...args) => { calls.push([name, ...args]); };
const context = vm.createContext({
  require: (name) => {
    if (name === 'express') return express;
    return require(name === './verify-orra-webhook' ? verifier : name);
  },
  process: { env: { ORRA_WEBHOOK_SECRET: cases.secret } },
  processResults: record('processResults'),
  reportUncovered: record('reportUncovered'),
  handleError: record('handleError'),
  handleAbort: record('handleAbort'),
  alertOperator: record('alertOperator'),
  Buffer,
});
vm.runInContext(fs.readFileSync(path.join(dir, 'handler.js'), 'utf8'), context);
for (const c of cases.handler) {
  calls.length = 0;
  let status = null;
  const req = { headers: c.headers, body: Buffer.from(c.body, 'base64') };
  const res = { sendStatus: (code) => { status = code; return res; } };
  const [raw, handle] = route.handlers;
  raw(req, res, () => handle(req, res));
  out.handler.push({ status, calls: JSON.parse(JSON.stringify(calls)) });
}
out.routePath = route.routePath;
console.log(JSON.stringify(out));
"""


def snippets() -> dict[str, str]:
    """The page's code blocks marked ``<!-- snippet: NAME -->``, by name."""
    return dict(SNIPPET.findall(DOC.read_text(encoding="utf-8")))


def test_the_page_has_its_snippets() -> None:
    assert set(snippets()) == {
        "seed-result.json",
        "verify-orra-webhook.js",
        "verify_orra_webhook.py",
        "handler.js",
    }


def test_the_example_is_the_seeds_payload_and_matches_the_schema() -> None:
    example = json.loads(snippets()["seed-result.json"])
    assert webhook_contract.body_problems(example) == []
    assert example["results"] == SEED_RESULTS  # exactly the seed's
    assert example["results"] == flat_results(example["resultsByTask"])


def test_the_field_tables_list_every_field_and_status() -> None:
    text = DOC.read_text(encoding="utf-8")
    for name, schema in schema_components().items():
        for prop in schema.get("properties", {}):
            assert f"`{prop}`" in text or f'"{prop}"' in text, f"{name}.{prop} is not documented"
    for status in ("completed", "failed", "aborted"):
        assert f"`{status}`" in text
    for kind in ("orchestration.result", "orchestration.compensation"):
        assert f"`{kind}`" in text


# --- the snippets against real deliveries --------------------------------------------------------


async def _deliveries(bus: Bus, start_notifier: StartNotifier) -> tuple[str, list[Request]]:
    """One delivery of each kind from a real notifier; the project's secret."""
    outputs = {
        "payment": {"paymentStatus": "confirmed"},
        "inventory": {"orderStatus": "reserved"},
        "delivery": {"deliveryTracking": "DLV987", "estimatedDelivery": "2024-11-10"},
        "notify": {"orderStatus": "processed"},
    }
    compensated = CompensationSummary(compensated=["payment"], skipped=["notify"])
    async with Receiver() as receiver:
        url = receiver.url()
        await start_notifier()
        await bus.publish(done("o_docs1", url, results=flat_results(outputs), outputs=outputs))
        await bus.publish(
            OrchestrationFailed(
                event_id="end:o_docs2",
                orchestration_id="o_docs2",
                error="task 'delivery' (DeliveryAgent) failed: carrier API down",
                compensation=compensated,
                webhook=url,
            )
        )
        await bus.publish(
            OrchestrationAborted(
                event_id="end:o_docs3",
                orchestration_id="o_docs3",
                reason="FraudCheck refused the order",
                payload={"orderId": "ORD1", "by": "FraudCheck"},
                task_id="fraud",
                compensation=compensated,
                webhook=url,
            )
        )
        await bus.publish(
            OrchestrationAborted(
                event_id="end:o_docs4",
                orchestration_id="o_docs4",
                reason="customer cancelled",
                webhook=url,
            )
        )
        await outcomes(bus, "o_docs4")
        await bus.publish(
            OrchestrationCompensated(
                event_id="ce:o_docs4",
                orchestration_id="o_docs4",
                compensation=CompensationSummary(compensated=["delivery"], failed=["payment"]),
            )
        )
        for orch, count in (("o_docs1", 1), ("o_docs2", 1), ("o_docs3", 1), ("o_docs4", 2)):
            await outcomes(bus, orch, count)
        requests = list(receiver.requests)
    kv = await bus.kv(SECRETS_BUCKET)
    entry = await kv.get("default")
    secret = str(json.loads(entry.value or b"")["secret"])
    order = ["o_docs1", "o_docs2", "o_docs3", "o_docs4"]
    requests.sort(key=lambda r: (order.index(json.loads(r.body)["orchestrationId"]), r.at))
    return secret, requests


def _case(secret: str, headers: dict[str, str], body: bytes) -> dict[str, Any]:
    return {"secret": secret, "headers": headers, "body": base64.b64encode(body).decode()}


def _signed(
    secrets: list[str], body: bytes, *, at: float, msg_id: str = "msg_docs"
) -> dict[str, str]:
    return webhook_headers(secrets, msg_id, int(at), body)


def _verify_cases(secret: str, requests: list[Request]) -> tuple[list[dict[str, Any]], list[Any]]:
    """Cases for the verifiers and what each must give: the orchestration id, or refusal."""
    first = requests[0]
    headers = dict(first.headers)
    other = new_signing_secret()
    now = time.time()
    cases: list[tuple[dict[str, Any], Any]] = [
        (_case(secret, dict(r.headers), r.body), json.loads(r.body)["orchestrationId"])
        for r in requests
    ]
    rotated = _signed([other, secret], first.body, at=now)  # during a rotation's grace
    no_signature = {k: v for k, v in headers.items() if k != "webhook-signature"}
    cases += [
        (_case(secret, rotated, first.body), "o_docs1"),
        (_case(other, rotated, first.body), "o_docs1"),
        (_case(secret, headers, first.body + b" "), None),  # tampered body
        (_case(other, headers, first.body), None),  # another project's secret
        (_case(secret, _signed([secret], first.body, at=now - 3600), first.body), None),
        (_case(secret, _signed([secret], first.body, at=now + 3600), first.body), None),
        (_case(secret, no_signature, first.body), None),
        (
            _case(
                secret,
                {
                    **headers,
                    "webhook-signature": headers["webhook-signature"].replace("v1,", "v2,"),
                },
                first.body,
            ),
            None,
        ),
    ]
    return [c for c, _ in cases], [e for _, e in cases]


async def test_the_python_snippet_verifies_real_deliveries_and_refuses_forgeries(
    bus: Bus, start_notifier: StartNotifier
) -> None:
    secret, requests = await _deliveries(bus, start_notifier)
    assert len(requests) == 5
    cases, expected = _verify_cases(secret, requests)
    namespace: dict[str, Any] = {}
    exec(snippets()["verify_orra_webhook.py"], namespace)  # the doc's own code
    verify = namespace["verify_orra_webhook"]
    got: list[Any] = []
    for case in cases:
        try:
            payload = verify(case["secret"], case["headers"], base64.b64decode(case["body"]))
        except ValueError:
            got.append(None)
        else:
            got.append(payload["orchestrationId"])
    assert got == expected


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
async def test_the_node_snippets_verify_and_handle_real_deliveries(
    bus: Bus, start_notifier: StartNotifier, tmp_path: Path
) -> None:
    secret, requests = await _deliveries(bus, start_notifier)
    assert len(requests) == 5
    verify_cases, expected = _verify_cases(secret, requests)
    first = requests[0]
    future = msgspec.json.encode({"type": "approval.requested", "orchestrationId": "o_docs5"})
    handler_cases = [_case(secret, dict(r.headers), r.body) for r in requests] + [
        _case(secret, dict(first.headers), first.body),  # a retry: already handled
        _case(secret, dict(first.headers), first.body + b" "),  # tampered
        _case(secret, _signed([secret], future, at=time.time(), msg_id="msg_future"), future),
    ]
    code = snippets()
    (tmp_path / "verify-orra-webhook.js").write_text(code["verify-orra-webhook.js"])
    (tmp_path / "handler.js").write_text(code["handler.js"])
    (tmp_path / "harness.js").write_text(NODE_HARNESS)
    (tmp_path / "cases.json").write_text(
        json.dumps({"secret": secret, "verify": verify_cases, "handler": handler_cases})
    )
    node = shutil.which("node")
    assert node is not None
    run = subprocess.run(
        [node, str(tmp_path / "harness.js"), str(tmp_path), str(tmp_path / "cases.json")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)
    assert [v["orchestrationId"] if v["ok"] else None for v in out["verify"]] == expected
    assert out["routePath"] == "/webhooks/orra"
    bodies = [json.loads(r.body) for r in requests]
    completed, failed, by_service, by_user, report = bodies
    assert out["handler"] == [
        {
            "status": 200,
            "calls": [
                [
                    "processResults",
                    "o_docs1",
                    completed["results"],
                    completed["resultsByTask"],
                ]
            ],
        },
        {
            "status": 200,
            "calls": [["handleError", "o_docs2", failed["error"], failed["compensation"]]],
        },
        {
            "status": 200,
            "calls": [
                [
                    "handleAbort",
                    "o_docs3",
                    "FraudCheck refused the order",
                    {"orderId": "ORD1", "by": "FraudCheck"},
                    {"compensated": ["payment"], "failed": [], "skipped": ["notify"]},
                ]
            ],
        },
        {"status": 200, "calls": [["handleAbort", "o_docs4", "customer cancelled", None, None]]},
        {"status": 200, "calls": [["alertOperator", "o_docs4", ["payment"]]]},
        {"status": 200, "calls": []},  # the retry is acknowledged, not handled twice
        {"status": 400, "calls": []},
        {"status": 200, "calls": []},  # a type added later is acknowledged
    ]
    assert completed["results"] == SEED_RESULTS
    assert report["type"] == "orchestration.compensation"
    assert by_user["compensation"] is None
    assert by_service["results"] == {"orderId": "ORD1", "by": "FraudCheck"}
