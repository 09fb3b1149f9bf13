"""The benchmark smoke test's marker: ``pytest -m bench`` runs it, ``-m 'not bench'`` skips it."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "bench: runs the benchmark harness in --quick mode (about two minutes)"
    )
