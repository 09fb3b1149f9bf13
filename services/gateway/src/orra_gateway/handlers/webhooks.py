"""``/webhooks`` (admin): the project's webhook URLs and its signing secret."""

from litestar import Controller, delete, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody

from orra_events import WebhookRecord
from orra_gateway.auth import SECURITY, Caller, admin_only
from orra_gateway.problems import problem_responses
from orra_gateway.schemas import CreateWebhookRequest, WebhookList, WebhookSecret
from orra_gateway.service import Gateway
from orra_gateway.webhook_urls import check_webhook_url

__all__ = ["WebhookController"]


class WebhookController(Controller):
    """Project-level webhooks and the secret deliveries are signed with (admin keys only)."""

    path = "/webhooks"
    tags = ["webhooks"]
    security = SECURITY
    guards = [admin_only]

    @post(
        "/",
        summary="Register a project-level webhook URL (admin)",
        status_code=201,
        responses=problem_responses(403, 409, 413, 415, 422),
    )
    async def add_webhook(
        self,
        data: JSONBody[CreateWebhookRequest],
        request: Caller,
        gateway: NamedDependency[Gateway],
    ) -> WebhookRecord:
        """Every result of the project is also delivered to this URL."""
        url = check_webhook_url(
            data.url, allow_private=gateway.settings.allow_private_webhooks, field="url"
        )
        record, _ = await gateway.webhooks.add(request.user.project, url)
        return record

    @get(
        "/",
        summary="List the project's webhook URLs (admin)",
        responses=problem_responses(403),
    )
    async def list_webhooks(
        self, request: Caller, gateway: NamedDependency[Gateway]
    ) -> WebhookList:
        """The project's webhooks, oldest first."""
        return WebhookList(items=await gateway.webhooks.list_webhooks(request.user.project))

    @delete(
        "/{webhook_id:str}",
        summary="Remove a project-level webhook (admin)",
        responses=problem_responses(403, 404, 409),
    )
    async def remove_webhook(
        self, webhook_id: FromPath[str], request: Caller, gateway: NamedDependency[Gateway]
    ) -> None:
        """Stop delivering the project's results to this webhook."""
        await gateway.webhooks.remove(request.user.project, webhook_id)

    @get(
        "/secret",
        summary="The project's webhook signing secret (admin)",
        responses=problem_responses(403, 409),
    )
    async def get_webhook_secret(
        self, request: Caller, gateway: NamedDependency[Gateway]
    ) -> WebhookSecret:
        """The Standard Webhooks secret (``whsec_...``) deliveries are signed with."""
        record = await gateway.secrets.get(request.user.project)
        return WebhookSecret(secret=record.secret, created_at=record.created_at)

    @post(
        "/secret/rotate",
        summary="Replace the project's webhook signing secret (admin)",
        status_code=200,
        responses=problem_responses(403, 409),
    )
    async def rotate_webhook_secret(
        self, request: Caller, gateway: NamedDependency[Gateway]
    ) -> WebhookSecret:
        """A new secret signs every delivery from now on."""
        record = await gateway.secrets.rotate(request.user.project)
        return WebhookSecret(secret=record.secret, created_at=record.created_at)
