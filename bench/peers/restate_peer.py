"""Restate peer: the 2+2 workflow as a Restate service handler that calls four handlers of
another service (two durable calls awaited together, then two more), served by the Python
SDK over HTTP/2 (Hypercorn) and driven through the Restate server's HTTP ingress.

The server is the ``restate-server`` binary of the npm package ``@restatedev/restate-server``
(its path in ``BENCH_RESTATE_SERVER``), started here with its defaults (single node, all
roles, the replicated loglet on the local log-server, RocksDB with the WAL fsynced) in a
temporary directory.

Durability: every journal entry (invocation, call, result) is appended to Restate's log
(RocksDB WAL, fsynced: ``rocksdb-disable-wal-fsync = false``) before it is acted on;
a crash of the server or of the handler process resumes the invocation from its journal.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import _common
import restate

tasks = restate.Service("OrraBenchTasks")


@tasks.handler()
async def payment(_ctx: restate.Context, order_id: str) -> dict:
    return _common.payment(order_id)


@tasks.handler()
async def inventory(_ctx: restate.Context, product_id: str) -> dict:
    return _common.inventory(product_id)


@tasks.handler()
async def delivery(_ctx: restate.Context, req: dict) -> dict:
    return _common.delivery(req["order_id"], req["in_stock"])


@tasks.handler()
async def notify(_ctx: restate.Context, req: dict) -> dict:
    return _common.notify(req["customer_id"], req["payment_status"])


order = restate.Service("OrraBenchOrder")


@order.handler()
async def run(ctx: restate.Context, order_id: str) -> dict:
    pay = ctx.service_call(payment, arg=order_id)
    inv = ctx.service_call(inventory, arg="PROD456")
    await restate.gather(pay, inv)
    pay_out, inv_out = await pay, await inv
    dlv = ctx.service_call(delivery, arg={"order_id": order_id, "in_stock": inv_out["inStock"]})
    ntf = ctx.service_call(
        notify, arg={"customer_id": "CUST1", "payment_status": pay_out["paymentStatus"]}
    )
    await restate.gather(dlv, ntf)
    out: dict = {}
    for part in (pay_out, inv_out, await dlv, await ntf):
        out.update(part)
    return out


app = restate.app(services=[tasks, order])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, proc: subprocess.Popen, what: str, timeout_s: float = 60) -> None:
    deadline = time.time() + timeout_s
    while True:
        try:
            urllib.request.urlopen(url, timeout=1)
            return
        except Exception:
            if proc.poll() is not None:
                raise RuntimeError(f"{what} exited with {proc.returncode}") from None
            if time.time() > deadline:
                raise RuntimeError(f"{what} not ready within {timeout_s:.0f}s") from None
            time.sleep(0.2)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--latency-n", type=int, default=100)
    parser.add_argument("--throughput-s", type=float, default=10)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    binary = os.environ.get("BENCH_RESTATE_SERVER")
    if not binary or not Path(binary).exists():
        raise SystemExit("BENCH_RESTATE_SERVER does not name the restate-server binary")
    base = tempfile.mkdtemp(prefix="orra-bench-restate-")
    ingress, admin, node, handlers = free_port(), free_port(), free_port(), free_port()
    env = {
        **os.environ,
        "RESTATE_INGRESS__BIND_ADDRESS": f"127.0.0.1:{ingress}",
        "RESTATE_ADMIN__BIND_ADDRESS": f"127.0.0.1:{admin}",
        "RESTATE_BIND_ADDRESS": f"127.0.0.1:{node}",
        "RESTATE_ADVERTISED_ADDRESS": f"http://127.0.0.1:{node}/",
        "RESTATE_DISABLE_TELEMETRY": "true",
        "RESTATE_ADMIN__DISABLE_WEB_UI": "true",
        "RESTATE_LOG_FILTER": "warn",
    }
    server = subprocess.Popen(
        [binary, "--no-logo", "--listen-mode", "tcp", "--base-dir", base],
        env=env,
        cwd=base,
        stdout=subprocess.DEVNULL,
        stderr=(Path(base) / "server.log").open("wb"),
        start_new_session=True,
    )
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "hypercorn",
            "restate_peer:app",
            "--bind",
            f"127.0.0.1:{handlers}",
            "--log-level",
            "WARNING",
        ],
        cwd=Path(__file__).parent,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parent)},
        stdout=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_http(f"http://127.0.0.1:{admin}/health", server, "restate-server")
        wait_http(f"http://127.0.0.1:{ingress}/restate/health", server, "restate ingress")
        deadline = time.time() + 60
        while True:  # the handlers' process may still be starting
            body = json.dumps({"uri": f"http://127.0.0.1:{handlers}", "force": True}).encode()
            request = urllib.request.Request(
                f"http://127.0.0.1:{admin}/deployments",
                data=body,
                headers={"content-type": "application/json"},
            )
            try:
                urllib.request.urlopen(request, timeout=10)
                break
            except Exception as exc:
                if time.time() > deadline or worker.poll() is not None:
                    raise RuntimeError(f"cannot register the deployment: {exc}") from None
                time.sleep(0.3)
        local = threading.local()

        def run_one(i: int) -> dict:
            conn = getattr(local, "conn", None)
            if conn is None:
                conn = local.conn = http.client.HTTPConnection("127.0.0.1", ingress, timeout=30)
            conn.request(
                "POST",
                "/OrraBenchOrder/run",
                body=json.dumps(f"ORD{i}"),
                headers={"content-type": "application/json"},
            )
            response = conn.getresponse()
            data = response.read()
            if response.status != 200:
                raise RuntimeError(f"ingress answered {response.status}: {data[:200]!r}")
            return json.loads(data)

        # The first calls wait for the deployment to reach every partition.
        deadline = time.time() + 60
        while True:
            try:
                _common.check(run_one(-100))
                break
            except Exception:
                local.conn = None
                if time.time() > deadline:
                    raise
                time.sleep(0.5)
        result = _common.measure(
            run_one,
            latency_n=args.latency_n,
            throughput_s=args.throughput_s,
            concurrency=args.concurrency,
        )
        result["durability"] = "Restate log (RocksDB WAL fsynced), every journal entry"
        result["concurrency"] = args.concurrency
        _common.emit(result)
    finally:
        for proc in (worker, server):
            try:
                os.killpg(proc.pid, 15)
                proc.wait(30)
            except Exception:
                proc.kill()


if __name__ == "__main__":
    main()
