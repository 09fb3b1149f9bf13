"""`orra grounding apply|ls|rm` against the real nats-server (KV-backed grounding store)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from orra_cli.app import app

YAML = """
name: ecommerce
strict: false
use-cases:
  - action: "Process order {orderId} and arrange delivery"
    intent: "take payment, check stock, then schedule delivery"
    capabilities: ["payment", "inventory", "delivery"]
    params: {orderId: "ORD123"}
constraints:
  - "Never deliver before the payment is confirmed"
"""


@pytest.fixture
def run(nats_url: str, namespace: str, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("ORRA_NATS_URL", nats_url)
    monkeypatch.setenv("ORRA_NAMESPACE", namespace)
    runner = CliRunner()
    return lambda *args: runner.invoke(app, list(args), catch_exceptions=False)


def test_apply_ls_rm_round_trip(run, tmp_path: Path) -> None:
    path = tmp_path / "grounding.yaml"
    path.write_text(YAML)

    applied = run("grounding", "apply", "-f", str(path), "--json")
    assert applied.exit_code == 0, applied.output
    assert json.loads(applied.stdout) == {"applied": ["ecommerce"]}

    listed = run("grounding", "ls", "--json")
    assert listed.exit_code == 0, listed.output
    assert json.loads(listed.stdout)["items"] == [
        {"name": "ecommerce", "useCases": 1, "constraints": 1, "strict": False}
    ]

    removed = run("grounding", "rm", "ecommerce")
    assert removed.exit_code == 0, removed.output
    assert json.loads(run("grounding", "ls", "--json").stdout)["items"] == []


def test_rm_unknown_grounding_fails_with_a_next_step(run) -> None:
    result = run("grounding", "rm", "nope")
    assert result.exit_code == 1
    assert "orra grounding ls" in result.stderr


def test_apply_invalid_yaml_names_the_file(run, tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("name: [unclosed")
    result = run("grounding", "apply", "-f", str(path))
    assert result.exit_code == 1
    assert "bad.yaml" in result.stderr


def test_apply_missing_file_is_a_usage_error(run, tmp_path: Path) -> None:
    result = run("grounding", "apply", "-f", str(tmp_path / "missing.yaml"))
    assert result.exit_code == 2
    assert "cannot read" in result.stderr
