"""``orra up`` as a real process: nats-server and the services, banner, clean SIGTERM."""

from __future__ import annotations

import asyncio
import json
import os
import selectors
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from orra_cli.supervisor import format_log_line, load_or_create_api_key
from orra_events.embedded import free_port


def _start(
    data_dir: Path, config: Path, *extra: str
) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    env = dict(os.environ, ORRA_CONFIG=str(config))
    env.pop("ORRA_NAMESPACE", None)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "orra_cli",
            "up",
            "--json",
            "--data-dir",
            str(data_dir),
            "--port",
            str(free_port()),
            "--nats-port",
            str(free_port()),
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
        text=True,
    )
    assert proc.stdout is not None
    selector = selectors.DefaultSelector()
    selector.register(proc.stdout, selectors.EVENT_READ)
    if not selector.select(timeout=90):
        proc.kill()
        proc.communicate()
        pytest.fail("orra up printed nothing within 90s")
    line = proc.stdout.readline()
    if not line:
        proc.wait()
        pytest.fail(f"orra up exited with {proc.returncode} before it was ready")
    return proc, json.loads(line)


def _stop(proc: subprocess.Popen[str], pids: list[int]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(
        psutil.pid_exists(p) and psutil.Process(p).status() != "zombie" for p in pids
    ):
        time.sleep(0.1)
    alive = [p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != "zombie"]
    assert alive == [], f"orphans left: {alive}"


@pytest.mark.e2e
def test_up_starts_everything_and_stops_cleanly_and_resumes(tmp_path: Path) -> None:
    data_dir, config = tmp_path / "data", tmp_path / "cli.json"
    proc, info = _start(data_dir, config)
    pids = [p for p in info["pids"].values() if p]
    try:
        assert set(info["pids"]) >= {"nats", "planner", "dispatcher", "notifier", "gateway"}
        assert all(info["pids"].values())
        assert info["apiKey"].startswith("orra_")
        saved = json.loads(config.read_text())
        assert saved["apiKey"] == info["apiKey"]
        assert saved["gatewayUrl"] == info["gatewayUrl"]
        assert saved["natsUrl"] == info["natsUrl"]
        assert stat.S_IMODE(config.stat().st_mode) == 0o600
        assert stat.S_IMODE((data_dir / "config.json").stat().st_mode) == 0o600
        second = subprocess.run(  # noqa: PLW1510 - the exit code is asserted
            [
                sys.executable,
                "-m",
                "orra_cli",
                "up",
                "--data-dir",
                str(data_dir),
                "--port",
                str(free_port()),
                "--nats-port",
                str(free_port()),
            ],
            capture_output=True,
            text=True,
            timeout=30,
            env=dict(os.environ, ORRA_CONFIG=str(tmp_path / "other.json")),
        )
        assert second.returncode == 1
        assert "another `orra up`" in second.stderr
    finally:
        _stop(proc, pids)
    # the same data dir resumes with the same key
    proc, again = _start(data_dir, config)
    try:
        assert again["apiKey"] == info["apiKey"]
    finally:
        _stop(proc, [p for p in again["pids"].values() if p])


def test_key_is_created_once(tmp_path: Path) -> None:
    key = load_or_create_api_key(tmp_path)
    assert key.startswith("orra_")
    assert len(key) > 40
    assert load_or_create_api_key(tmp_path) == key


def test_log_lines_are_made_readable() -> None:
    line = json.dumps(
        {
            "event": "ready",
            "level": "info",
            "service": "planner",
            "timestamp": "t",
            "nats_url": "nats://x",
        }
    )
    assert format_log_line(line) == "info    ready  nats_url=nats://x"
    assert format_log_line("plain text") == "plain text"


def test_sdk_processes_are_ready_once_serving() -> None:
    from orra_cli.supervisor import _is_ready_line

    assert _is_ready_line(json.dumps({"event": "ready", "service": "planner"}))
    # orra_sdk.run logs "serving" once its services are registered (the example services)
    assert _is_ready_line(json.dumps({"event": "serving", "services": ["PaymentService"]}))
    assert not _is_ready_line(json.dumps({"event": "service ready", "service": "X"}))
    assert not _is_ready_line('"ready" but not JSON')


@pytest.mark.e2e
def test_a_crashed_child_is_reported_and_restarted_and_every_child_stops_on_sigterm(
    tmp_path: Path,
) -> None:
    from orra_cli.supervisor import Stack

    notices: list[str] = []
    lines: list[str] = []
    stack = Stack(
        tmp_path / "data",
        port=None,
        nats_port=None,
        namespace="",
        log_sink=lambda name, line: lines.append(f"{name} | {line}"),
        notice_sink=notices.append,
        write_cli_config=False,
        grace_s=8.0,
    )
    try:
        stack.start()
        before = stack.pids()
        planner = before["planner"]
        assert planner
        os.kill(planner, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while not any("planner restarted" in n for n in notices):
            assert time.monotonic() < deadline, notices
            time.sleep(0.1)
        assert any("planner" in n and "exited" in n for n in notices), notices
        after = stack.pids()
        assert after["planner"] not in (None, planner)
        while sum('"ready"' in line for line in lines if line.startswith("planner | ")) < 2:
            assert time.monotonic() < deadline, "the restarted planner never got ready"
            time.sleep(0.1)
        assert {k: v for k, v in after.items() if k != "planner"} == {
            k: v for k, v in before.items() if k != "planner"
        }
    finally:
        stack.stop()
    # every service stopped on SIGTERM within the grace period, by itself: none was killed
    # (uvicorn re-raises the SIGTERM it handled once the gateway has shut down: -15)
    assert not [n for n in notices if "did not stop" in n], notices
    codes = {name: c.proc.returncode for name, c in stack._children.items() if c.proc}
    assert set(codes) == {"planner", "dispatcher", "notifier", "gateway"}
    assert all(code in (0, -signal.SIGTERM) for code in codes.values()), codes
    assert all(codes[name] == 0 for name in ("planner", "dispatcher", "notifier")), codes
    assert any(line.startswith("planner | ") for line in lines)


def test_children_do_not_inherit_one_health_port(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from orra_cli.supervisor import Stack

    monkeypatch.setenv("ORRA_HEALTH_PORT", "8080")
    stack = Stack(tmp_path, port=None, nats_port=None, demo=True, write_cli_config=False)
    specs = stack._specs()
    assert {spec.name for spec in specs} >= {"planner", "dispatcher", "gateway", "examples"}
    assert [spec.name for spec in specs if "ORRA_HEALTH_PORT" in spec.env] == []


@pytest.mark.e2e
def test_a_killed_nats_server_is_reaped_and_restarted_on_its_store(tmp_path: Path) -> None:
    """Issue 16: after kill -9 of its nats-server, ``orra up`` left it <defunct> and never
    restarted it. The supervisor reaps it and starts it again on the same port and store
    (the streams are still there), and every child reconnects by itself."""
    import nats

    from orra_cli.supervisor import Stack

    notices: list[str] = []
    lines: list[str] = []
    stack = Stack(
        tmp_path / "data",
        port=None,
        nats_port=None,
        namespace="",
        log_sink=lambda name, line: lines.append(f"{name} | {line}"),
        notice_sink=notices.append,
        write_cli_config=False,
    )
    try:
        stack.start()
        before = stack.pids()
        first = before["nats"]
        assert first
        os.kill(first, signal.SIGKILL)
        deadline = time.monotonic() + 20
        while not any("nats-server restarted" in n for n in notices):
            assert time.monotonic() < deadline, notices
            time.sleep(0.05)
        assert any("nats-server exited with code -9" in n for n in notices), notices
        assert not psutil.pid_exists(first) or psutil.Process(first).status() != "zombie"
        second = stack.pids()["nats"]
        assert second not in (None, first)

        async def streams() -> list[str]:
            nc = await nats.connect(stack.nats_url)
            try:
                return [s.config.name or "" for s in await nc.jetstream().streams_info()]
            finally:
                await nc.close()

        assert "ORRA_EVENTS" in asyncio.run(streams())  # the same store, recovered
        while not all(
            sum('"nats reconnected"' in line for line in lines if line.startswith(f"{n} | "))
            for n in ("planner", "dispatcher", "notifier", "gateway")
        ):
            assert time.monotonic() < deadline, "a child did not reconnect"
            time.sleep(0.1)
        # they reconnected: none of them was restarted
        assert {k: v for k, v in stack.pids().items() if k != "nats"} == {
            k: v for k, v in before.items() if k != "nats"
        }
    finally:
        stack.stop()
    assert not [n for n in notices if "did not stop" in n], notices
