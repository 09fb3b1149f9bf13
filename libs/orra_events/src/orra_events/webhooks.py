"""The webhook payloads: the msgspec types the notifier sends, and their published schema.

Three kinds of delivery reach a webhook, told apart by ``type`` (a msgspec tag, so it is
the first key of the JSON):

* ``orchestration.result`` (:class:`WebhookResult`): an orchestration ended — ``status``
  ``completed``, ``failed`` or ``aborted``;
* ``orchestration.compensation`` (:class:`WebhookCompensationReport`): after a user's
  abort (whose result went out at once), the compensation that followed failed for some
  task; an operator must act;
* ``orchestration.approval_requested`` (:class:`WebhookApprovalRequested`): a task of a
  service with an approval gate waits for a person (approve or reject it with
  ``POST /orchestrations/{id}/approve|reject`` and ``{"task": ...}``).

Every field is always sent (``null`` or ``[]`` when empty), so a handler can destructure
the body without checking which keys exist. The seed's handler reads ``orchestrationId``,
``status``, ``results`` and ``error``; those keep their meaning.

``results`` of a completed orchestration is the *flat view* (:func:`flat_results`): every
output field at the top level. ``resultsByTask`` is the *stable view*: each task's output
under its task id. The flat view's rule depends only on the plan's task order, never on
the values, so a field never moves between runs of the same plan.

The JSON Schema of these types (msgspec's, every field marked required since every field
is always encoded) is published in the gateway's OpenAPI 3.1 document, under ``webhooks``
(:func:`openapi_webhooks`) and ``components.schemas`` (:func:`schema_components`, names
prefixed ``Webhook``). ``docs/webhooks.md`` documents each field and how to verify the
signature headers.
"""

from __future__ import annotations

import copy
import inspect
from typing import TYPE_CHECKING, Annotated, Any, Final, Literal

import msgspec
from msgspec import Meta

from orra_events.events import CompensationSummary, UncoveredPart

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = [
    "APPROVAL_TYPE",
    "COMPENSATION_TYPE",
    "OPENAPI_TAG",
    "PAYLOAD_TYPES",
    "RESULT_TYPE",
    "SCHEMA_PREFIX",
    "PayloadStatus",
    "WebhookApprovalRequested",
    "WebhookCompensationReport",
    "WebhookPayload",
    "WebhookResult",
    "add_webhooks",
    "decode_payload",
    "encode_payload",
    "flat_results",
    "openapi_webhooks",
    "schema_components",
]

RESULT_TYPE: Final = "orchestration.result"
"""``type`` of the delivery of an orchestration's result."""

COMPENSATION_TYPE: Final = "orchestration.compensation"
"""``type`` of the report of a compensation that failed after a user's abort."""

APPROVAL_TYPE: Final = "orchestration.approval_requested"
"""``type`` of the request to approve a task held by its service's approval gate."""

SCHEMA_PREFIX: Final = "Webhook"
"""Prefix of the payloads' component names in the OpenAPI document (no clash with the API's)."""

OPENAPI_TAG: Final = "webhook deliveries"
"""The OpenAPI tag of the webhook deliveries (the ``webhooks`` tag is the API that manages URLs)."""

PayloadStatus = Literal["completed", "failed", "aborted"]
"""How the orchestration ended."""


# --- the stable and flat views of the results ------------------------------------------------


def flat_results(outputs: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The flat view of a completed orchestration's results: every output field at the top.

    The rule depends on the plan, never on the values: the outputs are merged in plan
    order, so a field that several tasks return takes the value of the *last* of them in
    the plan's task list (a plan lists a task after every task it references, so a task's
    value wins over the values it was given). A field therefore always sits at
    ``results.<field>``, whatever the values; each task's own value stays under its id in
    the stable view (``resultsByTask``). Fields keep the order of their first appearance.

    Args:
        outputs: Output of each task, by task id, in plan order.
    """
    results: dict[str, Any] = {}
    for output in outputs.values():
        results.update(output)
    return results


# --- the payloads ------------------------------------------------------------------------------


_ID = Meta(description="The orchestration's id (`o_...`), as returned by `POST /orchestrations`.")
_RESULTS = Meta(
    description=(
        "The flat view. `completed`: every task's output fields merged at the top level "
        "(a field returned by several tasks takes the value of the last of them in the "
        "plan's task order). `aborted`: the payload the aborting service gave, if any. "
        "Otherwise null."
    )
)
_BY_TASK = Meta(
    description=(
        "The stable view. `completed`: each task's output under its task id, for every "
        "task of the plan (an empty object for a task that returned nothing). Otherwise null."
    )
)
_ERROR = Meta(
    description=(
        "Null when `completed`; why it failed for `failed`; the abort's reason for `aborted`."
    )
)
_UNCOVERED = Meta(
    description=(
        "Parts of the action that no task served (an action submitted with `allowPartial`); "
        "empty when the plan covered the whole action."
    )
)


class WebhookResult(
    msgspec.Struct, frozen=True, kw_only=True, rename="camel", tag_field="type", tag=RESULT_TYPE
):
    """An orchestration ended: its result. Sent once per webhook URL (retried until acknowledged).

    Attributes:
        orchestration_id: The orchestration's id.
        status: ``completed``, ``failed`` or ``aborted``.
        results: The flat view (see :func:`flat_results`), the abort payload, or ``None``.
        results_by_task: The stable view: each task's output under its task id.
        error: Why it failed or was aborted; ``None`` when completed.
        compensation: How completed tasks were reverted before the orchestration ended
            (a failure, or a service's abort); ``None`` when nothing was compensated, and
            for a user's abort (whose result is sent before the compensation runs).
        uncovered: Parts of the action no task served (partial plans).
    """

    orchestration_id: Annotated[str, _ID]
    status: Annotated[
        PayloadStatus,
        Meta(
            description=(
                "`completed`: every task completed. `failed`: a task failed for good (or "
                "planning failed, or a pause outlasted its grace period). `aborted`: a user "
                "or a service aborted it."
            )
        ),
    ]
    results: Annotated[dict[str, Any] | None, _RESULTS]
    results_by_task: Annotated[dict[str, dict[str, Any]] | None, _BY_TASK]
    error: Annotated[str | None, _ERROR]
    compensation: Annotated[
        CompensationSummary | None,
        Meta(
            description=(
                "Present when the orchestration compensated (reverted completed tasks of "
                "revertible services) before it ended as `failed` or `aborted`; null "
                "otherwise, and for a user's abort, whose result is sent before its "
                "compensation runs (a failure of that compensation comes as an "
                "`orchestration.compensation` delivery)."
            )
        ),
    ] = None
    uncovered: Annotated[list[UncoveredPart], _UNCOVERED] = msgspec.field(default_factory=list)


class WebhookCompensationReport(
    msgspec.Struct,
    frozen=True,
    kw_only=True,
    rename="camel",
    tag_field="type",
    tag=COMPENSATION_TYPE,
):
    """After a user's abort, the compensation failed for some task: an operator must act.

    The abort's result was delivered before the compensation ran; this second delivery
    repeats its fields and adds ``compensation``. Sent only when ``compensation.failed`` is
    not empty (``orra comp-fail ls`` lists those tasks).

    Attributes:
        orchestration_id: The orchestration's id.
        status: Always ``aborted``.
        results: The abort's payload (``None`` for a user's abort).
        results_by_task: Always ``None``.
        error: The abort's reason.
        compensation: How the compensation went; ``failed`` is not empty.
        uncovered: Parts of the action no task served (partial plans).
    """

    orchestration_id: Annotated[str, _ID]
    status: Annotated[Literal["aborted"], Meta(description="Always `aborted`.")]
    results: Annotated[dict[str, Any] | None, _RESULTS]
    results_by_task: Annotated[dict[str, dict[str, Any]] | None, Meta(description="Null.")]
    error: Annotated[str | None, Meta(description="The abort's reason.")]
    compensation: Annotated[
        CompensationSummary,
        Meta(
            description=(
                "How the compensation went; `failed` lists the tasks an operator must "
                "resolve (`orra comp-fail ls`)."
            )
        ),
    ]
    uncovered: Annotated[list[UncoveredPart], _UNCOVERED] = msgspec.field(default_factory=list)


class WebhookApprovalRequested(
    msgspec.Struct, frozen=True, kw_only=True, rename="camel", tag_field="type", tag=APPROVAL_TYPE
):
    """A task waits for a person's approval before it runs (its service's approval gate).

    Sent once per webhook URL when the task is held; the rest of the orchestration runs on.
    Approve or reject it with ``POST /orchestrations/{orchestrationId}/approve`` (or
    ``/reject``) and the body ``{"task": "<taskId>"}`` (an admin or approver key), or
    ``orra approve <orchestrationId> --task <taskId>``. With no decision by ``expiresAt``
    the task fails (not retried) and what completed is compensated.

    Attributes:
        orchestration_id: The orchestration's id.
        task_id: The held task.
        service: The service that would run it.
        input: The input it will be sent once approved (references resolved).
        condition: The gate that holds it (``true``: the service requires approval always).
        reason: Why it is held, in words.
        expires_at: UNIX seconds after which it is rejected as expired.
    """

    orchestration_id: Annotated[str, _ID]
    task_id: Annotated[str, Meta(description="The held task's id in the plan.")]
    service: Annotated[str, Meta(description="The service that would run it.")]
    input: Annotated[
        dict[str, Any],
        Meta(description="The input it will be sent once approved (references resolved)."),
    ]
    condition: Annotated[
        str,
        Meta(
            description=(
                "The gate that holds it (`true`: the service requires approval for every task)."
            )
        ),
    ]
    reason: Annotated[str, Meta(description="Why it is held, in words.")]
    expires_at: Annotated[
        float,
        Meta(
            description=(
                "UNIX seconds after which, undecided, the task fails (not retried) and what "
                "completed is compensated."
            )
        ),
    ]


WebhookPayload = WebhookResult | WebhookCompensationReport | WebhookApprovalRequested
"""Any body the notifier sends (tagged by ``type``)."""

PAYLOAD_TYPES: Final[
    dict[
        str,
        type[WebhookResult] | type[WebhookCompensationReport] | type[WebhookApprovalRequested],
    ]
] = {
    RESULT_TYPE: WebhookResult,
    COMPENSATION_TYPE: WebhookCompensationReport,
    APPROVAL_TYPE: WebhookApprovalRequested,
}
"""Each delivery kind's type, by its ``type`` tag (the keys of the OpenAPI ``webhooks``)."""

_DECODER: Final[msgspec.json.Decoder[WebhookPayload]] = msgspec.json.Decoder(WebhookPayload)


def encode_payload(payload: WebhookPayload) -> bytes:
    """The exact bytes that are signed and sent (compact JSON, every field present)."""
    return msgspec.json.encode(payload)


def decode_payload(body: bytes | str) -> WebhookPayload:
    """A received body as its payload type (for Python receivers and tests).

    Raises:
        msgspec.ValidationError: The body does not match either payload type.
        msgspec.DecodeError: The body is not JSON.
    """
    return _DECODER.decode(body)


# --- the published schema ----------------------------------------------------------------------

_REF_PREFIX: Final = "#/components/schemas/"


def _component_name(name: str) -> str:
    return name if name.startswith(SCHEMA_PREFIX) else SCHEMA_PREFIX + name


def _rename_refs(node: Any) -> Any:
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str) and value.startswith(_REF_PREFIX):
                out[key] = _REF_PREFIX + _component_name(value.removeprefix(_REF_PREFIX))
            elif key == "mapping" and isinstance(value, dict):
                out[key] = {k: _rename_refs({"$ref": v})["$ref"] for k, v in value.items()}
            else:
                out[key] = _rename_refs(value)
        return out
    if isinstance(node, list):
        return [_rename_refs(item) for item in node]
    return node


def _attributes(section: str) -> dict[str, str]:
    """``{name: text}`` of a Google-style ``Attributes:`` section (continuation lines joined)."""
    found: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in section.splitlines():
        stripped = line.strip()
        if not stripped:
            continue
        name, sep, text = stripped.partition(": ")
        if sep and line.startswith("    ") and not line.startswith("     ") and name.isidentifier():
            current = found.setdefault(name, [])
            current.append(text)
        elif current is not None:
            current.append(stripped)
    return {name: " ".join(parts) for name, parts in found.items()}


def schema_components() -> dict[str, dict[str, Any]]:
    """The JSON Schemas of the payloads, for ``components.schemas`` of an OpenAPI document.

    msgspec's schemas of :data:`WebhookPayload` and what it nests, named after the classes
    with the :data:`SCHEMA_PREFIX` (``WebhookResult``, ``WebhookCompensationReport``,
    ``WebhookCompensationSummary``, ``WebhookUncoveredPart``), plus ``WebhookPayload``, the
    union discriminated by ``type``. Every property is listed as required: the encoder
    writes every field, defaults included.
    """
    (union,), components = msgspec.json.schema_components(
        [WebhookPayload], ref_template=_REF_PREFIX + "{name}"
    )
    renamed: dict[str, dict[str, Any]] = {
        _component_name(name): _rename_refs(schema) for name, schema in components.items()
    }
    for name, schema in renamed.items():
        schema["title"] = name
        if "description" in schema:  # the docstring: its summary, and its Attributes section
            text = inspect.cleandoc(schema["description"])
            summary, _, attributes = text.partition("\n\nAttributes:")
            schema["description"] = summary.strip()
            documented = _attributes(attributes)
            for prop, sub in schema.get("properties", {}).items():
                if "description" not in sub and prop in documented:
                    sub["description"] = documented[prop]
        tag = schema.get("properties", {}).get("type", {})
        if tag.get("enum") and tag["enum"][0] in PAYLOAD_TYPES:
            tag["description"] = f"The kind of delivery: always `{tag['enum'][0]}`."
        if "properties" in schema:
            schema["required"] = list(schema["properties"])
    renamed[SCHEMA_PREFIX + "Payload"] = {
        "title": SCHEMA_PREFIX + "Payload",
        "description": "Any body a webhook receives, told apart by `type`.",
        **_rename_refs(union),
    }
    return dict(sorted(renamed.items()))


_HEADERS: Final = (
    (
        "webhook-id",
        (
            "The delivery's id (`msg_...`): the same on every retry of this delivery to this URL, "
            "so a receiver deduplicates on it."
        ),
    ),
    ("webhook-timestamp", "UNIX seconds of this attempt; refuse one far from your clock."),
    (
        "webhook-signature",
        (
            "Space-separated `v1,<base64 HMAC-SHA256>` signatures of "
            "`<webhook-id>.<webhook-timestamp>.<raw body>` with the key of the project's "
            "`whsec_` secret (base64 after the prefix); two while a rotated secret is in its "
            "grace period. Accept the delivery when any `v1` signature matches."
        ),
    ),
)

_RESPONSES: Final = {
    "2XX": {"description": "Delivered: the notifier records it and sends it no more."},
    "default": {
        "description": (
            "Not delivered. 408, 429 (honouring `Retry-After`), 5xx, timeouts and connection "
            "errors are retried with exponential backoff until the deadline "
            "(`ORRA_NOTIFIER_DEADLINE_S`, 24 h); any other status gives up at once. "
            "Redirects are not followed."
        )
    },
}


def _examples() -> dict[str, dict[str, dict[str, Any]]]:
    """Example bodies of each delivery kind, built from the types (so they stay valid)."""
    # the seed's payload; orderStatus, returned by two tasks, takes the later task's value
    seed_outputs: dict[str, dict[str, Any]] = {
        "payment": {"paymentStatus": "confirmed"},
        "inventory": {"orderStatus": "reserved"},
        "delivery": {"deliveryTracking": "DLV987", "estimatedDelivery": "2024-11-10"},
        "notify": {"orderStatus": "processed"},
    }
    failed_compensation = CompensationSummary(compensated=["payment"], skipped=["notify"])
    report = CompensationSummary(compensated=["delivery"], failed=["payment"])
    bodies: dict[str, dict[str, WebhookPayload]] = {
        RESULT_TYPE: {
            "completed": WebhookResult(
                orchestration_id="o_fdhdhjhashah",
                status="completed",
                results=flat_results(seed_outputs),
                results_by_task=seed_outputs,
                error=None,
            ),
            "failed": WebhookResult(
                orchestration_id="o_8f2c1a",
                status="failed",
                results=None,
                results_by_task=None,
                error="task 'delivery' (DeliveryAgent) failed after 3 attempts: carrier API down",
                compensation=failed_compensation,
            ),
            "aborted": WebhookResult(
                orchestration_id="o_4b7e90",
                status="aborted",
                results=None,
                results_by_task=None,
                error="customer cancelled",
            ),
        },
        COMPENSATION_TYPE: {
            "compensationFailed": WebhookCompensationReport(
                orchestration_id="o_4b7e90",
                status="aborted",
                results=None,
                results_by_task=None,
                error="customer cancelled",
                compensation=report,
            )
        },
        APPROVAL_TYPE: {
            "refundAboveThreshold": WebhookApprovalRequested(
                orchestration_id="o_9c1d22",
                task_id="refund",
                service="RefundService",
                input={"orderId": "ORD123", "amount": 1500},
                condition="amount > 1000",
                reason="approval condition 'amount > 1000' holds",
                expires_at=1731240000.0,
            )
        },
    }
    return {
        kind: {name: {"value": msgspec.to_builtins(body)} for name, body in by_name.items()}
        for kind, by_name in bodies.items()
    }


def openapi_webhooks() -> dict[str, dict[str, Any]]:
    """The ``webhooks`` section of an OpenAPI 3.1 document: one entry per delivery kind.

    Each is a ``POST`` whose body is ``$ref``'d to :func:`schema_components` and whose
    header parameters are the Standard Webhooks signature headers.
    """
    examples = _examples()
    summaries = {
        RESULT_TYPE: (
            "An orchestration ended",
            (
                "Sent to the action's `webhook` and to every webhook of its project when the "
                "orchestration ends (`completed`, `failed` or `aborted`). Delivery is at least "
                "once: deduplicate on `webhook-id`."
            ),
        ),
        COMPENSATION_TYPE: (
            "A compensation failed after a user's abort",
            (
                "Sent to the same URLs as the abort's result, under its own `webhook-id`, when "
                "reverting a completed task failed for good after a user's abort. An operator "
                "must resolve it (`orra comp-fail ls`)."
            ),
        ),
        APPROVAL_TYPE: (
            "A task waits for approval",
            (
                "Sent to the action's `webhook` and to every webhook of its project, under its "
                "own `webhook-id`, when a task of a service with an approval gate is held. "
                "Approve or reject it with `POST /orchestrations/{id}/approve|reject` and "
                '`{"task": "<taskId>"}`.'
            ),
        ),
    }
    webhooks: dict[str, dict[str, Any]] = {}
    for kind, cls in PAYLOAD_TYPES.items():
        summary, description = summaries[kind]
        webhooks[kind] = {
            "post": {
                "operationId": "webhook" + "".join(p.title() for p in kind.split(".")),
                "summary": summary,
                "description": description,
                "tags": [OPENAPI_TAG],
                "parameters": [
                    {
                        "name": name,
                        "in": "header",
                        "required": True,
                        "description": text,
                        "schema": {"type": "string"},
                    }
                    for name, text in _HEADERS
                ],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {"$ref": _REF_PREFIX + _component_name(cls.__name__)},
                            "examples": examples[kind],
                        }
                    },
                },
                "responses": copy.deepcopy(_RESPONSES),
            }
        }
    return webhooks


def add_webhooks(document: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of an OpenAPI 3.1 document with the webhook deliveries added.

    Adds :func:`openapi_webhooks` as ``webhooks`` and :func:`schema_components` to
    ``components.schemas``.

    Raises:
        ValueError: The document already has a component of the same name with another
            schema, or a ``webhooks`` entry of the same name.
    """
    out = dict(document)
    components = dict(out.get("components") or {})
    schemas = dict(components.get("schemas") or {})
    for name, schema in schema_components().items():
        if name in schemas and schemas[name] != schema:
            raise ValueError(f"the OpenAPI document already has another schema named {name!r}")
        schemas[name] = schema
    components["schemas"] = dict(sorted(schemas.items()))
    out["components"] = components
    webhooks = dict(out.get("webhooks") or {})
    for name, item in openapi_webhooks().items():
        if name in webhooks and webhooks[name] != item:
            raise ValueError(f"the OpenAPI document already has another webhook named {name!r}")
        webhooks[name] = item
    out["webhooks"] = webhooks
    return out
