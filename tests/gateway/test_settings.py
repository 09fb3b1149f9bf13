"""Gateway settings refused at start."""

from __future__ import annotations

import subprocess
import sys

import pytest

from orra_gateway.errors import GatewayError, SettingsError
from orra_gateway.settings import MIN_BOOTSTRAP_KEY_CHARS, GatewaySettings


def test_a_short_bootstrap_key_is_refused_with_how_to_make_one() -> None:
    with pytest.raises(SettingsError) as refused:
        GatewaySettings(bootstrap_key="replace-me")
    assert "ORRA_GATEWAY_BOOTSTRAP_KEY has 10 characters" in str(refused.value)
    assert "secrets.token_urlsafe(32)" in str(refused.value)
    assert isinstance(refused.value, GatewayError)
    key = "orra_" + "x" * (MIN_BOOTSTRAP_KEY_CHARS - 5)
    assert GatewaySettings(bootstrap_key=key).bootstrap_key == key
    assert GatewaySettings().bootstrap_key is None


def run_gateway(**env: str) -> subprocess.CompletedProcess[str]:
    """``python -m orra_gateway`` with only ``env`` (JSON logs on stderr)."""
    return subprocess.run(  # noqa: PLW1510 - callers assert the exit code
        [sys.executable, "-m", "orra_gateway"],
        env={"ORRA_LOG_FORMAT": "json", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_gateway_process_exits_2_on_a_refused_setting() -> None:
    run = run_gateway(ORRA_GATEWAY_BOOTSTRAP_KEY="replace-me")
    assert run.returncode == 2
    assert "cannot start" in run.stderr
    assert "ORRA_GATEWAY_BOOTSTRAP_KEY" in run.stderr


def test_a_value_that_is_not_a_number_is_named() -> None:
    run = run_gateway(ORRA_GATEWAY_PORT="eighty")
    assert run.returncode == 2
    assert "ORRA_GATEWAY_PORT='eighty' is not a whole number" in run.stderr


def test_metrics_port_and_data_depth_come_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    defaults = GatewaySettings.from_env()
    assert (defaults.health_port, defaults.max_data_depth) == (0, 32)
    monkeypatch.setenv("ORRA_HEALTH_PORT", "9464")
    monkeypatch.setenv("ORRA_GATEWAY_MAX_DATA_DEPTH", "8")
    settings = GatewaySettings.from_env()
    assert (settings.health_port, settings.max_data_depth) == (9464, 8)


@pytest.mark.parametrize("depth", [0, 257])
def test_a_data_depth_out_of_range_is_refused(depth: int) -> None:
    with pytest.raises(SettingsError, match="ORRA_GATEWAY_MAX_DATA_DEPTH is"):
        GatewaySettings(max_data_depth=depth)


def test_retention_settings_are_read_and_refused_when_negative(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    defaults = GatewaySettings()
    assert (defaults.retention_max_age_s, defaults.retention_max_bytes) == (7 * 86400, 512 << 20)
    monkeypatch.setenv("ORRA_RETENTION_MAX_AGE_S", "3600")
    monkeypatch.setenv("ORRA_RETENTION_MAX_BYTES", "0")
    monkeypatch.setenv("ORRA_RETENTION_INTERVAL_S", "2.5")
    monkeypatch.setenv("ORRA_RETENTION_SUMMARY_MAX_AGE_S", "0")
    read = GatewaySettings.from_env()
    assert (read.retention_max_age_s, read.retention_max_bytes) == (3600, 0)
    assert (read.retention_interval_s, read.summary_max_age_s) == (2.5, 0)
    with pytest.raises(SettingsError, match="ORRA_RETENTION_MAX_BYTES=-1 is negative"):
        GatewaySettings(retention_max_bytes=-1)
    with pytest.raises(SettingsError, match="ORRA_RETENTION_INTERVAL_S=0"):
        GatewaySettings(retention_interval_s=0)
    run = run_gateway(ORRA_RETENTION_MAX_AGE_S="-5")
    assert run.returncode == 2
    assert "ORRA_RETENTION_MAX_AGE_S=-5.0 is negative" in run.stderr
