"""Service runtime: settings from the environment and connecting with them."""

from __future__ import annotations

import contextlib
import uuid

import pytest

from orra_events import BrokerUnavailable, Topology
from orra_events.bus import DEFAULT_NATS_URL
from orra_events.embedded import free_port
from orra_events.errors import InvalidSetting
from orra_events.runtime import BrokerSettings, env_bool, env_float, env_int

ENV = ("ORRA_NATS_URL", "ORRA_NAMESPACE", "ORRA_STREAM_REPLICAS", "ORRA_MANAGE_STREAMS")


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ENV:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_defaults(clean_env: pytest.MonkeyPatch) -> None:
    settings = BrokerSettings.from_env()
    assert settings == BrokerSettings()
    assert settings.nats_url == DEFAULT_NATS_URL == "nats://127.0.0.1:4222"
    assert settings.topology == Topology()


def test_from_env(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("ORRA_NATS_URL", "nats://user:pw@broker:4333")
    clean_env.setenv("ORRA_NAMESPACE", "staging")
    clean_env.setenv("ORRA_STREAM_REPLICAS", "3")
    clean_env.setenv("ORRA_MANAGE_STREAMS", "false")
    settings = BrokerSettings.from_env()
    assert settings == BrokerSettings(
        nats_url="nats://user:pw@broker:4333",
        namespace="staging",
        replicas=3,
        manage_streams=False,
    )
    assert settings.topology.events_stream == "STAGING_ORRA_EVENTS"
    assert settings.topology.replicas == 3


def test_an_invalid_namespace_is_refused(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("ORRA_NAMESPACE", "a.b")
    with pytest.raises(ValueError, match="namespace"):
        _ = BrokerSettings.from_env().topology


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1", True),
        ("true", True),
        ("YES", True),
        (" on ", True),
        ("0", False),
        ("no", False),
        ("", True),
    ],
)
def test_env_bool(monkeypatch: pytest.MonkeyPatch, raw: str, expected: bool) -> None:
    monkeypatch.setenv("ORRA_X", raw)
    assert env_bool("ORRA_X", default=True) is expected


def test_env_numbers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ORRA_X", raising=False)
    assert env_int("ORRA_X", 4) == 4
    assert env_float("ORRA_X", 0.5) == 0.5
    monkeypatch.setenv("ORRA_X", "7")
    assert env_int("ORRA_X", 4) == 7
    assert env_float("ORRA_X", 0.5) == 7.0
    monkeypatch.setenv("ORRA_X", "ten")
    with pytest.raises(InvalidSetting, match=r"ORRA_X='ten' is not a whole number"):
        env_int("ORRA_X", 4)
    with pytest.raises(InvalidSetting, match=r"ORRA_X='ten' is not a number"):
        env_float("ORRA_X", 0.5)


async def test_connect_creates_then_binds_streams(nats_url: str) -> None:
    namespace = f"t{uuid.uuid4().hex[:10]}"
    owner = await BrokerSettings(nats_url=nats_url, namespace=namespace).connect("owner")
    try:
        binder = await BrokerSettings(
            nats_url=nats_url, namespace=namespace, manage_streams=False
        ).connect("binder")
        await binder.close()
        info = await owner.js.stream_info(owner.topology.events_stream)
        assert info.config.name == f"{namespace.upper()}_ORRA_EVENTS"
    finally:
        for config in owner.topology.stream_configs():
            with contextlib.suppress(Exception):
                await owner.js.delete_stream(config.name)  # type: ignore[arg-type]
        await owner.close()


async def test_connect_without_broker_raises() -> None:
    settings = BrokerSettings(nats_url=f"nats://127.0.0.1:{free_port()}")
    with pytest.raises(BrokerUnavailable):
        await settings.connect("nobody")
