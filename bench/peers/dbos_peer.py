"""DBOS Transact peer: the 2+2 workflow as a durable workflow whose parallel tasks are child
workflows started together (DBOS.start_workflow), on DBOS's default SQLite system database.

Durability: every workflow and step checkpoint is committed to SQLite before it proceeds.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import _common
from dbos import DBOS, DBOSConfig


@DBOS.step()
def payment_step(order_id: str) -> dict:
    return _common.payment(order_id)


@DBOS.step()
def inventory_step(product_id: str) -> dict:
    return _common.inventory(product_id)


@DBOS.step()
def delivery_step(order_id: str, in_stock: bool) -> dict:
    return _common.delivery(order_id, in_stock)


@DBOS.step()
def notify_step(customer_id: str, payment_status: str) -> dict:
    return _common.notify(customer_id, payment_status)


@DBOS.workflow()
def payment_wf(order_id: str) -> dict:
    return payment_step(order_id)


@DBOS.workflow()
def inventory_wf(product_id: str) -> dict:
    return inventory_step(product_id)


@DBOS.workflow()
def delivery_wf(order_id: str, in_stock: bool) -> dict:
    return delivery_step(order_id, in_stock)


@DBOS.workflow()
def notify_wf(customer_id: str, payment_status: str) -> dict:
    return notify_step(customer_id, payment_status)


@DBOS.workflow()
def order_workflow(order_id: str) -> dict:
    pay = DBOS.start_workflow(payment_wf, order_id)
    inv = DBOS.start_workflow(inventory_wf, "PROD456")
    pay_out, inv_out = pay.get_result(), inv.get_result()
    dlv = DBOS.start_workflow(delivery_wf, order_id, inv_out["inStock"])
    ntf = DBOS.start_workflow(notify_wf, "CUST1", pay_out["paymentStatus"])
    out: dict = {}
    for part in (pay_out, inv_out, dlv.get_result(), ntf.get_result()):
        out.update(part)
    return out


def run_one(i: int) -> dict:
    return order_workflow(f"ORD{i}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--latency-n", type=int, default=100)
    parser.add_argument("--throughput-s", type=float, default=10)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    db = Path(tempfile.mkdtemp()) / "dbos.sqlite"
    config: DBOSConfig = {
        "name": "orra-bench-peer",
        "system_database_url": f"sqlite:///{db}",
        "run_admin_server": False,
    }
    DBOS(config=config)
    DBOS.launch()
    try:
        result = _common.measure(
            run_one,
            latency_n=args.latency_n,
            throughput_s=args.throughput_s,
            concurrency=args.concurrency,
        )
        result["durability"] = "SQLite system database, every checkpoint committed"
        _common.emit(result)
    finally:
        DBOS.destroy()
        os._exit(0)


if __name__ == "__main__":
    main()
