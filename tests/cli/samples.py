"""Gateway answers shaped as docs/architecture.md says."""

from __future__ import annotations

import time
from typing import Any


def seed_orchestration(now: float | None = None, status: str = "completed") -> dict[str, Any]:
    """The seed's ``order123`` example as GET /orchestrations/{id} returns it."""
    now = time.time() if now is None else now
    t0 = now - 100

    def task(
        tid: str, service: str, group: int, start: float, ms: float, deps: list[str]
    ) -> dict[str, Any]:
        return {
            "id": tid,
            "service": service,
            "group": group,
            "status": "completed",
            "attempts": 1,
            "input": {"orderId": "ORD123"},
            "output": {f"{tid}Status": "ok"},
            "error": None,
            "startedAt": start,
            "finishedAt": start + ms / 1000,
            "durationMs": ms,
            "dependsOn": deps,
        }

    return {
        "id": "order123",
        "action": "Process order and arrange delivery",
        "data": [{"field": "orderId", "value": "ORD123"}],
        "status": status,
        "createdAt": now - 125,
        "finishedAt": t0 + 3.6,
        "parallel_groups": [["payment", "stock"], ["delivery", "notify"]],
        "tasks": [
            task("payment", "PaymentSvc", 0, t0, 1200, []),
            task("stock", "InventorySvc", 0, t0 + 0.01, 1100, []),
            task("delivery", "DeliveryAgent", 1, t0 + 1.3, 2300, []),
            task("notify", "NotifySvc", 1, t0 + 1.31, 800, []),
        ],
        "results": {"deliveryTracking": "DLV987"},
        "error": None,
        "plan": {
            "planner": "offline",
            "model": None,
            "cacheHit": True,
            "attempts": 1,
            "latencyMs": 12.5,
            "usage": None,
        },
        "webhooks": [
            {
                "url": "http://localhost:3000/hook",
                "status": "delivered",
                "attempts": 1,
                "statusCode": 200,
            }
        ],
    }


def created(orch_id: str = "o_abc123", status: str = "running") -> dict[str, Any]:
    """A 201 answer of POST /orchestrations."""
    return {
        "id": orch_id,
        "orchestrationId": orch_id,
        "status": status,
        "action": "Estimate order delivery and notify customer",
        "tasks": [
            {"id": "payment", "service": "PaymentService", "input": {"orderId": "ORD456"}},
            {"id": "inventory", "service": "InventoryService", "input": {"productId": "P1"}},
            {
                "id": "delivery",
                "service": "DeliveryAgent",
                "input": {"inStock": "$inventory.inStock"},
            },
        ],
        "parallel_groups": [["payment", "inventory"], ["delivery"]],
        "createdAt": time.time(),
    }
