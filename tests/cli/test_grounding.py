"""`orra grounding apply|ls|rm` against the real gateway (which stores them for the planner)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from orra_cli.app import app
from orra_cli.errors import EXIT_FAILED, EXIT_USAGE

from .conftest import RealGateway

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


def run(*args: str) -> Any:
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


@pytest.mark.usefixtures("real_gateway")
def test_apply_ls_rm_round_trip(tmp_path: Path) -> None:
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
    assert "ecommerce" in run("grounding", "ls").stdout

    removed = run("grounding", "rm", "ecommerce")
    assert removed.exit_code == 0, removed.output
    assert json.loads(run("grounding", "ls", "--json").stdout)["items"] == []


@pytest.mark.usefixtures("real_gateway")
def test_rm_unknown_grounding_fails_with_a_next_step() -> None:
    result = run("grounding", "rm", "nope")
    assert result.exit_code == EXIT_FAILED
    assert "orra grounding ls" in result.stderr


def test_apply_invalid_yaml_names_the_file_and_sends_nothing(
    real_gateway: RealGateway, tmp_path: Path
) -> None:
    del real_gateway
    path = tmp_path / "bad.yaml"
    path.write_text("name: [unclosed")
    result = run("grounding", "apply", "-f", str(path))
    assert result.exit_code == EXIT_FAILED
    assert "bad.yaml" in result.stderr
    no_cases = tmp_path / "empty.yaml"
    no_cases.write_text("name: shop\nuse-cases: []\n")
    result = run("grounding", "apply", "-f", str(no_cases))
    assert result.exit_code == EXIT_FAILED
    assert "no use cases" in result.stderr
    assert json.loads(run("grounding", "ls", "--json").stdout)["items"] == []


def test_apply_missing_file_is_a_usage_error(tmp_path: Path) -> None:
    result = run("grounding", "apply", "-f", str(tmp_path / "missing.yaml"))
    assert result.exit_code == EXIT_USAGE
    assert "cannot read" in result.stderr
