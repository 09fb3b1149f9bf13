"""The gateway's OpenAPI 3.1 document: its routes, plus the webhooks Orra sends.

Litestar generates the document from the routes. The webhook deliveries are not routes of
the gateway: their schemas are msgspec's, of the types the notifier encodes
(:mod:`orra_events.webhooks`), added by :func:`~orra_events.webhooks.add_webhooks` as the
``webhooks`` section and ``Webhook*`` entries of ``components.schemas``. Litestar rebuilds
``components.schemas`` from the routes' types (a schema given in the config is dropped),
so the additions are made to the finished document by the render plugin that serves it,
``GET /schema/openapi.json`` (the Scalar page at ``GET /schema`` loads that URL).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin, ScalarRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme, Tag
from litestar.serialization import encode_json

from orra_events.webhooks import OPENAPI_TAG, add_webhooks

if TYPE_CHECKING:
    from litestar import Litestar, Request

__all__ = ["JsonWithWebhooks", "openapi_config", "openapi_document"]


class JsonWithWebhooks(JsonRenderPlugin):
    """Serves ``/schema/openapi.json``: Litestar's document with the webhooks added.

    Litestar serves the plugin that has the ``/openapi.json`` path instead of its own. It
    builds its document once (again only when routes are added), so the webhooks are
    added once per document it passes.
    """

    def __init__(self) -> None:
        super().__init__()
        self._source: dict[str, Any] | None = None
        self._published: dict[str, Any] = {}

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        """The document as JSON, with the webhooks."""
        if openapi_schema is not self._source:
            self._published = add_webhooks(openapi_schema)
            self._source = openapi_schema
        return super().render(request, self._published)


def openapi_config() -> OpenAPIConfig:
    """The gateway's OpenAPI configuration (served under ``/schema``)."""
    return OpenAPIConfig(
        title="Orra gateway",
        version="1.0.0",
        description=(
            "Submit actions, follow orchestrations, manage services, API keys and webhooks. "
            "Errors are RFC 9457 problem details (application/problem+json). "
            "`webhooks` lists what Orra POSTs to your webhook URLs, signed per Standard "
            "Webhooks (docs/webhooks.md)."
        ),
        components=Components(
            security_schemes={
                "BearerAuth": SecurityScheme(
                    type="http", scheme="bearer", description="An Orra API key"
                )
            }
        ),
        tags=[
            Tag(
                name=OPENAPI_TAG,
                description=(
                    "Deliveries to your webhook URLs (the action's `webhook` and the project's "
                    "`POST /webhooks`). Verify `webhook-signature` with the project's secret "
                    "(`GET /webhooks/secret`) before trusting a body."
                ),
            )
        ],
        render_plugins=[ScalarRenderPlugin(), JsonWithWebhooks()],
        path="/schema",
    )


def openapi_document(app: Litestar) -> dict[str, Any]:
    """The document ``GET /schema/openapi.json`` serves for ``app``, as JSON values."""
    document: dict[str, Any] = msgspec.json.decode(encode_json(app.openapi_schema.to_schema()))
    return add_webhooks(document)
