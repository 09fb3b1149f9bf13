"""The README's "Testing your service" snippet runs, as a user runs it: pytest in a new process."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


def python_blocks(section: str) -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index(section)
    end = text.index("\n## ", start)
    return re.findall(r"```python\n(.*?)```", text[start:end], re.DOTALL)


@pytest.mark.timeout(180)
def test_the_readme_test_of_the_readme_service_passes(tmp_path: Path) -> None:
    service, tests = python_blocks("## Your own service or agent")
    (tmp_path / "loyalty.py").write_text(service)
    (tmp_path / "test_loyalty.py").write_text(tests)
    # A project of its own: no repository conftest, pytest-asyncio in its default (strict)
    # mode, and the plugin's own embedded nats-server.
    (tmp_path / "pytest.ini").write_text(
        "[pytest]\nfilterwarnings = error\nasyncio_default_fixture_loop_scope = function\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "ORRA_TEST_NATS_URL"}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_loyalty.py"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=170,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 passed" in done.stdout
