"""The CLI's side of issue 16: key roles, a bad ``-w``, a stack that is down, pending webhooks.

* ``orra api-keys gen --role``, ``ls`` shows roles, ``gen`` prints the key's id beside it;
* a ``-w`` URL that cannot receive webhooks is a usage error (exit 2), not a failure (1);
* ``orra logs ID`` with the stack down prints one clean line, no traceback;
* a webhook still being retried shows in ``orra inspect -d`` and ``orra logs``.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from typing import Any

from typer.testing import CliRunner

from orra_cli.app import app
from orra_cli.errors import EXIT_FAILED, EXIT_USAGE
from orra_cli.render import inspect_text
from orra_events import Bus, Topology, WebhookAttempt, WebhookRetrying
from orra_events.apikeys import api_key_id
from orra_events.embedded import EmbeddedNats, free_port

from .conftest import REAL_KEY, FakeGateway, RealGateway


def orra_real(*args: str) -> Any:
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


# --- api keys ---------------------------------------------------------------------------------


def test_api_keys_gen_sends_the_role_and_prints_the_id_beside_the_key(
    orra: Any, gateway: FakeGateway
) -> None:
    created = {"apiKey": "orra_new", "id": "k_1", "role": "admin", "project": "default"}
    gateway.route("POST", "/api-keys", (201, created))
    gen = orra("api-keys", "gen", "--role", "admin", "--name", "ops")
    assert gen.exit_code == 0, gen.output
    assert gen.stdout == "orra_new  k_1\n"
    assert "admin key k_1 of project default" in gen.stderr
    assert gateway.last("POST", "/api-keys").body == {"name": "ops", "role": "admin"}
    assert orra("api-keys", "gen").exit_code == 0
    assert gateway.last("POST", "/api-keys").body == {}  # the gateway's default: member
    bad = orra("api-keys", "gen", "--role", "owner")
    assert bad.exit_code == EXIT_USAGE
    assert "use admin, approver, member" in bad.stderr


def test_api_keys_ls_shows_roles(orra: Any, gateway: FakeGateway) -> None:
    items = [
        {"id": "k_1", "name": "bootstrap", "role": "admin", "project": "default"},
        {"id": "k_2", "name": "ci", "role": "member", "project": "default"},
    ]
    gateway.route("GET", "/api-keys", (200, {"items": items}))
    listed = orra("api-keys", "ls").stdout.splitlines()
    assert listed[0].split() == ["ID", "NAME", "ROLE", "PROJECT", "CREATED"]
    assert listed[1].split()[:4] == ["k_1", "bootstrap", "admin", "default"]
    assert listed[2].split()[:4] == ["k_2", "ci", "member", "default"]


def test_roles_against_the_real_gateway(real_gateway: RealGateway, monkeypatch: Any) -> None:
    gen = orra_real("api-keys", "gen", "--role", "member", "--json")
    assert gen.exit_code == 0, gen.output
    member = json.loads(gen.stdout)
    assert (member["role"], member["id"]) == ("member", api_key_id(member["apiKey"]))
    human = orra_real("api-keys", "gen", "--role", "admin", "--name", "ops")
    key, key_id = human.stdout.split()
    assert key_id == api_key_id(key)
    roles = orra_real("api-keys", "ls").stdout
    assert f"{key_id}  ops" in roles
    assert "admin" in roles
    assert "member" in roles

    monkeypatch.setenv("ORRA_API_KEY", member["apiKey"])
    refused = orra_real("webhooks", "secret", "--rotate")
    assert refused.exit_code == EXIT_FAILED
    assert "needs an admin key" in refused.stderr
    assert member["id"] in refused.stderr
    monkeypatch.setenv("ORRA_API_KEY", key)
    bootstrap = orra_real("api-keys", "revoke", api_key_id(REAL_KEY))  # ops is an admin too
    assert bootstrap.exit_code == 0, bootstrap.output
    last = orra_real("api-keys", "revoke", key_id)
    assert last.exit_code == EXIT_FAILED
    assert "last admin key" in last.stderr


# --- a bad -w -------------------------------------------------------------------------------


def test_a_webhook_url_that_cannot_be_sent_is_a_usage_error(
    orra: Any, gateway: FakeGateway
) -> None:
    for url in ("http://127.000.000.001:3000/hook", "ftp://example.com/hook", "localhost:3000"):
        run = orra("verify", "run", "Process order", "-w", url)
        assert run.exit_code == EXIT_USAGE, (url, run.output)
        assert "cannot receive webhooks" in run.stderr
        added = orra("webhooks", "add", url)
        assert added.exit_code == EXIT_USAGE, (url, added.output)
    assert gateway.requests == []


def test_a_webhook_the_gateway_refuses_is_a_usage_error(orra: Any, gateway: FakeGateway) -> None:
    problem = {
        "type": "urn:orra:problem:invalid-input",
        "title": "Invalid webhook URL",
        "status": 422,
        "detail": "host '0x7f.1' is the address 127.0.0.1, which is loopback or private",
        "errors": [{"field": "webhook", "message": "loopback or private"}],
    }
    gateway.route("POST", "/orchestrations", (422, problem))
    run = orra("verify", "run", "Process order", "-w", "http://0x7f.1:3000/hook", "--json")
    assert run.exit_code == EXIT_USAGE, run.output
    assert "127.0.0.1, which is loopback or private" in run.stderr
    assert json.loads(run.stdout)["httpStatus"] == 422


# --- the stack is down --------------------------------------------------------------------------


def test_logs_with_the_stack_down_prints_one_clean_line(tmp_path: Any) -> None:
    env = {
        **os.environ,
        "ORRA_CONFIG": str(tmp_path / "none.json"),
        "ORRA_NATS_URL": f"nats://127.0.0.1:{free_port()}",
        "ORRA_GATEWAY_URL": f"http://127.0.0.1:{free_port()}",
        "ORRA_API_KEY": "orra_some_key",
    }
    for command in (["logs", "o_x"], ["logs", "-f", "o_x"], ["inspect", "-f", "o_x"], ["ps"]):
        run = subprocess.run(
            [sys.executable, "-m", "orra_cli", *command],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert run.returncode == EXIT_FAILED, (command, run.stderr)
        assert run.stdout == ""
        lines = run.stderr.splitlines()
        assert len(lines) == 1, (command, run.stderr)
        assert lines[0].startswith("error: cannot reach ")
        assert "orra up" in lines[0]


# --- pending webhooks ---------------------------------------------------------------------------


def test_inspect_detailed_shows_a_pending_delivery_with_its_next_try() -> None:
    now = 1_000.0
    view = {
        "id": "o_1",
        "status": "completed",
        "action": "x",
        "createdAt": 990.0,
        "tasks": [],
        "webhooks": [
            {
                "url": "https://a.example/hook",
                "status": "retrying",
                "attempts": 2,
                "statusCode": 503,
                "nextAttemptAt": now + 12,
                "attemptLog": [
                    {"n": 1, "at": 991.0, "statusCode": 500, "durationMs": 12.0},
                    {"n": 2, "at": 996.0, "statusCode": 503, "durationMs": 9.0},
                ],
            },
            {"url": "https://b.example/hook", "status": "delivered", "attempts": 1},
        ],
    }
    text = inspect_text(view, detailed=True, now=now).plain
    assert "URL                     STATUS     ATTEMPTS  CODE  NEXT TRY" in text
    assert "https://a.example/hook  retrying   2         503   in 12.0s" in text
    assert "https://b.example/hook  delivered  1         -     -" in text
    assert "#1 500 12ms · #2 503 9ms" in text


def test_a_pending_delivery_shows_in_inspect_and_logs_of_the_real_stack(
    real_gateway: RealGateway, nats_server: EmbeddedNats, namespace: str
) -> None:
    run = orra_real("verify", "run", "Pay", "-d", "orderId:ORD1", "-w", "https://x.example/h")
    assert run.exit_code == 0, run.output
    orch_id = real_gateway.submitted[-1].orchestration_id
    next_at = time.time() + 30

    async def publish() -> None:
        bus = await Bus.connect(nats_server.url, Topology(namespace=namespace), name="test")
        try:
            await bus.publish(
                WebhookRetrying(
                    event_id=f"wr:{orch_id}:abc:1",
                    orchestration_id=orch_id,
                    url="https://x.example/h",
                    attempt=1,
                    webhook_id="msg_1",
                    next_attempt_at=next_at,
                    error="connection: refused",
                    attempt_log=[WebhookAttempt(n=1, at=time.time(), error="connection: refused")],
                )
            )
        finally:
            await bus.close()

    asyncio.run(publish())
    deadline = time.monotonic() + 10
    while True:
        shown = orra_real("inspect", "-d", orch_id)
        if "retrying" in shown.stdout or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert "https://x.example/h  retrying  1         -     in " in shown.stdout
    assert "#1 connection: refused" in shown.stdout
    logs = orra_real("logs", orch_id)
    assert logs.exit_code == 0, logs.output
    [line] = [line for line in logs.stdout.splitlines() if "webhook.retrying" in line]
    assert '"https://x.example/h"' in line
    assert f"next_attempt_at={next_at}" in line
