"""The webhook contract check: every delivery a test receiver gets must match the published schema.

The test receivers (``tests/notifier/receiver.py``, used by the notifier and fault tests,
and the e2e suite's ``tests/e2e/stack_fixtures.py``) call :func:`observe` with each request;
the autouse fixture of ``tests/conftest.py`` calls :func:`take_violations` after every test
and fails it when a delivery did not match. The check runs after the test, not in the
receiver, so it adds no latency to a reply the notifier times.

The schema is the gateway's OpenAPI document as ``GET /schema/openapi.json`` serves it
(:func:`orra_gateway.openapi.openapi_document`); a delivery is checked against the
``webhooks`` entry named by its ``type``: its body against the request-body schema,
stricter than published in one way — an object with declared properties may have no
other (a field sent but not documented fails; the published schemas stay open so that
receivers' generated code accepts fields added later) — and its headers and content type
against the entry's required header parameters and media type.
"""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry
from referencing.jsonschema import DRAFT202012

_DOC_URI = "urn:orra:gateway-openapi"
_lock = threading.Lock()
_observed: list[Delivery] = []


@dataclass(frozen=True)
class Delivery:
    """One request a test receiver got."""

    where: str
    headers: dict[str, str]
    body: bytes


@cache
def published_document() -> dict[str, Any]:
    """The gateway's OpenAPI document, exactly as it serves it (built once per session)."""
    from orra_gateway.app import create_app
    from orra_gateway.openapi import openapi_document
    from orra_gateway.settings import GatewaySettings

    return openapi_document(create_app(GatewaySettings()))


def _strict(document: Mapping[str, Any]) -> dict[str, Any]:
    """The document with ``additionalProperties: false`` on the webhook payloads' objects."""
    strict = copy.deepcopy(dict(document))
    for name, schema in strict["components"]["schemas"].items():
        if name.startswith("Webhook") and "properties" in schema:
            schema.setdefault("additionalProperties", False)
    return strict


@cache
def _validators() -> dict[str, tuple[Draft202012Validator, dict[str, Any]]]:
    document = _strict(published_document())
    registry: Registry[Any] = Registry().with_resource(
        _DOC_URI, DRAFT202012.create_resource(document)
    )
    out: dict[str, tuple[Draft202012Validator, dict[str, Any]]] = {}
    for kind, item in document["webhooks"].items():
        operation = item["post"]
        pointer = f"{_DOC_URI}#/webhooks/{kind}/post/requestBody/content/application~1json/schema"
        validator = Draft202012Validator({"$ref": pointer}, registry=registry)
        out[kind] = (validator, operation)
    return out


def body_problems(payload: Any) -> list[str]:
    """Every way a parsed body differs from its published schema (empty: it matches)."""
    kind = payload.get("type") if isinstance(payload, dict) else None
    validators = _validators()
    if kind not in validators:
        return [f"type {kind!r} is not a published webhook ({sorted(validators)})"]
    validator, _ = validators[kind]
    return [
        f"{kind}: {'/'.join(map(str, error.absolute_path)) or 'body'}: {error.message}"
        for error in sorted(validator.iter_errors(payload), key=lambda e: list(e.absolute_path))
    ]


def problems(headers: Mapping[str, str], body: bytes) -> list[str]:
    """Every way a delivery differs from the published contract (empty: it matches)."""
    try:
        payload = json.loads(body)
    except ValueError as exc:
        return [f"the body is not JSON: {exc}"]
    found = body_problems(payload)
    if found and found[0].startswith("type "):
        return found
    kind = payload["type"]
    _, operation = _validators()[kind]
    lowered = {k.lower(): v for k, v in headers.items()}
    found.extend(
        f"{kind}: header {parameter['name']} is missing"
        for parameter in operation.get("parameters", [])
        if parameter["in"] == "header"
        and parameter.get("required")
        and parameter["name"].lower() not in lowered
    )
    media_types = list(operation["requestBody"]["content"])
    content_type = lowered.get("content-type", "").split(";", 1)[0].strip()
    if content_type not in media_types:
        found.append(f"{kind}: content-type {content_type!r} is not one of {media_types}")
    return found


def observe(where: str, headers: Mapping[str, str], body: bytes) -> None:
    """Record a request a test receiver got; it is checked after the test."""
    with _lock:
        _observed.append(Delivery(where, dict(headers), body))


def take_violations() -> list[str]:
    """Check every request observed since the last call; one line per violation."""
    with _lock:
        observed = list(_observed)
        _observed.clear()
    return [
        f"{delivery.where}: {problem} (body {delivery.body[:300]!r})"
        for delivery in observed
        for problem in problems(delivery.headers, delivery.body)
    ]
