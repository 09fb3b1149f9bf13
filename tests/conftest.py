"""Shared fixtures: one real nats-server per test session, a fresh namespace per test."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import structlog

from orra_events import Bus, Topology
from orra_events.embedded import EmbeddedNats
from tests import webhook_contract

pytest_plugins = ["tests.factories", "orra_sdk.testing.plugin"]

# Suites that load the machine on purpose (kill -9 under load, broker outages, the benchmark
# smoke run) or time what they measure: `make test` runs them after the rest, one at a time,
# so that the parallel workers (pytest-xdist) do not disturb them.
_SERIAL_PATHS = ("faults", "bench/test_quick.py")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test of the serial suites ``serial``."""
    del config
    root = Path(__file__).parent
    serial = [root / name for name in _SERIAL_PATHS]
    for item in items:
        if any(item.path.is_relative_to(path) for path in serial):
            item.add_marker(pytest.mark.serial)


@pytest.fixture(scope="session")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedNats]:
    """A real nats-server with JetStream on a free port and a temporary store."""
    store = tmp_path_factory.mktemp("nats-store")
    server = EmbeddedNats(store, log_file=Path(store) / "nats.log")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def orra_nats_url(nats_server: EmbeddedNats) -> str:
    """The test kit's harness (``orra`` fixture) uses the session's server too."""
    return nats_server.url


@pytest.fixture
def nats_url(nats_server: EmbeddedNats) -> str:
    return nats_server.url


@pytest.fixture
def namespace() -> str:
    """A namespace of this test's own: its subjects and streams are nobody else's."""
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture
def topology(namespace: str) -> Topology:
    return Topology(namespace=namespace)


@pytest.fixture
async def bus(nats_url: str, topology: Topology) -> AsyncIterator[Bus]:
    """A connected bus whose streams exist; the streams are deleted after the test."""
    b = await Bus.connect(nats_url, topology, name="test")
    await b.ensure_streams()
    try:
        yield b
    finally:
        for config in topology.stream_configs():
            with contextlib.suppress(Exception):
                await b.js.delete_stream(config.name)  # type: ignore[arg-type]
        await b.close()


@pytest.fixture(autouse=True)
def _structlog_configuration_restored() -> Iterator[None]:
    """Undo a test's ``structlog.configure`` (the CLI run in-process sets WARNING and up)."""
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)


@pytest.fixture(autouse=True)
def _webhook_deliveries_match_the_published_schema() -> Iterator[None]:
    """Fail a test whose receivers got a webhook that the published schema refuses.

    Every test receiver reports its requests to :mod:`tests.webhook_contract`; they are
    checked here, after the test, against the OpenAPI document the gateway serves.
    """
    yield
    violations = webhook_contract.take_violations()
    assert not violations, "webhook deliveries that fail the published schema:\n" + "\n".join(
        violations
    )
