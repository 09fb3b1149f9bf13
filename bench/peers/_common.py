"""Shared by the peer scripts: the 2+2 workflow's tasks and the measurement loops.

The workflow is the seed's: payment and inventory in parallel, then delivery (needs
inventory's inStock) and notify (needs payment's paymentStatus) in parallel. Every task is
instant: what is measured is the orchestrator's own overhead.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable


def payment(order_id: str) -> dict:
    return {"paymentStatus": "confirmed", "transactionId": f"TX-{order_id}"}


def inventory(product_id: str) -> dict:
    return {"inStock": True, "productId": product_id}


def delivery(order_id: str, in_stock: bool) -> dict:
    return {
        "deliveryTracking": f"DLV-{order_id}",
        "estimatedDelivery": "2024-11-10",
        "inStock": in_stock,
    }


def notify(customer_id: str, payment_status: str) -> dict:
    return {"notificationStatus": f"sent:{customer_id}:{payment_status}"}


def check(result: dict) -> None:
    assert result["deliveryTracking"].startswith("DLV-"), result
    assert result["notificationStatus"].startswith("sent:"), result


def measure(
    run_one: Callable[[int], dict], *, latency_n: int, throughput_s: float, concurrency: int
) -> dict:
    """Latency one at a time, then throughput with ``concurrency`` submitters."""
    for i in range(min(5, latency_n)):  # warm-up
        check(run_one(-1 - i))
    latencies = []
    for i in range(latency_n):
        t0 = time.perf_counter()
        check(run_one(i))
        latencies.append((time.perf_counter() - t0) * 1000)
    done = 0
    lat_load: list[float] = []
    deadline = time.perf_counter() + throughput_s

    def worker(k: int) -> int:
        n = 0
        while time.perf_counter() < deadline:
            t0 = time.perf_counter()
            check(run_one(100000 * (k + 1) + n))
            lat_load.append((time.perf_counter() - t0) * 1000)
            n += 1
        return n

    t0 = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        done = sum(pool.map(worker, range(concurrency)))
    elapsed = time.perf_counter() - t0
    latencies.sort()
    lat_load.sort()
    return {
        "p50_ms": statistics.median(latencies),
        "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
        "throughput_per_s": done / elapsed,
        "load_p50_ms": statistics.median(lat_load) if lat_load else None,
        "completed": done,
    }


def emit(result: dict) -> None:
    sys.stdout.write("RESULT " + json.dumps(result) + "\n")
    sys.stdout.flush()
