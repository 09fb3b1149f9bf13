"""``/api-keys`` (admin) and ``/me`` (any key): the project's API keys and the caller's."""

from litestar import Controller, delete, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody

from orra_gateway.auth import SECURITY, Caller, admin_only
from orra_gateway.domain import key_item
from orra_gateway.errors import Forbidden
from orra_gateway.problems import problem_responses
from orra_gateway.schemas import ApiKeyCreated, ApiKeyItem, ApiKeyList, CreateApiKeyRequest
from orra_gateway.service import Gateway

__all__ = ["ApiKeyController", "MeController"]


class MeController(Controller):
    """The calling key, for clients that adapt to what it may do."""

    path = "/me"
    tags = ["api-keys"]
    security = SECURITY

    @get("/", summary="The calling key: its id, project and role", responses=problem_responses())
    async def who_am_i(self, request: Caller) -> ApiKeyItem:
        """What the caller's key may do (``role``), for clients that adapt to it."""
        return key_item(request.user)


class ApiKeyController(Controller):
    """The project's API keys (admin keys only)."""

    path = "/api-keys"
    tags = ["api-keys"]
    security = SECURITY
    guards = [admin_only]

    @post(
        "/",
        summary="Create an API key (shown once; admin)",
        status_code=201,
        responses=problem_responses(403, 413, 415),
    )
    async def create_api_key(
        self,
        request: Caller,
        gateway: NamedDependency[Gateway],
        data: JSONBody[CreateApiKeyRequest | None] = None,
    ) -> ApiKeyCreated:
        """Create a key in the caller's project (an admin of ``default`` may name another)."""
        principal = request.user
        body = data or CreateApiKeyRequest()
        project = body.project or principal.project
        if not principal.may_manage(project):
            raise Forbidden(
                f"an admin key of project {principal.project!r} cannot create keys for project "
                f"{project!r}; only admin keys of the 'default' project can"
            )
        key, record = await gateway.keys.create(project=project, name=body.name, role=body.role)
        return ApiKeyCreated(
            id=record.id,
            api_key=key,
            prefix=record.prefix,
            project=record.project,
            name=record.name,
            created_at=record.created_at,
            role=record.granted,
        )

    @get(
        "/",
        summary="List the project's API keys with their roles (never the keys; admin)",
        responses=problem_responses(403),
    )
    async def list_api_keys(self, request: Caller, gateway: NamedDependency[Gateway]) -> ApiKeyList:
        """Ids, prefixes and creation times of the project's keys."""
        records = await gateway.keys.list_keys(request.user.project)
        return ApiKeyList(items=[key_item(r) for r in records])

    @delete(
        "/{key_id:str}",
        summary="Revoke an API key (admin)",
        responses=problem_responses(403, 404, 409),
    )
    async def revoke_api_key(
        self, key_id: FromPath[str], request: Caller, gateway: NamedDependency[Gateway]
    ) -> None:
        """Delete the key; it stops working within a few seconds on every replica.

        The project's last admin key cannot be revoked (409).
        """
        await gateway.keys.revoke(request.user.project, key_id)
