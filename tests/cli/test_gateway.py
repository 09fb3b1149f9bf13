"""The CLI against the real gateway: what it sends is what the gateway accepts and records."""

from __future__ import annotations

import json
from typing import Any

from typer.testing import CliRunner

from orra_cli.app import app
from orra_cli.errors import EXIT_FAILED

from .conftest import RealGateway


def orra(*args: str) -> Any:
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def test_verify_run_sends_mode_and_pause_grace(real_gateway: RealGateway) -> None:
    run = orra(
        "verify", "run", "Pay and notify", "-d", "orderId:ORD1", "--mode", "eager",
        "--pause-grace", "120", "--json",
    )  # fmt: skip
    assert run.exit_code == 0, run.output
    orch_id = json.loads(run.stdout)["orchestrationId"]
    assert [e.orchestration_id for e in real_gateway.submitted] == [orch_id]
    submitted = real_gateway.submitted[0]
    assert (submitted.mode, submitted.pause_grace_s) == ("eager", 120)

    view = json.loads(orra("inspect", orch_id, "--json").stdout)
    assert view["mode"] == "eager"
    assert view["status"] == "running"
    detailed = orra("inspect", "-d", orch_id)
    assert detailed.exit_code == 0, detailed.output
    assert "│ Mode: eager" in detailed.stdout

    default = orra("verify", "run", "Pay and notify", "-d", "orderId:ORD2", "--json")
    assert default.exit_code == 0, default.output
    assert (real_gateway.submitted[1].mode, real_gateway.submitted[1].pause_grace_s) == (
        None,
        None,
    )
    other = json.loads(default.stdout)["orchestrationId"]
    assert json.loads(orra("inspect", other, "--json").stdout)["mode"] is None


def test_webhooks_rm_and_secret(real_gateway: RealGateway) -> None:
    added = json.loads(orra("webhooks", "add", "https://example.com/orra", "--json").stdout)
    hook_id = added["id"]
    assert hook_id in orra("webhooks", "ls").stdout

    removed = orra("webhooks", "rm", hook_id)
    assert removed.exit_code == 0, removed.output
    assert removed.stdout == f"webhook removed: {hook_id}\n"
    assert json.loads(orra("webhooks", "ls", "--json").stdout)["items"] == []
    again = orra("webhooks", "rm", hook_id, "--json")
    assert again.exit_code == EXIT_FAILED
    error = json.loads(again.stdout)
    assert error["httpStatus"] == 404
    assert "orra webhooks ls" in error["error"]
    assert "orra webhooks ls" in again.stderr

    shown = orra("webhooks", "secret")
    assert shown.exit_code == 0, shown.output
    secret = shown.stdout.strip()
    assert secret.startswith("whsec_")
    assert "created " in shown.stderr
    as_json = json.loads(orra("webhooks", "secret", "--json").stdout)
    assert as_json["secret"] == secret
    assert isinstance(as_json["createdAt"], float)

    rotated = orra("webhooks", "secret", "--rotate")
    assert rotated.exit_code == 0, rotated.output
    new = rotated.stdout.strip()
    assert new.startswith("whsec_")
    assert new != secret
    assert "previous secret keeps signing deliveries for 24 h" in rotated.stderr
    assert json.loads(orra("webhooks", "secret", "--json").stdout)["secret"] == new
    rotated_json = json.loads(orra("webhooks", "secret", "--rotate", "--json").stdout)
    assert rotated_json["secret"] not in {secret, new}


def test_api_keys_revoke(real_gateway: RealGateway) -> None:
    created = json.loads(
        orra("api-keys", "gen", "--name", "ci", "--role", "admin", "--json").stdout
    )
    key_id = created["id"]
    assert key_id in orra("api-keys", "ls").stdout

    # the new key works until it is revoked
    assert orra("api-keys", "ls", "--api-key", created["apiKey"]).exit_code == 0
    revoked = orra("api-keys", "revoke", key_id)
    assert revoked.exit_code == 0, revoked.output
    assert revoked.stdout == f"API key revoked: {key_id}\n"
    assert key_id not in orra("api-keys", "ls").stdout
    refused = orra("api-keys", "ls", "--api-key", created["apiKey"])
    assert refused.exit_code == EXIT_FAILED
    assert "refused the API key" in refused.stderr

    again = orra("api-keys", "revoke", key_id)
    assert again.exit_code == EXIT_FAILED
    assert f"no API key {key_id}" in again.stderr
    assert "orra api-keys ls" in again.stderr


def test_revoking_the_key_in_use_says_so(real_gateway: RealGateway) -> None:
    created = json.loads(orra("api-keys", "gen", "--role", "admin", "--json").stdout)
    revoked = orra("api-keys", "revoke", created["id"], "--api-key", created["apiKey"], "--json")
    assert revoked.exit_code == 0, revoked.output
    assert json.loads(revoked.stdout) == {"revoked": created["id"]}
    assert "that was the key this command used" in revoked.stderr
    assert "ORRA_API_KEY" in revoked.stderr
