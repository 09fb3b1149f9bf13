"""Fixtures of the fault suite: a printed seed, a process stack, a webhook receiver."""

from __future__ import annotations

import os
import random
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.e2e.processes import Processes
from tests.faults.harness import Stack, fault_env
from tests.notifier.receiver import Receiver


@pytest.fixture
def seed(request: pytest.FixtureRequest) -> int:
    """The test's random seed: ``ORRA_FAULT_SEED`` replays a run; printed at the start."""
    raw = os.environ.get("ORRA_FAULT_SEED")
    value = int(raw) if raw else random.SystemRandom().randrange(2**32)
    print(f"\n{request.node.nodeid}: seed {value} (replay with ORRA_FAULT_SEED={value})")
    return value


@pytest.fixture
def rng(seed: int) -> random.Random:
    return random.Random(seed)


@pytest.fixture
def env(nats_url: str, namespace: str, tmp_path: Path) -> dict[str, str]:
    return fault_env(nats_url, namespace, tmp_path)


@pytest.fixture
def stack(env: dict[str, str], tmp_path: Path) -> Iterator[Stack]:
    log_dir = tmp_path / "logs"
    log_dir.mkdir(exist_ok=True)
    group = Processes(env, log_dir)
    try:
        yield Stack(group)
    finally:
        group.stop_all()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    """A real HTTP webhook receiver that answers 200 and records every request."""
    async with Receiver() as r:
        yield r
