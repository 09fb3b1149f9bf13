"""``python -m bench.grammar``: the plan grammar's cost on the dispatcher's path, per plan.

A micro-benchmark of :mod:`orra_events.plan` as the dispatcher and the read model call it:
checking a plan once when it starts (structure and dependencies), resolving the inputs of
the tasks that reference others, and the projection's ``dependsOn``. Each figure is also
given as a ratio to decoding the same ``plan.created`` event with the codec, which every
consumer of the plan does anyway (a peer measured in the same run, so the ratio holds on
a loaded machine). Plans: the seed's (4 tasks, 2 references) and one with dotted paths,
list indexes and nested inputs.
"""

from __future__ import annotations

import time
import timeit
from typing import TYPE_CHECKING, Any

from orra_events import Plan, PlanCreated, PlanTask, decode, encode
from orra_events.plan import analyse_plan, dependencies, resolve

if TYPE_CHECKING:
    from collections.abc import Callable

SEED = Plan(
    tasks=[
        PlanTask(
            id="payment", service="PaymentService", input={"orderId": "ORD123", "amount": "299.99"}
        ),
        PlanTask(id="inventory", service="InventoryService", input={"productId": "PROD456"}),
        PlanTask(
            id="delivery",
            service="DeliveryAgent",
            input={"orderId": "ORD123", "inStock": "$inventory.inStock"},
        ),
        PlanTask(
            id="notify",
            service="NotificationService",
            input={"customerId": "CUST1", "paymentStatus": "$payment.status"},
        ),
    ],
    parallel_groups=[["payment", "inventory"], ["delivery", "notify"]],
)
NESTED = Plan(
    tasks=[
        PlanTask(
            id="order",
            service="OrderService",
            input={"orderId": "ORD1", "lines": [{"sku": "A", "qty": 1}], "note": "$5.00 off"},
        ),
        PlanTask(
            id="lookup",
            service="CatalogueService",
            input={"productId": "$order.items.0.id", "meta": {"by": "$order.status"}},
        ),
    ],
    parallel_groups=[["order"], ["lookup"]],
)
OUTPUTS: dict[str, Any] = {
    "payment": {"status": "confirmed"},
    "inventory": {"inStock": True},
    "order": {"status": "placed", "items": [{"id": "P1"}]},
}


def _time(fn: Callable[[], object], number: int = 20000) -> float:
    """Best of 9 runs of this process's CPU time (steadier on a shared machine), µs per call."""
    return min(timeit.repeat(fn, number=number, repeat=9, timer=time.process_time)) / number * 1e6


def measure() -> list[tuple[str, float, float]]:
    """``(operation, µs per call, ratio to decoding the plan.created event)`` rows."""
    rows = []
    for name, plan in (("seed", SEED), ("nested", NESTED)):
        raw = encode(PlanCreated(event_id="p:o_1", orchestration_id="o_1", plan=plan, planner="b"))
        referencing = [t for t in plan.tasks if dependencies(plan.tasks)[t.id]]
        peer = _time(lambda raw=raw: decode(raw))
        for label, fn in (
            ("check + dependencies", lambda plan=plan: analyse_plan(plan)),
            (
                "resolve referencing inputs",
                lambda ts=referencing: [resolve(t.input, OUTPUTS) for t in ts],
            ),
            ("dependsOn (projection)", lambda plan=plan: dependencies(plan.tasks)),
        ):
            micros = _time(fn)
            rows.append((f"{label} ({name})", micros, micros / peer))
        rows.append((f"decode plan.created ({name}), the peer", peer, 1.0))
    return rows


def main() -> None:
    """Print the table."""
    print(f"{'operation':48} {'µs/call':>8} {'/ decode':>9}")
    for label, micros, ratio in measure():
        print(f"{label:48} {micros:8.2f} {ratio:9.2f}")


if __name__ == "__main__":
    main()
