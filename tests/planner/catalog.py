"""ServiceRegistered fixtures mirroring the e-commerce example catalogue, and small factories."""

from __future__ import annotations

from typing import Any

from orra_events import ActionSubmitted, DataField, PlanTask, ServiceRegistered
from orra_planner import PlanRequest, ServiceCatalog, ServiceSpec


def string() -> dict[str, Any]:
    return {"type": "string"}


def optional(schema: dict[str, Any]) -> dict[str, Any]:
    """What pydantic emits for ``X | None = None``."""
    return {"anyOf": [schema, {"type": "null"}], "default": None}


def obj(props: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": props,
        "required": list(props) if required is None else required,
    }


def registered(
    name: str,
    description: str,
    inputs: dict[str, Any],
    outputs: dict[str, Any],
    *,
    project: str = "default",
) -> ServiceRegistered:
    return ServiceRegistered(
        event_id=f"reg:{name}:1",
        service=name,
        project=project,
        description=description,
        input_schema=inputs,
        output_schema=outputs,
    )


def ecommerce(
    *, project: str = "default", delivery_needs_stock: bool = False
) -> list[ServiceRegistered]:
    """PaymentService, InventoryService, DeliveryAgent, NotificationService, FraudCheck.

    DeliveryAgent's ``inStock`` is optional (an estimate can assume stock) unless
    ``delivery_needs_stock``.
    """
    delivery_in = obj(
        {
            "orderId": string(),
            "inStock": {"type": "boolean"}
            if delivery_needs_stock
            else optional({"type": "boolean"}),
        },
        ["orderId", "inStock"] if delivery_needs_stock else ["orderId"],
    )
    return [
        registered(
            "PaymentService",
            "Processes the payment of an order and returns its payment status",
            obj({"orderId": string(), "amount": {"type": "number"}}),
            obj({"paymentStatus": string(), "transactionId": string()}),
            project=project,
        ),
        registered(
            "InventoryService",
            "Checks product stock and reserves inventory for an order",
            obj({"productId": string()}),
            obj(
                {"inStock": {"type": "boolean"}, "reservedQuantity": optional({"type": "integer"})},
                ["inStock"],
            ),
            project=project,
        ),
        registered(
            "DeliveryAgent",
            "Estimates delivery dates and schedules the shipment of an order",
            delivery_in,
            obj({"deliveryTracking": string(), "estimatedDelivery": string()}),
            project=project,
        ),
        registered(
            "NotificationService",
            "Notifies a customer about their order",
            obj({"customerId": string(), "paymentStatus": optional(string())}, ["customerId"]),
            obj({"notificationStatus": string()}),
            project=project,
        ),
        registered(
            "FraudCheck",
            "Checks whether an order is fraudulent and scores its risk",
            obj({"orderId": string()}),
            obj({"fraudulent": {"type": "boolean"}, "riskScore": {"type": "number"}}),
            project=project,
        ),
    ]


def catalog_of(events: list[ServiceRegistered], project: str = "default") -> ServiceCatalog:
    return ServiceCatalog.of(
        project, [ServiceSpec.from_event(e) for e in events if e.project == project]
    )


def data(**fields: Any) -> tuple[DataField, ...]:
    return tuple(DataField(k, v) for k, v in fields.items())


def request(action: str, catalog: ServiceCatalog, **fields: Any) -> PlanRequest:
    return PlanRequest(
        orchestration_id="o_test", action=action, data=data(**fields), catalog=catalog
    )


def task(task_id: str, service: str, **inputs: Any) -> PlanTask:
    return PlanTask(id=task_id, service=service, input=inputs)


def action(orch: str, text: str, project: str = "default", **fields: Any) -> ActionSubmitted:
    return ActionSubmitted(
        event_id=f"a:{orch}",
        orchestration_id=orch,
        action=text,
        data=list(data(**fields)),
        project=project,
        webhook="http://127.0.0.1:9/hook",
        mode="eager",
        task_timeout_s=12.5,
    )
