"""``LargeRefund``: a test service with an approval gate (``amount > 1000``).

Run as a script (``python approval_services.py``) by the approval tests' stack, next to the
example services; each task it runs is appended to ``ORRA_EXAMPLES_EFFECTS_FILE``.
"""

from __future__ import annotations

import json
import os
import time

GATED_SERVICE = "LargeRefund"
GATE = "amount > 1000"


def serve_gated_service() -> None:
    """Serve ``LargeRefund``: refunds an amount; a person approves those above 1000."""
    from pydantic import BaseModel

    from orra_sdk import Service, Task, run

    class RefundInput(BaseModel):
        orderId: str  # noqa: N815 - wire name
        amount: float

    class RefundOutput(BaseModel):
        refundStatus: str  # noqa: N815
        refunded: float

    service = Service(
        name=GATED_SERVICE,
        description="Refund a large amount to a customer's card.",
        input=RefundInput,
        output=RefundOutput,
        approval_when=GATE,
    )

    @service.handler
    async def refund(task: Task[RefundInput]) -> RefundOutput:
        path = os.environ.get("ORRA_EXAMPLES_EFFECTS_FILE")
        if path:
            line = {
                "service": task.service,
                "orchestration_id": task.orchestration_id,
                "task_id": task.task_id,
                "outcome": "completed",
                "finished_at": time.time(),
            }
            with open(path, "a", encoding="utf-8") as f:  # noqa: PTH123
                f.write(json.dumps(line) + "\n")
        return RefundOutput(refundStatus="refunded", refunded=task.input.amount)

    run(service)


if __name__ == "__main__":
    serve_gated_service()
