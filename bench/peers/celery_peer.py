"""Celery 5 peer: the 2+2 workflow as two chained chords over Redis (broker and results).

Durability: Redis with its default snapshotting (RDB), acks_late off (Celery's default);
a worker crash can lose a task in flight. Run: python celery_peer.py --redis-url URL ...
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import _common
from celery import Celery, chord, group

REDIS = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
app = Celery("orra_bench_peer", broker=REDIS, backend=REDIS)
app.conf.update(
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    worker_prefetch_multiplier=4,
    broker_connection_retry_on_startup=True,
    result_expires=600,
)


@app.task(name="payment")
def payment(order_id):
    return _common.payment(order_id)


@app.task(name="inventory")
def inventory(product_id):
    return _common.inventory(product_id)


@app.task(name="after_first")
def after_first(results, order_id, customer_id):
    pay, inv = results
    return {"pay": pay, "inv": inv, "order_id": order_id, "customer_id": customer_id}


@app.task(name="delivery")
def delivery(ctx):
    return _common.delivery(ctx["order_id"], ctx["inv"]["inStock"])


@app.task(name="notify")
def notify(ctx):
    return _common.notify(ctx["customer_id"], ctx["pay"]["paymentStatus"])


@app.task(name="merge")
def merge(results):
    out = {}
    for r in results:
        out.update(r)
    return out


def run_one(i: int) -> dict:
    order = f"ORD{i}"
    first = chord(group(payment.s(order), inventory.s("PROD456")), after_first.s(order, "CUST1"))
    # after_first's result feeds both tasks of the second group; merge is its chord body.
    workflow = first | group(delivery.s(), notify.s()) | merge.s()
    return workflow.apply_async().get(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--latency-n", type=int, default=100)
    parser.add_argument("--throughput-s", type=float, default=10)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "celery_peer",
            "worker",
            "--concurrency",
            "2",
            "--loglevel",
            "WARNING",
            "--without-heartbeat",
            "--without-gossip",
            "--without-mingle",
        ],
        cwd=Path(__file__).parent,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parent)},
    )
    try:
        deadline = time.time() + 60
        while True:
            try:
                if app.control.ping(timeout=1.0):
                    break
            except Exception:
                pass
            if time.time() > deadline:
                raise RuntimeError("celery worker did not start")
        result = _common.measure(
            run_one,
            latency_n=args.latency_n,
            throughput_s=args.throughput_s,
            concurrency=args.concurrency,
        )
        result["durability"] = "Redis default (RDB snapshots), Celery acks_late=False"
        _common.emit(result)
    finally:
        worker.terminate()
        worker.wait(30)


if __name__ == "__main__":
    main()
