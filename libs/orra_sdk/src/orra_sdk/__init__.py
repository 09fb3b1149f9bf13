"""Orra's Python SDK: declare services and agents, and run the tasks Orra plans for them.

Example::

    from pydantic import BaseModel
    from orra_sdk import OrraClient, Service, Task

    class PayIn(BaseModel):
        orderId: str
        amount: float

    class PayOut(BaseModel):
        paymentStatus: str
        transactionId: str

    payment = Service(
        name="PaymentService",
        description="Charge the payment of an order",
        input=PayIn,
        output=PayOut,
        revertible=True,
        version="1",                                 # raise it to change the definition
        examples=["charge the card", "take the money for an order"],  # your users' words
    )

    @payment.handler
    async def pay(task: Task[PayIn]) -> PayOut:
        await task.progress({"step": "charging"})   # optional interim update
        return PayOut(paymentStatus="confirmed", transactionId=f"TX-{task.input.orderId}")

    @payment.revert                                  # compensation, for revertible services
    async def refund(task: RevertTask[PayIn, PayOut]) -> None:
        ...  # undo task.output.transactionId; task.reason says why

    # raise AbortOrchestration(reason, payload) in a handler to abort the orchestration

    async with OrraClient() as client:  # ORRA_NATS_URL, ORRA_NAMESPACE
        await client.serve(payment)

or simply ``orra_sdk.run(payment)``, which also serves ``/healthz``, ``/readyz`` and
``/metrics`` on ``ORRA_HEALTH_PORT`` when it is set (see :mod:`orra_sdk.runner`; a process
that embeds a client starts :func:`health_server` itself). While a task is handled, its
``orchestration_id``, ``task_id``, ``attempt`` and ``service`` are bound to structlog's
context variables, so the handler's own structlog lines carry them.

To test a service, :mod:`orra_sdk.testing` runs its handler without a broker
(``call``) or serves it with the real dispatcher on an embedded nats-server (the ``orra``
pytest fixture; ``pip install 'orra-sdk[testing]'``).
"""

from orra_sdk.client import RESULTS_BUCKET, OrraClient
from orra_sdk.errors import (
    AbortOrchestration,
    ClientClosed,
    InvalidData,
    NonRetryableError,
    OrraSdkError,
    OutcomeUnknown,
    RegistrationConflict,
    ServiceDefinitionError,
)
from orra_sdk.runner import health_server, run, serve_until_signal
from orra_sdk.service import (
    Handler,
    JsonObject,
    RevertHandler,
    RevertTask,
    Service,
    Task,
    schema_hash,
)

__all__ = [
    "RESULTS_BUCKET",
    "AbortOrchestration",
    "ClientClosed",
    "Handler",
    "InvalidData",
    "JsonObject",
    "NonRetryableError",
    "OrraClient",
    "OrraSdkError",
    "OutcomeUnknown",
    "RegistrationConflict",
    "RevertHandler",
    "RevertTask",
    "Service",
    "ServiceDefinitionError",
    "Task",
    "health_server",
    "run",
    "schema_hash",
    "serve_until_signal",
]
