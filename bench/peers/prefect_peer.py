"""Prefect 3 peer: the 2+2 workflow as a flow whose tasks are submitted to Prefect's thread
pool task runner, reporting to a local Prefect server (SQLite) that this script starts.

Durability: flow and task run states are stored by the server in SQLite; task results are
not persisted (Prefect's default).
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import _common


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--latency-n", type=int, default=100)
    parser.add_argument("--throughput-s", type=float, default=10)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    home = tempfile.mkdtemp()
    port = free_port()
    env = {
        **os.environ,
        "PREFECT_HOME": home,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_UI_ENABLED": "false",
        "PREFECT_LOGGING_LEVEL": "WARNING",
    }
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "prefect",
            "server",
            "start",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    api = f"http://127.0.0.1:{port}/api"
    try:
        deadline = time.time() + 120
        while True:
            try:
                urllib.request.urlopen(f"{api}/health", timeout=1)
                break
            except Exception:
                if time.time() > deadline or server.poll() is not None:
                    raise RuntimeError("prefect server did not start") from None
                time.sleep(0.5)
        os.environ.update(env)
        os.environ["PREFECT_API_URL"] = api
        from prefect import flow, task

        @task
        def payment(order_id: str) -> dict:
            return _common.payment(order_id)

        @task
        def inventory(product_id: str) -> dict:
            return _common.inventory(product_id)

        @task
        def delivery(order_id: str, in_stock: bool) -> dict:
            return _common.delivery(order_id, in_stock)

        @task
        def notify(customer_id: str, payment_status: str) -> dict:
            return _common.notify(customer_id, payment_status)

        @flow(log_prints=False, persist_result=False)
        def order_flow(order_id: str) -> dict:
            pay, inv = payment.submit(order_id), inventory.submit("PROD456")
            pay_out, inv_out = pay.result(), inv.result()
            dlv = delivery.submit(order_id, inv_out["inStock"])
            ntf = notify.submit("CUST1", pay_out["paymentStatus"])
            out: dict = {}
            for part in (pay_out, inv_out, dlv.result(), ntf.result()):
                out.update(part)
            return out

        result = _common.measure(
            lambda i: order_flow(f"ORD{i}"),
            latency_n=args.latency_n,
            throughput_s=args.throughput_s,
            concurrency=args.concurrency,
        )
        result["durability"] = "Prefect server with SQLite; task results not persisted"
        _common.emit(result)
    finally:
        os.killpg(server.pid, 15)
        server.wait(30)


if __name__ == "__main__":
    main()
