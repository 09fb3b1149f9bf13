from __future__ import annotations

import json
import re
import stat
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from orra_cli.app import app
from orra_cli.config import Settings, write_json_config
from orra_cli.errors import EXIT_FAILED, EXIT_USAGE

from .conftest import API_KEY, FakeGateway, Request
from .samples import created, seed_orchestration


def test_verify_run_sends_json_and_string_values_and_prints_the_plan(
    orra: Any, gateway: FakeGateway
) -> None:
    gateway.route("POST", "/orchestrations", (201, created()))
    result = orra(
        "verify",
        "run",
        "Estimate order delivery and notify customer",
        "-d",
        "orderId:ORD456",
        "-d",
        "customerId:ABC123",
        "-d",
        "amount:299.99",
        "-d",
        'items:[{"id":"PROD789","quantity":2}]',
        "-w",
        "http://localhost:3000/hook",
    )
    assert result.exit_code == 0, result.output
    body = gateway.last("POST", "/orchestrations").body
    assert body == {
        "action": {"content": "Estimate order delivery and notify customer"},
        "data": [
            {"field": "orderId", "value": "ORD456"},
            {"field": "customerId", "value": "ABC123"},
            {"field": "amount", "value": 299.99},
            {"field": "items", "value": [{"id": "PROD789", "quantity": 2}]},
        ],
        "webhook": "http://localhost:3000/hook",
    }
    assert "o_abc123" in result.stdout
    assert "│ 1. payment, inventory" in result.stdout
    assert "│ 2. delivery" in result.stdout
    assert "orra inspect -f o_abc123" in result.stderr


def test_the_seed_command_as_bash_splits_it_still_works(orra: Any, gateway: FakeGateway) -> None:
    gateway.route("POST", "/orchestrations", (201, created()))
    # bash brace-expands -d items:[{"id":"PROD789","quantity":2}] into two words
    result = orra(
        "verify",
        "run",
        "Process new order and arrange optimal delivery",
        "-d",
        "orderId:ORD123",
        "-d",
        "customerId:CUST456",
        "-d",
        "items:[id:PROD789]",
        "items:[quantity:2]",
        "-w",
        "http://localhost:3000/webhooks/order-processing",
    )
    assert result.exit_code == 0, result.output
    data = gateway.last("POST", "/orchestrations").body["data"]
    assert data[2] == {"field": "items", "value": [{"id": "PROD789", "quantity": 2}]}


def test_verify_run_json_output(orra: Any, gateway: FakeGateway) -> None:
    gateway.route("POST", "/orchestrations", (201, created()))
    result = orra("verify", "run", "x", "-d", "orderId:1", "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["orchestrationId"] == "o_abc123"
    assert out["status"] == "running"
    assert [t["id"] for t in out["tasks"]] == ["payment", "inventory", "delivery"]
    assert out["parallel_groups"] == [["payment", "inventory"], ["delivery"]]
    assert "results" not in out


def test_verify_run_wait_follows_to_completion(orra: Any, gateway: FakeGateway) -> None:
    gateway.route("POST", "/orchestrations", (201, created("order123")))
    answers = iter(["running", "running", "completed"])

    def detail(_: Request) -> tuple[int, Any]:
        return 200, seed_orchestration(status=next(answers, "completed"))

    gateway.route("GET", "/orchestrations/order123", detail)
    result = orra("verify", "run", "x", "--wait", "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["status"] == "completed"
    assert out["results"] == {"deliveryTracking": "DLV987"}


def test_verify_run_wait_exits_1_when_it_failed(orra: Any, gateway: FakeGateway) -> None:
    gateway.route("POST", "/orchestrations", (201, created("order123")))
    failed = seed_orchestration(status="failed")
    failed["error"] = "PaymentSvc: card declined"
    gateway.route("GET", "/orchestrations/order123", (200, failed))
    result = orra("verify", "run", "x", "--wait")
    assert result.exit_code == EXIT_FAILED
    assert "card declined" in result.stderr
    assert "│ Status: failed" in result.stdout


def test_verify_run_waits_for_the_plan_after_202(orra: Any, gateway: FakeGateway) -> None:
    gateway.route(
        "POST",
        "/orchestrations",
        (202, created("order123", status="planning") | {"tasks": [], "parallel_groups": []}),
    )
    gateway.route("GET", "/orchestrations/order123", (200, seed_orchestration(status="running")))
    result = orra("verify", "run", "x", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["parallel_groups"] == [
        ["payment", "stock"],
        ["delivery", "notify"],
    ]


def test_422_prints_the_planner_reasons(orra: Any, gateway: FakeGateway) -> None:
    gateway.route(
        "POST",
        "/orchestrations",
        (
            422,
            {
                "title": "action not actionable",
                "status": 422,
                "reasons": ["no service can refund", "orderId is unused"],
            },
        ),
    )
    result = orra("verify", "run", "refund", "-d", "orderId:1")
    assert result.exit_code == EXIT_FAILED
    assert "not accepted" in result.stderr
    assert "no service can refund" in result.stderr
    assert "orderId is unused" in result.stderr


def test_json_rejection_prints_one_object_with_the_status_and_reasons(
    orra: Any, gateway: FakeGateway
) -> None:
    gateway.route(
        "POST",
        "/orchestrations",
        (
            422,
            {
                "type": "urn:orra:problem:planning-failed",
                "title": "Action could not be planned",
                "status": 422,
                "orchestrationId": "o_nope",
                "reasons": ["no registered service can reconcile invoices"],
            },
        ),
    )
    gateway.route(
        "GET", "/orchestrations/o_nope", (200, {"id": "o_nope", "status": "not_actionable"})
    )
    result = orra("verify", "run", "reconcile last nights invoices", "--json")
    assert result.exit_code == EXIT_FAILED
    out = json.loads(result.stdout)
    assert out["orchestrationId"] == "o_nope"
    assert out["status"] == "not_actionable"
    assert out["reasons"] == ["no registered service can reconcile invoices"]
    assert out["tasks"] == []
    assert out["parallel_groups"] == []
    assert "not accepted" in out["error"]
    assert "no registered service" in result.stderr


def test_json_errors_of_any_command_are_json_on_stdout(orra: Any, gateway: FakeGateway) -> None:
    result = orra("inspect", "o_missing", "--json")
    assert result.exit_code == EXIT_FAILED
    out = json.loads(result.stdout)
    assert out["httpStatus"] == 404
    assert "o_missing" in out["error"]


def test_ps_unknown_status_is_a_usage_error(orra: Any, gateway: FakeGateway) -> None:
    result = orra("ps", "--status", "bogus")
    assert result.exit_code == EXIT_USAGE
    assert "paused" in result.stderr
    assert not [r for r in gateway.requests if r.path == "/orchestrations"]


def test_bad_data_field_is_a_usage_error(orra: Any) -> None:
    result = orra("verify", "run", "x", "-d", "novalue")
    assert result.exit_code == EXIT_USAGE
    assert "field:value" in result.stderr


def test_unknown_option_is_a_usage_error(orra: Any) -> None:
    assert orra("ps", "--nope").exit_code == EXIT_USAGE


def test_unreachable_gateway_says_what_to_do(monkeypatch: Any) -> None:
    monkeypatch.setenv("ORRA_API_KEY", API_KEY)
    result = CliRunner().invoke(app, ["--gateway-url", "http://127.0.0.1:9", "ps"])
    assert result.exit_code == EXIT_FAILED
    assert "cannot reach the gateway at http://127.0.0.1:9" in result.stderr
    assert "orra up" in result.stderr
    assert "ORRA_GATEWAY_URL" in result.stderr


def test_missing_api_key_is_a_usage_error(gateway: FakeGateway) -> None:
    result = CliRunner().invoke(app, ["ps", "--gateway-url", gateway.url])
    assert result.exit_code == EXIT_USAGE
    assert "orra up" in result.stderr
    assert "ORRA_API_KEY" in result.stderr


def test_refused_key_says_what_to_do(gateway: FakeGateway) -> None:
    gateway.route("GET", "/orchestrations", (200, {"items": [], "nextCursor": None}))
    result = CliRunner().invoke(app, ["ps", "--gateway-url", gateway.url, "--api-key", "bad"])
    assert result.exit_code == EXIT_FAILED
    assert "refused the API key" in result.stderr


def test_ps_lists_and_filters(orra: Any, gateway: FakeGateway) -> None:
    summary = {
        "id": "order123",
        "action": "Process order and arrange delivery",
        "status": "completed",
        "taskCount": 4,
        "createdAt": 1.0,
        "finishedAt": 2.0,
    }
    gateway.route("GET", "/orchestrations", (200, {"items": [summary], "nextCursor": None}))
    result = orra("ps", "--status", "completed")
    assert result.exit_code == 0, result.output
    assert gateway.last("GET", "/orchestrations").query["status"] == ["completed"]
    header, row = result.stdout.splitlines()
    assert header.split() == ["ID", "ACTION", "STATUS", "TASKS", "CREATED"]
    assert row.startswith("order123  Process order and arrange delivery  completed  4")
    as_json = json.loads(orra("ps", "--json").stdout)
    assert as_json == {"items": [summary], "nextCursor": None}


def test_ps_with_nothing_says_how_to_start(orra: Any, gateway: FakeGateway) -> None:
    gateway.route("GET", "/orchestrations", (200, {"items": [], "nextCursor": None}))
    result = orra("ps")
    assert result.exit_code == 0
    assert result.stdout == ""
    assert "orra verify run" in result.stderr


def test_inspect_draws_the_seed(orra: Any, gateway: FakeGateway) -> None:
    gateway.route("GET", "/orchestrations/order123", (200, seed_orchestration()))
    result = orra("inspect", "order123")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[:5] == [
        "┌─ Orchestration Details",
        "│ ID: order123",
        "│ Status: completed",
        "│ Action: Process order and arrange delivery",
        "│ Created: 2m ago",
    ]
    assert lines[6:12] == [
        "┌─ Tasks",
        "│ ID       SERVICE          STATUS       DURATION",
        "│ payment  PaymentSvc      completed    1.2s",
        "│ stock    InventorySvc    completed    1.1s      # Ran parallel with payment",
        "│ delivery DeliveryAgent   completed    2.3s      # Started after payment & stock",
        "│ notify   NotifySvc       completed    0.8s      # Ran parallel with delivery",
    ]
    detailed = orra("inspect", "-d", "order123")
    assert detailed.stdout.startswith(result.stdout.rstrip("\n"))
    assert "┌─ Plan" in detailed.stdout
    assert json.loads(orra("inspect", "order123", "--json").stdout)["id"] == "order123"


def test_inspect_unknown_id(orra: Any) -> None:
    result = orra("inspect", "o_nope")
    assert result.exit_code == EXIT_FAILED
    assert "o_nope not found" in result.stderr
    assert "orra ps" in result.stderr


def test_services_ls_shows_examples_and_down_services(orra: Any, gateway: FakeGateway) -> None:
    gateway.route(
        "GET",
        "/services",
        (
            200,
            {
                "items": [
                    {
                        "name": "LoyaltyService",
                        "kind": "service",
                        "health": "down",
                        "version": "1",
                        "description": "Award loyalty points",
                        "examples": [],
                    },
                    {
                        "name": "PaymentService",
                        "kind": "service",
                        "health": "healthy",
                        "version": "2",
                        "description": "Takes payments",
                        "examples": ["charge the customer", "bill the card"],
                    },
                ]
            },
        ),
    )
    listed = orra("services", "ls")
    assert listed.exit_code == 0
    lines = listed.stdout.splitlines()
    assert lines[1].startswith("LoyaltyService  service  down     1")
    assert lines[2].startswith("PaymentService  service  healthy  2")
    assert lines[3] == '  examples: "charge the customer"; "bill the card"'
    assert "down: no live instance for ORRA_SERVICE_DOWN_AFTER_S" in listed.stderr


def test_services_keys_webhooks_abort(orra: Any, gateway: FakeGateway) -> None:
    gateway.route(
        "GET",
        "/services",
        (
            200,
            {
                "items": [
                    {
                        "name": "PaymentService",
                        "kind": "service",
                        "status": "healthy",
                        "instances": 1,
                        "description": "Takes payments",
                    }
                ]
            },
        ),
    )
    gateway.route("POST", "/api-keys", (201, {"apiKey": "orra_new", "id": "k_1"}))
    gateway.route("GET", "/api-keys", (200, {"items": [{"id": "k_1", "project": "default"}]}))
    gateway.route("POST", "/webhooks", (201, {"url": "http://h/x", "id": "w_1"}))
    gateway.route("GET", "/webhooks", (200, {"items": [{"url": "http://h/x", "id": "w_1"}]}))
    gateway.route("POST", "/orchestrations/o_1/abort", (202, {"id": "o_1", "status": "aborted"}))

    services = orra("services", "ls")
    assert services.exit_code == 0
    assert "PaymentService  service  healthy" in services.stdout
    assert json.loads(orra("services", "ls", "--json").stdout)["items"][0]["name"] == (
        "PaymentService"
    )
    assert json.loads(orra("api-keys", "gen", "--json").stdout)["apiKey"] == "orra_new"
    assert orra("api-keys", "gen").stdout.strip() == "orra_new  k_1"
    assert "k_1" in orra("api-keys", "ls").stdout
    assert json.loads(orra("api-keys", "ls", "--json").stdout)["items"][0]["id"] == "k_1"
    added = orra("webhooks", "add", "http://h/x")
    assert added.exit_code == 0
    assert gateway.last("POST", "/webhooks").body == {"url": "http://h/x"}
    assert orra("webhooks", "add", "ftp://h").exit_code == EXIT_USAGE
    assert "http://h/x" in orra("webhooks", "ls").stdout
    aborted = orra("abort", "o_1", "--reason", "changed my mind", "--json")
    assert json.loads(aborted.stdout)["status"] == "aborted"
    assert gateway.last("POST", "/orchestrations/o_1/abort").body == {"reason": "changed my mind"}


def test_logs_fall_back_to_the_gateway_stream(
    orra: Any, gateway: FakeGateway, monkeypatch: Any
) -> None:
    monkeypatch.setenv("ORRA_NATS_URL", "nats://127.0.0.1:9")
    events = [
        {"type": "action.submitted", "orchestration_id": "o_1", "action": "x", "at": 1.0},
        {"type": "orchestration.done", "orchestration_id": "o_1", "results": {}, "at": 2.0},
    ]
    sse = "".join(
        f"id: {i}\nevent: {e['type']}\ndata: {json.dumps(e)}\n\n" for i, e in enumerate(events, 1)
    )
    gateway.route("GET", "/orchestrations/o_1/events", (200, sse))
    result = orra("logs", "o_1", "--json")
    assert result.exit_code == 0, result.output
    assert [json.loads(line)["type"] for line in result.stdout.splitlines()] == [
        "action.submitted",
        "orchestration.done",
    ]
    assert "cannot reach NATS" in result.stderr


def test_precedence_flags_over_env_over_config(isolated_config: Path, monkeypatch: Any) -> None:
    write_json_config(
        isolated_config,
        {"gatewayUrl": "http://file:1", "apiKey": "file-key", "natsUrl": "nats://file:2"},
    )
    assert stat.S_IMODE(isolated_config.stat().st_mode) == 0o600
    s = Settings.resolve()
    assert (s.gateway_url, s.api_key, s.nats_url) == ("http://file:1", "file-key", "nats://file:2")
    monkeypatch.setenv("ORRA_GATEWAY_URL", "http://env:1/")
    monkeypatch.setenv("ORRA_API_KEY", "env-key")
    s = Settings.resolve()
    assert (s.gateway_url, s.api_key) == ("http://env:1", "env-key")
    s = Settings.resolve(gateway_url="http://flag:1", api_key="flag-key")
    assert (s.gateway_url, s.api_key) == ("http://flag:1", "flag-key")


def test_broken_config_file_is_a_usage_error(isolated_config: Path) -> None:
    isolated_config.write_text("{oops")
    result = CliRunner().invoke(app, ["ps"])
    assert result.exit_code == EXIT_USAGE
    assert str(isolated_config) in result.stderr


def test_comp_fail_ls_resolve_ignore(orra: Any, gateway: FakeGateway) -> None:
    failure = {
        "id": "o_abc:inventory",
        "orchestrationId": "o_abc",
        "taskId": "inventory",
        "service": "InventoryService",
        "status": "failed",
        "attempts": 3,
        "failedAt": 1.0,
        "error": "stock system refused the release",
    }
    gateway.route("GET", "/compensation-failures", (200, {"items": [failure]}))
    listed = orra("comp-fail", "ls")
    assert listed.exit_code == 0, listed.output
    header, row = listed.stdout.splitlines()
    assert header.split() == ["ID", "SERVICE", "STATUS", "ATTEMPTS", "FAILED", "ERROR"]
    assert row.split()[:4] == ["o_abc:inventory", "InventoryService", "failed", "3"]
    assert "stock system refused the release" in row
    assert "status" not in gateway.last("GET", "/compensation-failures").query
    orra("comp-fail", "ls", "--all")
    assert gateway.last("GET", "/compensation-failures").query["status"] == ["all"]
    assert json.loads(orra("comp-fail", "ls", "--json").stdout) == {"items": [failure]}

    settled = {**failure, "status": "resolved", "resolutionNote": "released by hand"}
    path = "/compensation-failures/o_abc/inventory/resolve"
    gateway.route("POST", path, (200, settled))
    resolved = orra("comp-fail", "resolve", "o_abc:inventory", "--note", "released by hand")
    assert resolved.exit_code == 0, resolved.output
    assert gateway.last("POST", path).body == {"note": "released by hand"}
    assert "compensation o_abc:inventory: resolved" in resolved.stdout

    ignored_path = "/compensation-failures/o_abc/inventory/ignore"
    gateway.route("POST", ignored_path, (200, {**failure, "status": "ignored"}))
    ignored = orra("comp-fail", "ignore", "o_abc:inventory", "--json")
    assert ignored.exit_code == 0, ignored.output
    assert json.loads(ignored.stdout)["status"] == "ignored"
    assert gateway.last("POST", ignored_path).body == {}


def test_comp_fail_bad_id_and_unknown_failure(orra: Any, gateway: FakeGateway) -> None:
    bad = orra("comp-fail", "resolve", "no-colon-here")
    assert bad.exit_code == EXIT_USAGE
    assert "<orchestration id>:<task id>" in bad.stderr
    missing = orra("comp-fail", "ignore", "o_x:t1")
    assert missing.exit_code == EXIT_FAILED
    assert "orra comp-fail ls" in missing.stderr


# --- webhook secret, webhooks rm, api-keys revoke ----------------------------------------


def test_webhooks_secret_shows_it_and_when_it_was_created(orra: Any, gateway: FakeGateway) -> None:
    created = time.time() - 300
    gateway.route("GET", "/webhooks/secret", (200, {"secret": "whsec_old", "createdAt": created}))
    shown = orra("webhooks", "secret")
    assert shown.exit_code == 0, shown.output
    assert shown.stdout == "whsec_old\n"
    stamp = datetime.fromtimestamp(created, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    assert f"created {stamp} (5m ago)" in shown.stderr
    assert "24 h" not in shown.stderr
    as_json = orra("webhooks", "secret", "--json")
    assert json.loads(as_json.stdout) == {"secret": "whsec_old", "createdAt": created}
    assert not [r for r in gateway.requests if r.method == "POST"]


def test_webhooks_secret_rotate_says_the_old_one_signs_for_a_day(
    orra: Any, gateway: FakeGateway
) -> None:
    now = time.time()
    path = "/webhooks/secret/rotate"
    gateway.route("POST", path, (200, {"secret": "whsec_new", "createdAt": now}))
    rotated = orra("webhooks", "secret", "--rotate")
    assert rotated.exit_code == 0, rotated.output
    assert rotated.stdout == "whsec_new\n"
    until = datetime.fromtimestamp(now + 86400, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    assert f"previous secret keeps signing deliveries for 24 h (until {until})" in (rotated.stderr)
    assert "receivers" in rotated.stderr
    assert gateway.last("POST", path).body is None
    as_json = orra("webhooks", "secret", "--rotate", "--json")
    assert json.loads(as_json.stdout) == {"secret": "whsec_new", "createdAt": now}
    assert len([r for r in gateway.requests if r.path == path]) == 2


def test_webhooks_secret_errors(orra: Any, gateway: FakeGateway) -> None:
    gateway.route("POST", "/webhooks/secret/rotate", (409, {"title": "retry", "status": 409}))
    conflict = orra("webhooks", "secret", "--rotate", "--json")
    assert conflict.exit_code == EXIT_FAILED
    assert json.loads(conflict.stdout)["httpStatus"] == 409
    gateway.route("GET", "/webhooks/secret", (200, {"createdAt": 1.0}))
    odd = orra("webhooks", "secret")
    assert odd.exit_code == EXIT_FAILED
    assert odd.stdout == ""
    assert "without a webhook secret" in odd.stderr


def test_webhooks_rm(orra: Any, gateway: FakeGateway) -> None:
    gateway.route("DELETE", "/webhooks/wh_1", (204, None))
    removed = orra("webhooks", "rm", "wh_1")
    assert removed.exit_code == 0, removed.output
    assert removed.stdout == "webhook removed: wh_1\n"
    assert gateway.last("DELETE", "/webhooks/wh_1").body is None
    as_json = orra("webhooks", "rm", "wh_1", "--json")
    assert json.loads(as_json.stdout) == {"removed": "wh_1"}

    missing = orra("webhooks", "rm", "wh_nope")
    assert missing.exit_code == EXIT_FAILED
    assert "no webhook wh_nope: list them with `orra webhooks ls`" in missing.stderr
    missing_json = orra("webhooks", "rm", "wh_nope", "--json")
    assert missing_json.exit_code == EXIT_FAILED
    error = json.loads(missing_json.stdout)
    assert error["httpStatus"] == 404
    assert "orra webhooks ls" in error["error"]


def test_webhooks_rm_usage_errors(orra: Any, gateway: FakeGateway) -> None:
    by_url = orra("webhooks", "rm", "https://h/x")
    assert by_url.exit_code == EXIT_USAGE
    assert "orra webhooks ls" in by_url.stderr
    assert orra("webhooks", "rm").exit_code == EXIT_USAGE
    as_json = orra("webhooks", "rm", "a/b", "--json")
    assert as_json.exit_code == EXIT_USAGE
    assert "not a webhook id" in json.loads(as_json.stdout)["error"]
    assert not [r for r in gateway.requests if r.method == "DELETE"]


def test_api_keys_revoke(orra: Any, gateway: FakeGateway) -> None:
    gateway.route("DELETE", "/api-keys/k_1", (204, None))
    revoked = orra("api-keys", "revoke", "k_1")
    assert revoked.exit_code == 0, revoked.output
    assert revoked.stdout == "API key revoked: k_1\n"
    assert "this command used" not in revoked.stderr
    assert json.loads(orra("api-keys", "revoke", "k_1", "--json").stdout) == {"revoked": "k_1"}

    missing = orra("api-keys", "revoke", "k_nope")
    assert missing.exit_code == EXIT_FAILED
    assert "no API key k_nope in this project: list them with `orra api-keys ls`" in (
        missing.stderr
    )
    assert json.loads(orra("api-keys", "revoke", "k_nope", "--json").stdout)["httpStatus"] == 404
    assert orra("api-keys", "revoke").exit_code == EXIT_USAGE
    assert orra("api-keys", "revoke", "orra_abc/def").exit_code == EXIT_USAGE


# --- verify run --mode / --pause-grace -----------------------------------------------------


def test_verify_run_sends_mode_and_pause_grace(orra: Any, gateway: FakeGateway) -> None:
    gateway.route("POST", "/orchestrations", (201, created()))
    result = orra("verify", "run", "x", "--mode", "EAGER", "--pause-grace", "90.5")
    assert result.exit_code == 0, result.output
    body = gateway.last("POST", "/orchestrations").body
    assert body["mode"] == "eager"
    assert body["pauseGraceS"] == 90.5
    orra("verify", "run", "x", "--mode", "groups", "--pause-grace", "0")
    body = gateway.last("POST", "/orchestrations").body
    assert (body["mode"], body["pauseGraceS"]) == ("groups", 0)
    orra("verify", "run", "x", "--pause-grace", "604800")
    body = gateway.last("POST", "/orchestrations").body
    assert body["pauseGraceS"] == 604800
    assert "mode" not in body


def test_verify_run_refuses_a_bad_mode_or_pause_grace(orra: Any, gateway: FakeGateway) -> None:
    mode = orra("verify", "run", "x", "--mode", "fast")
    assert mode.exit_code == EXIT_USAGE
    assert "unknown --mode 'fast': use groups" in mode.stderr
    assert "eager" in mode.stderr
    for value in ("-1", "604801", "nan", "inf"):
        bad = orra("verify", "run", "x", "--pause-grace", value)
        assert bad.exit_code == EXIT_USAGE, value
        assert "--pause-grace" in bad.stderr
        assert "from 0 (fail at once) to 604800 (7 days)" in bad.stderr
    not_a_number = orra("verify", "run", "x", "--pause-grace", "5m")
    assert not_a_number.exit_code == EXIT_USAGE
    as_json = orra("verify", "run", "x", "--pause-grace", "-1", "--json")
    assert as_json.exit_code == EXIT_USAGE
    assert "out of range" in json.loads(as_json.stdout)["error"]
    assert not [r for r in gateway.requests if r.path == "/orchestrations"]


# --- paused orchestrations, the planner's model and tokens, progress ----------------------


def _paused(now: float) -> dict[str, Any]:
    orch = seed_orchestration(now, status="paused")
    orch["finishedAt"] = None
    orch["results"] = None
    tasks = orch["tasks"]
    tasks[2] |= {
        "status": "paused",
        "finishedAt": None,
        "durationMs": None,
        "output": None,
        "progress": {"step": "quote", "percent": 40},
        "progressAt": now - 5,
        "progressUpdates": 3,
    }
    tasks[3] |= {
        "status": "pending",
        "startedAt": None,
        "finishedAt": None,
        "durationMs": None,
        "output": None,
    }
    orch["pausedServices"] = ["DeliveryAgent"]
    orch["pausedAt"] = now - 10
    orch["pauseFailAt"] = now + 290
    return orch


def test_ps_shows_paused(orra: Any, gateway: FakeGateway) -> None:
    summary = {
        "id": "o_paused",
        "action": "Deliver order",
        "status": "paused",
        "taskCount": 2,
        "createdAt": time.time() - 30,
        "finishedAt": None,
    }
    gateway.route("GET", "/orchestrations", (200, {"items": [summary], "nextCursor": None}))
    result = orra("ps", "--status", "paused")
    assert result.exit_code == 0, result.output
    assert gateway.last("GET", "/orchestrations").query["status"] == ["paused"]
    row = result.stdout.splitlines()[1]
    assert row.split()[:5] == ["o_paused", "Deliver", "order", "paused", "2"]
    assert json.loads(orra("ps", "--json").stdout)["items"][0]["status"] == "paused"


def test_inspect_shows_paused_and_the_progress_of_a_task(orra: Any, gateway: FakeGateway) -> None:
    gateway.route("GET", "/orchestrations/order123", (200, _paused(time.time())))
    result = orra("inspect", "order123")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert "│ Status: paused" in lines
    waiting = next(line for line in lines if line.startswith("│ Waiting for:"))
    assert "DeliveryAgent unhealthy (no heartbeat); fails in 4m" in waiting
    assert "unless it comes back" in waiting
    delivery = next(line for line in lines if line.startswith("│ delivery"))
    assert delivery.split()[:4] == ["│", "delivery", "DeliveryAgent", "paused"]
    assert delivery.endswith('# progress: {"step": "quote", "percent": 40}')
    notify = next(line for line in lines if line.startswith("│ notify"))
    assert notify.split()[3] == "pending"

    detailed = orra("inspect", "-d", "order123")
    assert detailed.exit_code == 0, detailed.output
    progress = next(line for line in detailed.stdout.splitlines() if "Progress" in line)
    assert re.fullmatch(
        r'│ Progress: \{"step": "quote", "percent": 40\}  \(3 updates, last \d+s ago\)', progress
    )
    assert json.loads(orra("inspect", "order123", "--json").stdout)["status"] == "paused"


def test_inspect_detailed_shows_the_planners_model_and_tokens(
    orra: Any, gateway: FakeGateway
) -> None:
    orch = seed_orchestration()
    orch["mode"] = "eager"
    orch["plan"] = {
        "planner": "llm",
        "model": "gpt-4o-mini",
        "cacheHit": False,
        "attempts": 2,
        "latencyMs": 1840.0,
        "usage": {"prompt_tokens": 812, "completion_tokens": 140, "total_tokens": 952},
    }
    gateway.route("GET", "/orchestrations/order123", (200, orch))
    detailed = orra("inspect", "-d", "order123")
    assert detailed.exit_code == 0, detailed.output
    lines = detailed.stdout.splitlines()
    plan = lines[lines.index("┌─ Plan") :]
    for expected in (
        "│ Planner: llm",
        "│ Model: gpt-4o-mini",
        "│ Cache hit: no",
        "│ Attempts: 2",
        "│ Latency: 1.8s",
        "│ Tokens: 952 (812 prompt, 140 completion)",
    ):
        assert expected in plan, expected
    assert "│ Mode: eager" in lines
    plain = orra("inspect", "order123")
    assert "Tokens" not in plain.stdout
    assert "gpt-4o-mini" not in plain.stdout


def test_verify_run_allow_partial_sends_it_and_shows_what_was_left_out(
    orra: Any, gateway: FakeGateway
) -> None:
    gap = {"part": "gift-wrap it", "reason": "nothing registered can gift-wrap: 'gift-wrap it'"}
    gateway.route("POST", "/orchestrations", (201, {**created(), "uncovered": [gap]}))
    result = orra("verify", "run", "x", "--allow-partial")
    assert result.exit_code == 0, result.output
    assert gateway.last("POST", "/orchestrations").body["allowPartial"] is True
    assert "┌─ Left out" in result.output
    assert "'gift-wrap it'" in result.output
    as_json = json.loads(orra("verify", "run", "x", "--allow-partial", "--json").stdout)
    assert as_json["uncovered"] == [gap]
    orra("verify", "run", "x")
    assert "allowPartial" not in gateway.last("POST", "/orchestrations").body
