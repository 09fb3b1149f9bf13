"""The embedded nats-server: start, stop, kill, restart on the same store, port errors."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import nats
import pytest

from orra_events.embedded import EmbeddedNats, EmbeddedNatsError, find_nats_server, free_port


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _gone_soon(pid: int, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while _alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_free_port_is_bindable() -> None:
    port = free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


def test_find_nats_server_uses_the_wheel_binary() -> None:
    path = Path(find_nats_server())
    assert path.name == "nats-server"
    assert os.access(path, os.X_OK)


def test_find_nats_server_honours_the_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORRA_NATS_SERVER_BIN", "/nonexistent/nats-server")
    with pytest.raises(EmbeddedNatsError, match="ORRA_NATS_SERVER_BIN"):
        find_nats_server()


async def test_start_stop_leaves_no_process(tmp_path: Path) -> None:
    server = EmbeddedNats(tmp_path / "store")
    with server:
        pid = server.pid
        assert pid is not None
        assert server.running
        assert server.start() is server  # already running: nothing happens
        nc = await nats.connect(server.url)
        js = nc.jetstream()
        info = await js.account_info()
        assert info.limits is not None
        await nc.close()
    assert not server.running
    assert server.pid is None
    assert not _alive(pid)  # reaped, not a zombie
    server.stop()  # idempotent


def test_kill_leaves_no_process(tmp_path: Path) -> None:
    server = EmbeddedNats(tmp_path / "store").start()
    pid = server.pid
    assert pid is not None
    server.kill()
    assert not _alive(pid)
    assert not server.running


async def test_state_survives_a_restart_on_the_same_store(tmp_path: Path) -> None:
    store = tmp_path / "store"
    server = EmbeddedNats(store).start()
    try:
        nc = await nats.connect(server.url)
        js = nc.jetstream()
        await js.add_stream(name="KEEP", subjects=["keep.>"])
        await js.publish("keep.a", b"1")
        await nc.close()
    finally:
        server.kill()  # even a crash keeps acknowledged writes
    again = EmbeddedNats(store).start()
    try:
        nc = await nats.connect(again.url)
        info = await nc.jetstream().stream_info("KEEP")
        assert info.state.messages == 1
        await nc.close()
    finally:
        again.stop()


def test_a_taken_port_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        server = EmbeddedNats(tmp_path / "store", port=port)
        with pytest.raises(
            EmbeddedNatsError, match=rf"127.0.0.1:{port}: the port is already in use"
        ):
            server.start()
        assert not server.running


def test_a_server_that_exits_reports_its_log(tmp_path: Path) -> None:
    server = EmbeddedNats(tmp_path / "store", extra_args=["--no-such-flag"])
    with pytest.raises(EmbeddedNatsError, match="nats-server exited with code") as info:
        server.start()
    assert "server log:" in str(info.value)
    assert not server.running


def test_log_file_receives_the_server_output(tmp_path: Path) -> None:
    log = tmp_path / "logs" / "nats.log"
    with EmbeddedNats(tmp_path / "store", log_file=log):
        pass
    assert "Server is ready" in log.read_text()


def test_no_orphan_when_the_parent_is_killed(tmp_path: Path) -> None:
    """A test session killed with SIGKILL (no atexit) still takes its server down."""
    pid_file = tmp_path / "pid"
    script = textwrap.dedent(
        f"""
        import pathlib, time
        from orra_events.embedded import EmbeddedNats
        s = EmbeddedNats({str(tmp_path / "store")!r}).start()
        pathlib.Path({str(pid_file)!r}).write_text(str(s.pid))
        time.sleep(60)
        """
    )
    parent = subprocess.Popen([sys.executable, "-c", script])
    try:
        deadline = time.monotonic() + 15
        while not pid_file.exists() or not pid_file.read_text():
            assert time.monotonic() < deadline, "child server did not start"
            time.sleep(0.05)
        server_pid = int(pid_file.read_text())
        assert _alive(server_pid)
    finally:
        parent.kill()
        parent.wait()
    assert _gone_soon(server_pid)
