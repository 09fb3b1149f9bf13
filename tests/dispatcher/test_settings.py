"""Settings read from the environment."""

from __future__ import annotations

import pytest

from orra_dispatcher import DispatcherSettings, SettingsError


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ORRA_EXECUTION_MODE", "ORRA_DISPATCHER_MAX_ATTEMPTS"):
        monkeypatch.delenv(name, raising=False)
    settings = DispatcherSettings.from_env()
    assert settings.mode == "groups"
    assert settings.max_attempts == 3
    assert settings.task_timeout_s == 30.0
    assert settings.policy.max_attempts == 3


def test_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORRA_EXECUTION_MODE", "eager")
    monkeypatch.setenv("ORRA_DISPATCHER_MAX_ATTEMPTS", "5")
    monkeypatch.setenv("ORRA_DISPATCHER_RETRY_BASE_S", "0.25")
    monkeypatch.setenv("ORRA_DISPATCHER_TASK_TIMEOUT_S", "12")
    settings = DispatcherSettings.from_env()
    assert (settings.mode, settings.max_attempts, settings.retry_base_s) == ("eager", 5, 0.25)
    assert settings.policy.task_timeout_s == 12.0


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("ORRA_EXECUTION_MODE", "fast", "groups' or 'eager"),
        ("ORRA_DISPATCHER_MAX_ATTEMPTS", "0", "at least 1"),
        ("ORRA_DISPATCHER_MAX_ATTEMPTS", "three", "invalid dispatcher setting"),
        ("ORRA_DISPATCHER_RETRY_JITTER", "2", "between 0 and 1"),
    ],
)
def test_invalid_values_are_clear_errors(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, message: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError, match=message):
        DispatcherSettings.from_env()
