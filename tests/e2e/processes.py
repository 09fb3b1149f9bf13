"""Real OS processes for end-to-end tests: start a module, wait for "ready", stop or kill it."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Proc:
    """One child process whose stderr (structlog JSON lines) is collected."""

    name: str
    args: list[str]
    env: dict[str, str]
    log_dir: Path
    popen: subprocess.Popen[bytes] | None = None
    lines: list[str] = field(default_factory=list)
    _ready: threading.Event = field(default_factory=threading.Event)
    _pump_thread: threading.Thread | None = None

    def _join(self) -> None:
        if self._pump_thread is not None:
            self._pump_thread.join(timeout=5)
            self._pump_thread = None

    def start(self, timeout_s: float = 30.0) -> Proc:
        self._ready.clear()
        log = (self.log_dir / f"{self.name}.log").open("ab")
        self.popen = subprocess.Popen(
            [sys.executable, *self.args],
            env=self.env,
            stdout=log,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        self._pump_thread = threading.Thread(target=self._pump, args=(self.popen, log), daemon=True)
        self._pump_thread.start()
        if not self._ready.wait(timeout_s):
            tail = "\n".join(self.lines[-20:])
            self.stop()
            raise RuntimeError(f"{self.name} did not log 'ready' within {timeout_s}s:\n{tail}")
        return self

    def _pump(self, popen: subprocess.Popen[bytes], log: object) -> None:
        assert popen.stderr is not None
        for raw in popen.stderr:
            line = raw.decode(errors="replace").rstrip()
            self.lines.append(line)
            log.write(raw)  # type: ignore[attr-defined]
            log.flush()  # type: ignore[attr-defined]
            with contextlib.suppress(ValueError):
                if json.loads(line).get("event") == "ready":
                    self._ready.set()
        popen.stderr.close()
        log.close()  # type: ignore[attr-defined]

    @property
    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def stop(self, timeout_s: float = 10.0) -> int | None:
        """SIGTERM, wait, SIGKILL if needed; returns the exit code."""
        popen, self.popen = self.popen, None
        if popen is None:
            return None
        if popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(popen.pid, signal.SIGTERM)
            try:
                popen.wait(timeout_s)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(popen.pid, signal.SIGKILL)
                popen.wait()
        self._join()
        return popen.returncode

    def kill(self) -> None:
        """kill -9, as a crash."""
        popen, self.popen = self.popen, None
        if popen is not None and popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(popen.pid, signal.SIGKILL)
            popen.wait()
        self._join()


class Processes:
    """The set of processes one test started; all are stopped at the end."""

    def __init__(self, base_env: dict[str, str], log_dir: Path) -> None:
        self.base_env = base_env
        self.log_dir = log_dir
        self.procs: dict[str, Proc] = {}

    def start(self, name: str, module: str, *args: str, **env: str) -> Proc:
        proc = Proc(name, ["-m", module, *args], {**self.base_env, **env}, self.log_dir)
        self.procs[name] = proc
        return proc.start()

    def __getitem__(self, name: str) -> Proc:
        return self.procs[name]

    def stop_all(self) -> None:
        for proc in reversed(list(self.procs.values())):
            proc.stop()

    def wait_until(self, predicate: object, timeout_s: float = 10.0) -> None:  # pragma: no cover
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if predicate():  # type: ignore[operator]
                return
            time.sleep(0.05)
        raise TimeoutError("condition not met")
