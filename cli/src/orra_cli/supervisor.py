"""Run the whole Orra stack on one machine: ``orra up``.

A :class:`Stack` starts a real nats-server (:class:`~orra_events.embedded.EmbeddedNats`,
store in ``DATA_DIR/nats``), then the planner, dispatcher, notifier and gateway (and the
example services with ``demo=True``) as separate child processes
(``sys.executable -m <module>``). Each child's output lines go to a sink, prefixed with
its name, from one reader thread per child. :meth:`Stack.start` returns once every child
logged its ``"event": "ready"`` line (an SDK process such as the example services:
``"serving"``, once its services are registered; the gateway may instead answer
``/healthz``). A child that exits is reported and restarted with exponential backoff, and
so is nats-server: it is reaped, restarted on the same port and store (JetStream recovers
its streams and consumers from ``DATA_DIR/nats``), and every child reconnects by itself.
:meth:`Stack.stop` sends SIGTERM to every child, SIGKILL after a grace period, then stops
nats-server.

The module is split by role: the children's specs and state are in
:mod:`orra_cli.children`, the output lines and notices in :mod:`orra_cli.stack_output`
(their names are re-exported here), the local API key in :mod:`orra_cli.config`.

The local API key is generated on first start (``orra_`` + ``secrets.token_urlsafe``),
kept in ``DATA_DIR/config.json`` (mode 0600, reused on every later start) and handed to
the gateway as ``ORRA_GATEWAY_BOOTSTRAP_KEY``; the CLI's config file gets the gateway URL,
the key and the NATS URL. Usable in-process, e.g. by end-to-end tests::

    with Stack(tmp_path, port=free_port(), nats_port=free_port()) as stack:
        httpx.get(stack.gateway_url + "/healthz")
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO, Any, Self

import httpx

from orra_cli.children import Child, ChildSpec, die_with_parent, free_port, port_free
from orra_cli.config import (
    cli_config_path,
    generate_api_key,
    load_or_create_api_key,
    read_json_config,
    write_json_config,
)
from orra_cli.stack_output import (
    LogSink,
    NoticeSink,
    default_log_sink,
    default_notice_sink,
    format_log_line,
)
from orra_cli.stack_output import is_ready_line as _is_ready_line
from orra_events.embedded import EmbeddedNats, EmbeddedNatsError

__all__ = [
    "CORE_SERVICES",
    "ChildSpec",
    "LogSink",
    "NoticeSink",
    "Stack",
    "StackError",
    "format_log_line",
    "generate_api_key",
    "load_or_create_api_key",
]

CORE_SERVICES: tuple[tuple[str, str], ...] = (
    ("planner", "orra_planner"),
    ("dispatcher", "orra_dispatcher"),
    ("notifier", "orra_notifier"),
    ("gateway", "orra_gateway"),
)
"""(name, module) of every control-plane process, in start order."""

_MAX_BACKOFF_S = 30.0
_STABLE_AFTER_S = 30.0
_NATS_MAX_BACKOFF_S = 5.0
"""Every process waits for the broker: retry it sooner than a child."""


class StackError(Exception):
    """The stack could not start; the message says why and what to do."""


class Stack:
    """nats-server plus every Orra process, supervised.

    Args:
        data_dir: State directory: ``nats/`` (JetStream store), ``config.json`` (the local
            API key), ``logs/nats.log``; the same directory resumes the same state.
        port: Gateway port (``None``: a free one).
        nats_port: nats-server client port (``None``: a free one).
        demo: Also run the example services (``python -m orra_examples``).
        host: Interface every server listens on.
        namespace: ``ORRA_NAMESPACE`` of every process (default: the environment's).
        log_sink: Receives every child output line; Rich-prefixed on stderr by default.
        notice_sink: Receives the supervisor's messages; stderr by default.
        restart: Restart children that exit while the stack runs.
        grace_s: Seconds between SIGTERM and SIGKILL on stop.
        ready_timeout_s: Seconds :meth:`start` waits for every child to be ready.
        cli_config: The CLI config file to update (``None``: ``$ORRA_CONFIG`` or XDG).
        write_cli_config: Whether to update the CLI config file at all.
        extra_env: More environment variables for every child.
        extra_children: More processes to supervise (name, argv), e.g. a test service.
        mcp_config: Also run the MCP bridge (``python -m orra_mcp``) with this
            configuration file (:mod:`orra_mcp.config`), as the child ``mcp-bridge``.
    """

    def __init__(
        self,
        data_dir: str | Path,
        *,
        port: int | None = 8005,
        nats_port: int | None = 4222,
        demo: bool = False,
        host: str = "127.0.0.1",
        namespace: str | None = None,
        log_sink: LogSink | None = None,
        notice_sink: NoticeSink | None = None,
        restart: bool = True,
        grace_s: float = 10.0,
        ready_timeout_s: float = 60.0,
        cli_config: Path | None = None,
        write_cli_config: bool = True,
        extra_env: dict[str, str] | None = None,
        extra_children: list[tuple[str, list[str]]] | None = None,
        mcp_config: str | Path | None = None,
    ) -> None:
        self.mcp_config = Path(mcp_config).expanduser().resolve() if mcp_config else None
        self.data_dir = Path(data_dir).expanduser().resolve()
        self.host = host
        self.port = port or free_port(host)
        self.nats_port = nats_port or free_port(host)
        self.demo = demo
        self.namespace = os.environ.get("ORRA_NAMESPACE", "") if namespace is None else namespace
        self.restart = restart
        self.grace_s = grace_s
        self.ready_timeout_s = ready_timeout_s
        self.cli_config = cli_config or cli_config_path()
        self.write_cli_config = write_cli_config
        self.extra_env = dict(extra_env or {})
        self.extra_children = list(extra_children or [])
        self._log = log_sink or default_log_sink()
        self._notice = notice_sink or default_notice_sink()
        self.api_key = ""
        self.nats: EmbeddedNats | None = None
        self._children: dict[str, Child] = {}
        self._lock_file: IO[str] | None = None
        self._stop_requested = threading.Event()
        self._stopped = threading.Event()
        self._monitor: threading.Thread | None = None
        self._spawn_lock = threading.Lock()
        self._nats_lock = threading.Lock()
        self._nats_backoff_s = 0.0
        self._nats_restart_at: float | None = None
        self._nats_started_at = 0.0
        self._finished = threading.Event()
        self._started = False

    # --- facts ---------------------------------------------------------------------------

    @property
    def gateway_url(self) -> str:
        """Base URL of the gateway."""
        return f"http://{self.host}:{self.port}"

    @property
    def nats_url(self) -> str:
        """Client URL of nats-server."""
        return f"nats://{self.host}:{self.nats_port}"

    @property
    def config_path(self) -> Path:
        """The stack's own config file (the API key), ``DATA_DIR/config.json``."""
        return self.data_dir / "config.json"

    def pids(self) -> dict[str, int | None]:
        """Process id of nats-server and of every child (``None`` while one is down)."""
        pids: dict[str, int | None] = {"nats": self.nats.pid if self.nats else None}
        for name, child in self._children.items():
            alive = child.proc is not None and child.proc.poll() is None
            pids[name] = child.proc.pid if alive and child.proc else None
        return pids

    def info(self) -> dict[str, Any]:
        """What a client needs: URLs, key, directories, process ids."""
        return {
            "gatewayUrl": self.gateway_url,
            "apiKey": self.api_key,
            "natsUrl": self.nats_url,
            "namespace": self.namespace,
            "dataDir": str(self.data_dir),
            "configPath": str(self.cli_config) if self.write_cli_config else None,
            "pids": self.pids(),
        }

    # --- lifecycle -----------------------------------------------------------------------

    def request_stop(self) -> None:
        """Ask a running :meth:`start` or :meth:`wait` to return (safe in signal handlers)."""
        self._stop_requested.set()

    def wait(self, timeout_s: float | None = None) -> bool:
        """Block until :meth:`request_stop` is called; ``True`` if it was."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while not self._stop_requested.is_set():
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return False
            self._stop_requested.wait(0.5 if remaining is None else min(0.5, remaining))
        return True

    def start(self) -> Self:
        """Start nats-server and every child; return once all are ready.

        Raises:
            StackError: the data directory is in use, a port is taken, nats-server or a
                required child failed to start, or :meth:`request_stop` was called.
        """
        if self._started:
            return self
        self._started = True
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._acquire_lock()
        for what, port, flag in (
            ("the gateway", self.port, "--port"),
            ("nats-server", self.nats_port, "--nats-port"),
        ):
            if not port_free(self.host, port):
                raise StackError(
                    f"port {port} on {self.host} (for {what}) is in use: stop what uses it "
                    f"or pass {flag}"
                )
        self.api_key = load_or_create_api_key(self.data_dir)
        self._write_configs()
        self.nats = EmbeddedNats(
            self.data_dir / "nats",
            port=self.nats_port,
            host=self.host,
            log_file=self.data_dir / "logs" / "nats.log",
            server_name="orra",
            # Restarts come from the monitor thread, which lives until nats-server stops.
            die_with_parent=True,
        )
        try:
            self.nats.start()
        except EmbeddedNatsError as exc:
            raise StackError(f"{exc} (see {self.data_dir / 'logs' / 'nats.log'})") from None
        self._nats_started_at = time.monotonic()
        self._notice(f"nats-server ready on {self.nats_url} (store {self.data_dir / 'nats'})")
        for spec in self._specs():
            child = Child(spec)
            self._children[spec.name] = child
            self._spawn(child)
        self._wait_ready()
        self._monitor = threading.Thread(target=self._watch, name="orra-supervisor", daemon=True)
        self._monitor.start()

    def _acquire_lock(self) -> None:
        path = self.data_dir / "orra.lock"
        handle = path.open("a+", encoding="utf-8")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            owner = handle.read().strip() or "?"
            handle.close()
            raise StackError(
                f"another `orra up` (pid {owner}) is using {self.data_dir}: stop it first, "
                "or pass --data-dir for a separate stack"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        self._lock_file = handle

    def _write_configs(self) -> None:
        stack_config = read_json_config(self.config_path)
        stack_config.update(
            apiKey=self.api_key,
            project="default",
            gatewayUrl=self.gateway_url,
            natsUrl=self.nats_url,
            namespace=self.namespace,
        )
        write_json_config(self.config_path, stack_config)
        if self.write_cli_config:
            cli = read_json_config(self.cli_config)
            cli.update(
                gatewayUrl=self.gateway_url,
                apiKey=self.api_key,
                natsUrl=self.nats_url,
                namespace=self.namespace,
                dataDir=str(self.data_dir),
            )
            write_json_config(self.cli_config, cli)

    def _specs(self) -> list[ChildSpec]:
        env = dict(os.environ)
        # One port for several children cannot work: the second would fail to start.
        env.pop("ORRA_HEALTH_PORT", None)
        env.update(
            ORRA_NATS_URL=self.nats_url,
            ORRA_NAMESPACE=self.namespace,
            ORRA_DATA_DIR=str(self.data_dir),
            ORRA_GATEWAY_URL=self.gateway_url,
            ORRA_LOG_FORMAT="json",
            PYTHONUNBUFFERED="1",
        )
        # A local stack delivers to local receivers (the seed's http://localhost:3000/...).
        env.setdefault("ORRA_ALLOW_PRIVATE_WEBHOOKS", "true")
        env.update(self.extra_env)
        specs: list[ChildSpec] = []
        for name, module in CORE_SERVICES:
            child_env = dict(env)
            health = None
            if name == "gateway":
                child_env.update(
                    ORRA_GATEWAY_HOST=self.host,
                    ORRA_GATEWAY_PORT=str(self.port),
                    ORRA_GATEWAY_BOOTSTRAP_KEY=self.api_key,
                )
                health = f"{self.gateway_url}/healthz"
            specs.append(
                ChildSpec(name, [sys.executable, "-m", module], child_env, health_url=health)
            )
        if self.demo:
            demo_env = dict(env, ORRA_API_KEY=self.api_key)
            specs.append(
                ChildSpec(
                    "examples",
                    [sys.executable, "-m", "orra_examples"],
                    demo_env,
                    required=False,
                )
            )
        if self.mcp_config is not None:
            specs.append(
                ChildSpec(
                    "mcp-bridge",
                    [sys.executable, "-m", "orra_mcp", "--config", str(self.mcp_config)],
                    dict(env),
                    required=False,
                )
            )
        specs.extend(
            ChildSpec(name, argv, dict(env), required=False) for name, argv in self.extra_children
        )
        return specs

    def _spawn(self, child: Child) -> None:
        with self._spawn_lock:
            if self._stopped.is_set():
                return
            child.ready.clear()
            child.proc = subprocess.Popen(
                child.spec.argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                env=child.spec.env,
                cwd=self.data_dir,
                start_new_session=True,
                preexec_fn=die_with_parent if sys.platform == "linux" else None,  # noqa: PLW1509
            )
            child.started_at = time.monotonic()
            child.restart_at = None
            child.reader = threading.Thread(
                target=self._read,
                args=(child, child.proc),
                name=f"orra-{child.spec.name}",
                daemon=True,
            )
            child.reader.start()

    def _read(self, child: Child, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        for raw in proc.stdout:
            line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
            if not line:
                continue
            child.tail.append(line)
            if not child.ready.is_set() and _is_ready_line(line):
                child.ready.set()
            with contextlib.suppress(Exception):
                self._log(child.spec.name, line)
        proc.stdout.close()

    def _healthy(self, url: str) -> bool:
        try:
            return httpx.get(url, timeout=0.5).status_code == 200
        except httpx.HTTPError:
            return False

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.ready_timeout_s
        pending = dict(self._children)
        next_health = 0.0
        while pending:
            if self._stop_requested.is_set():
                raise StackError("interrupted while starting")
            for name, child in list(pending.items()):
                proc = child.proc
                assert proc is not None
                if child.ready.is_set():
                    del pending[name]
                elif proc.poll() is not None:
                    if child.reader:
                        child.reader.join(timeout=2)
                    tail = "\n".join(f"  {line}" for line in list(child.tail)[-10:])
                    raise StackError(
                        f"{name} exited with code {proc.returncode} before it was ready; "
                        f"its last output:\n{tail or '  (none)'}"
                    )
                elif (
                    child.spec.health_url
                    and time.monotonic() >= next_health
                    and self._healthy(child.spec.health_url)
                ):
                    child.ready.set()
                    del pending[name]
            if time.monotonic() >= next_health:
                next_health = time.monotonic() + 0.5
            if time.monotonic() > deadline:
                required = [n for n, c in pending.items() if c.spec.required]
                if required:
                    raise StackError(
                        f"{', '.join(required)} not ready after {self.ready_timeout_s:g}s: "
                        "see the output above"
                    )
                for name in pending:
                    self._notice(f"{name} is running but has not logged 'ready' yet")
                return
            time.sleep(0.05)

    def _watch(self) -> None:
        while not self._stopped.wait(0.2):
            self._watch_nats()
            for child in list(self._children.values()):
                if self._stopped.is_set():
                    break
                proc = child.proc
                if proc is None or proc.poll() is None:
                    continue
                now = time.monotonic()
                if child.restart_at is None:
                    if not self.restart:
                        self._notice(f"{child.spec.name} exited with code {proc.returncode}")
                        child.proc = None
                        continue
                    uptime = now - child.started_at
                    child.backoff_s = (
                        0.5
                        if uptime > _STABLE_AFTER_S or not child.backoff_s
                        else min(child.backoff_s * 2, _MAX_BACKOFF_S)
                    )
                    child.restart_at = now + child.backoff_s
                    self._notice(
                        f"{child.spec.name} exited with code {proc.returncode}; "
                        f"restarting in {child.backoff_s:g}s"
                    )
                elif now >= child.restart_at:
                    child.restarts += 1
                    self._spawn(child)
                    pid = child.proc.pid if child.proc else "?"
                    self._notice(f"{child.spec.name} restarted (pid {pid})")
        # A nats-server restarted from this thread is stopped by the kernel when the
        # thread ends (PR_SET_PDEATHSIG): live until stop() has stopped it itself.
        self._finished.wait()

    def _watch_nats(self) -> None:
        """Reap a nats-server that exited and restart it, with backoff while it fails."""
        nats = self.nats
        if nats is None:
            return
        with self._nats_lock:
            if self._stopped.is_set() or nats.running:  # running: reaps a dead process
                return
            if not self.restart:
                if self._nats_restart_at is None:
                    self._nats_restart_at = float("inf")  # reported once, never restarted
                    self._notice(f"nats-server exited with code {nats.returncode}")
                return
            now = time.monotonic()
            if self._nats_restart_at is None:
                uptime = now - self._nats_started_at
                self._nats_backoff_s = (
                    0.5
                    if uptime > _STABLE_AFTER_S or not self._nats_backoff_s
                    else min(self._nats_backoff_s * 2, _NATS_MAX_BACKOFF_S)
                )
                self._nats_restart_at = now + self._nats_backoff_s
                self._notice(
                    f"nats-server exited with code {nats.returncode}; restarting it in "
                    f"{self._nats_backoff_s:g}s (every process reconnects by itself)"
                )
                return
            if now < self._nats_restart_at:
                return
            try:
                nats.start()
            except EmbeddedNatsError as exc:
                self._nats_backoff_s = min(self._nats_backoff_s * 2, _NATS_MAX_BACKOFF_S)
                self._nats_restart_at = time.monotonic() + self._nats_backoff_s
                self._notice(
                    f"nats-server did not restart: {exc}; trying again in {self._nats_backoff_s:g}s"
                )
                return
            self._nats_restart_at = None
            self._nats_started_at = time.monotonic()
            self._notice(
                f"nats-server restarted (pid {nats.pid}) on {self.nats_url} "
                f"(store {self.data_dir / 'nats'})"
            )

    def stop(self) -> None:
        """Stop every child (SIGTERM, SIGKILL after the grace period), then nats-server.

        Children stop within the grace period even while nats-server is down (none waits
        for a broker that is gone); nats-server is not restarted once stopping began.
        """
        if self._stopped.is_set():
            return
        with self._spawn_lock, self._nats_lock:
            self._stopped.set()
        self._stop_requested.set()
        running = [c for c in self._children.values() if c.proc and c.proc.poll() is None]
        if running:
            self._notice(f"stopping {', '.join(c.spec.name for c in running)}")
        for child in running:
            self._signal(child, signal.SIGTERM)
        deadline = time.monotonic() + self.grace_s
        for child in running:
            assert child.proc is not None
            try:
                child.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self._notice(f"{child.spec.name} did not stop in {self.grace_s:g}s; killing it")
                self._signal(child, signal.SIGKILL)
                child.proc.wait()
        for child in self._children.values():
            if child.proc is not None:
                self._signal(child, signal.SIGKILL)  # stray grandchildren of its group
            if child.reader is not None:
                child.reader.join(timeout=2)
        if self.nats is not None:
            with self._nats_lock:
                self.nats.stop()
            self._notice("nats-server stopped")
        self._finished.set()
        if self._monitor is not None:
            self._monitor.join(timeout=5)
        if self._lock_file is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._lock_file, fcntl.LOCK_UN)
            self._lock_file.close()
            self._lock_file = None

    @staticmethod
    def _signal(child: Child, sig: signal.Signals) -> None:
        if child.proc is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(child.proc.pid, sig)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()
