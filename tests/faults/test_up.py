"""``orra up`` loses its own nats-server: kill -9 of the broker child under load.

The real ``orra up --demo`` runs as a process (its supervisor, nats-server, planner,
dispatcher, notifier, gateway and the example services), clients submit orchestrations over
HTTP (with ``Idempotency-Key``, retrying on 503 as a client should), and the test kills the
supervisor's nats-server with SIGKILL in the middle of the load. The supervisor must reap it
and start it again on the same port and store, every process must resume by itself, every
accepted orchestration must complete with each side effect once, and new ones must be
accepted within seconds of the broker's return. Then the broker is killed again and kept
from restarting (its port is taken), and ``orra up`` must still stop within its grace
period on SIGTERM: no process may wait for a broker that is gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import selectors
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from orra_events import Bus
from orra_events.embedded import free_port
from tests.faults.checker import check, read_effects
from tests.faults.harness import (
    fault_env,
    order,
    read_log,
    receipts_of,
    topology_of,
    wait_terminal,
    wait_until,
    wait_webhooks,
)
from tests.notifier.receiver import Receiver

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

LOAD = 30
SPREAD_S = 6.0
GRACE_S = 10.0
"""``orra up``'s grace period between SIGTERM and SIGKILL of a child."""
RESUME_WITHIN_S = 10.0
"""A new orchestration is accepted this soon after the broker is back."""


def start_up(tmp_path: Path, env: dict[str, str]) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    with (tmp_path / "up.log").open("w") as log:  # the child writes to its own copy
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "orra_cli",
                "up",
                "--json",
                "--demo",
                "--data-dir",
                str(tmp_path / "data"),
                "--port",
                str(free_port()),
                "--nats-port",
                str(free_port()),
            ],
            stdout=subprocess.PIPE,
            stderr=log,
            env=env,
            text=True,
        )
    assert proc.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        printed = bool(selector.select(timeout=90))
    if not printed:
        proc.kill()
        proc.communicate()
        pytest.fail("orra up printed nothing within 90s")
    line = proc.stdout.readline()
    if not line:
        proc.communicate()
        pytest.fail(f"orra up exited with {proc.returncode}: {(tmp_path / 'up.log').read_text()}")
    return proc, json.loads(line)


def nats_child(up: subprocess.Popen[str]) -> int | None:
    """Pid of the live nats-server child of ``orra up``, if there is one."""
    for child in psutil.Process(up.pid).children():
        with contextlib.suppress(psutil.NoSuchProcess):
            if child.name() == "nats-server" and child.status() != psutil.STATUS_ZOMBIE:
                return child.pid
    return None


def gone(pid: int) -> bool:
    """The process has exited and been reaped (no ``<defunct>`` left)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_DEAD
    except psutil.NoSuchProcess:
        return True


def listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@contextlib.contextmanager
def port_taken(port: int) -> Iterator[None]:
    """Hold ``port`` so that nats-server cannot listen on it (connections are closed at once)."""
    holder = socket.socket()
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    deadline = time.monotonic() + 2.0
    while True:  # the killed server's listener closes a moment after SIGKILL
        try:
            holder.bind(("127.0.0.1", port))
            break
        except OSError:
            if time.monotonic() > deadline:
                holder.close()
                raise
            time.sleep(0.01)
    holder.listen(64)

    def refuse() -> None:
        while True:
            try:
                conn, _ = holder.accept()
            except OSError:
                return
            conn.close()

    thread = threading.Thread(target=refuse, daemon=True)
    thread.start()
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            holder.shutdown(socket.SHUT_RDWR)
        holder.close()
        thread.join(timeout=5)


class Client:
    """Submits the numbered orchestrations over HTTP and retries on 503 until accepted."""

    def __init__(self, http: httpx.AsyncClient, base: str, key: str, webhook: str) -> None:
        self.http = http
        self.base = base
        self.key = key
        self.webhook = webhook
        self.accepted: dict[int, str] = {}
        self.refused = 0

    async def submit(self, n: int, deadline_s: float = 60.0) -> float:
        """Submit the n-th orchestration; return when it was accepted (monotonic)."""
        action, data = order(n)
        body = {
            "action": {"content": action},
            "data": [{"field": k, "value": v} for k, v in data.items()],
            "webhook": self.webhook,
        }
        headers = {"Authorization": f"Bearer {self.key}", "Idempotency-Key": f"up-{n}"}
        deadline = time.monotonic() + deadline_s
        while True:
            try:
                r = await self.http.post(f"{self.base}/orchestrations", json=body, headers=headers)
            except httpx.TransportError:
                r = None
            if r is not None and r.status_code in (201, 202):
                self.accepted[n] = r.json()["orchestrationId"]
                return time.monotonic()
            assert r is None or r.status_code == 503, f"{r.status_code}: {r.text}"
            self.refused += 1
            assert time.monotonic() < deadline, f"orchestration {n} never accepted"
            await asyncio.sleep(0.2)

    async def load(self, count: int, rng: random.Random) -> None:
        gap = SPREAD_S / count
        for n in range(count):
            await self.submit(n)
            await asyncio.sleep(rng.uniform(0, 2 * gap))


@pytest.fixture
def up_env(tmp_path: Path) -> dict[str, str]:
    env = fault_env("", "", tmp_path, ORRA_CONFIG=str(tmp_path / "cli.json"))
    for name in ("ORRA_NATS_URL", "ORRA_NAMESPACE"):
        env.pop(name, None)  # orra up sets them for its children
    return env


async def test_orra_up_restarts_its_killed_nats_server_and_the_stack_resumes(
    tmp_path: Path, up_env: dict[str, str], receiver: Receiver, rng: random.Random
) -> None:
    up, info = start_up(tmp_path, up_env)
    pids = [p for p in info["pids"].values() if p]
    nats_port = int(info["natsUrl"].rsplit(":", 1)[1])
    up_log = tmp_path / "up.log"
    try:
        bus = await Bus.connect(info["natsUrl"], topology_of(""), name="fault-test")
        async with httpx.AsyncClient(timeout=15.0) as http:
            client = Client(http, info["gatewayUrl"], info["apiKey"], receiver.url())
            load = asyncio.create_task(client.load(LOAD, rng))
            await asyncio.sleep(rng.uniform(1.5, SPREAD_S / 2))
            first = info["pids"]["nats"]
            accepted_before = len(client.accepted)
            os.kill(first, signal.SIGKILL)
            print(f"kill -9 nats-server (pid {first}) after {accepted_before} accepted")

            # The supervisor reaps it (no <defunct> left) and starts another one.
            assert await wait_until(lambda: _async(gone(first)), 10, 0.1), "not reaped"
            assert await wait_until(
                lambda: _async(nats_child(up) not in (None, first) and listening(nats_port)),
                20,
                0.05,
            ), f"nats-server not restarted:\n{up_log.read_text()[-3000:]}"
            back = time.monotonic()
            second = nats_child(up)
            print(f"nats-server back (pid {second})")
            probe = await client.submit(LOAD, deadline_s=RESUME_WITHIN_S + 20)
            resumed_in = probe - back
            print(f"a new orchestration was accepted {resumed_in:.2f}s after the broker's return")
            await load
            orchs = list(client.accepted.values())
            ended = await wait_terminal(bus, orchs, timeout_s=90)
            await wait_webhooks(receiver, sorted(ended), timeout_s=30)
            log = await read_log(bus)
            report = check(
                orchs,
                log.events,
                effects=read_effects(up_env["ORRA_EXAMPLES_EFFECTS_FILE"]),
                receipts=receipts_of(receiver),
            )
            print(f"accepted: {len(orchs)} ({accepted_before} before the crash)")
            print(f"503 answers while the broker was away: {client.refused}")
            print(report.summary())
            assert report.ok, report.summary()
            assert report.counts["completed"] == LOAD + 1
            assert resumed_in <= RESUME_WITHIN_S
            notices = up_log.read_text()
            assert "nats-server exited with code -9" in notices
            assert f"nats-server restarted (pid {second})" in notices
        await bus.close()

        # The broker dies again and cannot come back: orra up still stops within its grace.
        assert second is not None
        os.kill(second, signal.SIGKILL)
        with port_taken(nats_port):
            assert await wait_until(
                lambda: _async("nats-server did not restart" in up_log.read_text()), 20, 0.1
            )
            pids.extend(p.pid for p in psutil.Process(up.pid).children())
            t0 = time.monotonic()
            up.send_signal(signal.SIGTERM)
            await asyncio.to_thread(up.wait, GRACE_S + 10)
            stopped_in = time.monotonic() - t0
        print(f"orra up stopped {stopped_in:.2f}s after SIGTERM with the broker down")
        notices = up_log.read_text()
        assert up.returncode == 0, notices[-3000:]
        assert "did not stop in" not in notices, notices[-3000:]
        assert stopped_in < GRACE_S
        assert await wait_until(lambda: _async(all(gone(p) for p in pids)), 5, 0.1), "orphans"
    finally:
        if up.poll() is None:
            up.send_signal(signal.SIGTERM)
            try:
                up.wait(30)
            except subprocess.TimeoutExpired:
                up.kill()
                up.wait()
        assert up.stdout is not None
        up.stdout.close()


async def _async(value: bool) -> bool:
    return value
