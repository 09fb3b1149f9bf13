"""The AsyncAPI 3.0.0 document of Orra's subjects, built from the event catalogue.

Every subject of :class:`~orra_events.topology.Topology` is a channel (``task.completed.
{orchestrationId}``, ``work.{service}``, ``service.registered.{service}.{version}``, ``dlq.>``);
every event class is a message whose payload is its msgspec JSON Schema, kept under
``components.schemas``; the operations say which Orra part sends and which receives each
channel (``planner``, ``dispatcher``, ``gateway``, ``notifier``, and ``sdk`` for users'
services and agents).

``python -m orra_events.asyncapi --write`` writes ``docs/asyncapi.json``; without
``--write`` it checks that the file is up to date (``make schemas`` runs both generators).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
from pathlib import Path
from typing import Any, Final

import msgspec

from orra_events.bus import (
    DEFAULT_NATS_URL,
    HDR_ORIGINAL_SEQUENCE,
    HDR_ORIGINAL_STREAM,
    HDR_ORIGINAL_SUBJECT,
    HDR_REASON,
)
from orra_events.events import ALL_EVENTS, Event, ServiceEvent, TaskDispatched

__all__ = [
    "ASYNCAPI_PATH",
    "PRODUCERS",
    "SERVICES",
    "SUBSCRIBERS",
    "build",
    "channel_id",
    "main",
    "render",
]

ASYNCAPI_PATH: Final = Path(__file__).resolve().parents[4] / "docs" / "asyncapi.json"
"""Where the published document lives (``docs/asyncapi.json`` of the repository)."""

SERVICES: Final = ("planner", "dispatcher", "gateway", "notifier", "sdk")
"""The parts of Orra that send or receive; ``sdk`` stands for users' services and agents."""

PRODUCERS: Final[dict[str, tuple[str, ...]]] = {
    "action.submitted": ("gateway",),
    "plan.created": ("planner",),
    "plan.failed": ("planner",),
    "task.dispatched": ("dispatcher",),
    "task.completed": ("sdk",),
    "task.failed": ("sdk",),
    "task.retrying": ("dispatcher",),
    "task.timed_out": ("dispatcher",),
    "task.progress": ("sdk",),
    "task.aborted": ("sdk",),
    "task.compensating": ("dispatcher",),
    "task.compensated": ("sdk",),
    "task.compensation_failed": ("sdk",),
    "task.compensation_abandoned": ("dispatcher",),
    "task.compensation_resolved": ("gateway",),
    "orchestration.done": ("dispatcher",),
    "orchestration.failed": ("dispatcher",),
    "orchestration.aborted": ("gateway", "dispatcher"),
    "orchestration.compensating": ("dispatcher",),
    "orchestration.compensated": ("dispatcher",),
    "orchestration.paused": ("dispatcher",),
    "orchestration.resumed": ("dispatcher",),
    "orchestration.awaiting_approval": ("dispatcher",),
    "task.approval_requested": ("dispatcher",),
    "orchestration.approved": ("gateway",),
    "orchestration.rejected": ("gateway", "dispatcher"),
    "webhook.delivered": ("notifier",),
    "webhook.failed": ("notifier",),
    "webhook.retrying": ("notifier",),
    "service.registered": ("sdk",),
    "service.heartbeat": ("sdk",),
    "work": ("dispatcher",),
    "dlq": ("planner", "dispatcher", "gateway", "notifier", "sdk"),
}
"""Who publishes on each channel (by event type; ``work`` and ``dlq`` by subject family)."""

_ORCHESTRATION_TYPES = tuple(c.TYPE for c in ALL_EVENTS if not issubclass(c, ServiceEvent))

SUBSCRIBERS: Final[dict[str, tuple[str, ...]]] = {
    "action.submitted": ("planner",),
    "plan.created": ("dispatcher",),
    "plan.failed": ("dispatcher",),
    "task.completed": ("dispatcher",),
    "task.failed": ("dispatcher",),
    "task.aborted": ("dispatcher",),
    "task.compensated": ("dispatcher",),
    "task.compensation_failed": ("dispatcher",),
    "orchestration.done": ("notifier",),
    "orchestration.failed": ("notifier", "sdk"),
    "orchestration.aborted": ("dispatcher", "notifier", "sdk"),
    "orchestration.compensating": ("sdk",),
    "task.approval_requested": ("notifier",),
    "orchestration.approved": ("dispatcher",),
    "orchestration.rejected": ("dispatcher",),
    "service.registered": ("planner", "gateway", "dispatcher"),
    "service.heartbeat": ("planner", "gateway", "dispatcher"),
    "work": ("sdk",),
    "dlq": (),
}
"""Who consumes each channel; the gateway also reads every orchestration event (read model
and server-sent events), which :func:`build` adds."""

_DLQ_HEADERS: Final[dict[str, Any]] = {
    "type": "object",
    "properties": {
        HDR_REASON: {"type": "string", "description": "Why the message was parked."},
        HDR_ORIGINAL_SUBJECT: {"type": "string", "description": "Where it was published."},
        HDR_ORIGINAL_STREAM: {"type": "string", "description": "The stream it was in."},
        HDR_ORIGINAL_SEQUENCE: {
            "type": "string",
            "description": "Its sequence in that stream (decimal).",
        },
    },
    "required": [HDR_REASON, HDR_ORIGINAL_SUBJECT],
}

_EVENT_HEADERS: Final[dict[str, Any]] = {
    "type": "object",
    "properties": {
        "Nats-Msg-Id": {
            "type": "string",
            "description": "The event_id: JetStream stores a retried publish once.",
        },
        "Nats-Expected-Last-Subject-Sequence": {
            "type": "string",
            "description": "Optimistic concurrency: refused unless the subject is at it.",
        },
    },
    "required": ["Nats-Msg-Id"],
}


def channel_id(event_type: str) -> str:
    """The channel (and message key) id of an event type: ``task.completed`` → ``taskCompleted``.

    Args:
        event_type: Dotted event type, or a subject family such as ``work``.
    """
    head, *rest = event_type.replace("_", ".").split(".")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def _version() -> str:
    try:
        return importlib.metadata.version("orra-events")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - source checkout
        return "0.0.0"


def _parameter(name: str) -> dict[str, Any]:
    if name == "service":
        return {
            "description": "Name of the registered service or agent (one subject token).",
            "examples": ["PaymentService"],
        }
    if name == "version":
        return {
            "description": "The service version as one subject token, dots as underscores "
            "(1.4.2 is 1_4_2); a registration's subject has one message, never replaced.",
            "examples": ["1", "1_4_2"],
        }
    return {
        "description": "Orchestration id (one subject token), e.g. o_8f2c1a.",
        "examples": ["o_8f2c1a"],
    }


def _message(cls: type[Event]) -> dict[str, Any]:
    doc = (cls.__doc__ or "").strip()
    return {
        "name": cls.TYPE,
        "title": cls.__name__,
        "summary": doc.splitlines()[0] if doc else cls.TYPE,
        "contentType": "application/json",
        "headers": _EVENT_HEADERS,
        "payload": {"$ref": f"#/components/schemas/{cls.__name__}"},
        "x-orra-version": cls.VERSION,
    }


def _operation(
    service: str, action: str, channel: str, messages: list[str], summary: str
) -> tuple[str, dict[str, Any]]:
    verb = "Send" if action == "send" else "Receive"
    op_id = f"{service}{verb}{channel[:1].upper()}{channel[1:]}"
    return op_id, {
        "action": action,
        "channel": {"$ref": f"#/channels/{channel}"},
        "messages": [{"$ref": f"#/channels/{channel}/messages/{m}"} for m in messages],
        "summary": summary,
        "tags": [{"name": service}],
        "x-orra-service": service,
    }


def build() -> dict[str, Any]:
    """Build the AsyncAPI 3.0.0 document (a JSON-ready dict) from the event catalogue."""
    _, schemas = msgspec.json.schema_components(
        ALL_EVENTS, ref_template="#/components/schemas/{name}"
    )
    messages: dict[str, Any] = {cls.__name__: _message(cls) for cls in ALL_EVENTS}
    messages["DeadLetter"] = {
        "name": "dead letter",
        "title": "DeadLetter",
        "summary": "A message that could not be processed, parked with its reason.",
        "headers": _DLQ_HEADERS,
        "payload": {
            "description": "The original bytes, unchanged (usually an event, maybe not JSON)."
        },
    }
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}

    def add(
        cid: str, address: str, *, params: list[str], message: str, description: str, family: str
    ) -> None:
        channels[cid] = {
            "address": address,
            "description": description,
            "messages": {message: {"$ref": f"#/components/messages/{message}"}},
        }
        if params:
            channels[cid]["parameters"] = {p: _parameter(p) for p in params}
        receivers = list(SUBSCRIBERS.get(family, ()))
        if family in _ORCHESTRATION_TYPES and "gateway" not in receivers:
            receivers.append("gateway")
        for service in PRODUCERS[family]:
            op_id, op = _operation(service, "send", cid, [message], f"{service} publishes")
            operations[op_id] = op
        for service in receivers:
            op_id, op = _operation(service, "receive", cid, [message], f"{service} consumes")
            operations[op_id] = op

    for cls in ALL_EVENTS:
        params = ["service", "version"] if issubclass(cls, ServiceEvent) else ["orchestrationId"]
        add(
            channel_id(cls.TYPE),
            ".".join([cls.TYPE, *(f"{{{p}}}" for p in params)]),
            params=params,
            message=cls.__name__,
            description=(cls.__doc__ or cls.TYPE).strip().splitlines()[0],
            family=cls.TYPE,
        )
    add(
        "work",
        "work.{service}",
        params=["service"],
        message=TaskDispatched.__name__,
        description="Tasks for one service; its replicas share them (work-queue stream, "
        "durable svc_<service>).",
        family="work",
    )
    add(
        "deadLetters",
        "dlq.>",
        params=[],
        message="DeadLetter",
        description="Parked messages: dlq.<original subject>, with the reason in the headers.",
        family="dlq",
    )
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Orra events",
            "version": _version(),
            "description": (
                "Every subject of Orra on NATS JetStream. Subjects carry no namespace here; "
                "with ORRA_NAMESPACE=<ns> every address is prefixed with '<ns>.'."
            ),
        },
        "defaultContentType": "application/json",
        "servers": {
            "nats": {
                "host": DEFAULT_NATS_URL.removeprefix("nats://"),
                "pathname": "",  # NATS has no path; FastStream's model requires the field
                "protocol": "nats",
                "description": "The broker (ORRA_NATS_URL), with JetStream.",
            }
        },
        "channels": channels,
        "operations": dict(sorted(operations.items())),
        "components": {"messages": messages, "schemas": dict(sorted(schemas.items()))},
    }


def render(document: dict[str, Any] | None = None) -> str:
    """The document as committed: indented JSON with a final newline.

    Args:
        document: What to render; :func:`build` when ``None``.
    """
    return json.dumps(build() if document is None else document, indent=2) + "\n"


def main(argv: list[str] | None = None) -> int:
    """``python -m orra_events.asyncapi [--write] [--path P]``: write or check the document.

    Args:
        argv: Command-line arguments (``sys.argv[1:]`` when ``None``).

    Returns:
        0 when written or up to date, 1 when the committed document is stale.
    """
    parser = argparse.ArgumentParser(
        prog="python -m orra_events.asyncapi",
        description="Write, or check, the AsyncAPI document of Orra's subjects.",
    )
    parser.add_argument("--write", action="store_true", help="(re)write the document")
    parser.add_argument("--path", type=Path, default=ASYNCAPI_PATH, help="document path")
    args = parser.parse_args(argv)
    path: Path = args.path
    text = render()
    if args.write:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path}")  # noqa: T201
        return 0
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        print(f"{path} is out of date: run `python -m orra_events.asyncapi --write`")  # noqa: T201
        return 1
    print(f"{path} is up to date")  # noqa: T201
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
