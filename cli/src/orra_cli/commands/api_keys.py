"""``orra api-keys``: the project's API keys."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

import typer

from orra_cli.client import GatewayClient
from orra_cli.common import (
    ApiKeyOpt,
    GatewayOpt,
    JsonOpt,
    cell_text,
    check_id,
    client_for,
    emit_json,
    handles_errors,
    items_of,
    note,
    out,
    print_rows,
    resolve_settings,
)
from orra_cli.errors import CliError, UsageError
from orra_cli.render import relative_time
from orra_events.apikeys import ROLES, api_key_id

__all__ = ["api_keys_gen", "api_keys_ls", "api_keys_revoke", "keys_app"]

keys_app = typer.Typer(help="API keys of the project.", no_args_is_help=True)


@keys_app.command("gen")
@handles_errors
def api_keys_gen(
    name: Annotated[str | None, typer.Option("--name", help="A label for the key.")] = None,
    role: Annotated[
        str | None,
        typer.Option(
            "--role",
            metavar="|".join(ROLES),
            help="admin: manages keys, webhooks and the signing secret; approver: a member "
            "that also approves or rejects held plans and tasks (orra approve); member: "
            "submits, reads, follows and aborts orchestrations (default: member).",
            show_default=False,
        ),
    ] = None,
    as_json: JsonOpt = False,
    gateway_url: GatewayOpt = None,
    api_key: ApiKeyOpt = None,
) -> None:
    """Create a new API key for the project (an admin key is needed)."""
    if role is not None and role.strip().lower() not in ROLES:
        raise UsageError(f"unknown --role {role!r}: use {', '.join(ROLES)}")
    body: dict[str, str] = {"name": name} if name else {}
    if role is not None:
        body["role"] = role.strip().lower()
    with client_for(gateway_url, api_key) as client:
        payload = client.post_json("/api-keys", body)
    key = None
    if isinstance(payload, dict):
        key = payload.get("apiKey") or payload.get("key") or payload.get("api_key")
    if not key:
        raise CliError("the gateway created no API key (no apiKey in its answer)")
    if as_json:
        emit_json({**payload, "apiKey": key})
        return
    key_id = payload.get("id") or api_key_id(str(key))
    out().print(f"{key}  {key_id}")
    note(
        f"{payload.get('role') or 'new'} key {key_id} of project {payload.get('project') or '-'}; "
        "keep it secret: it is shown once; use it as ORRA_API_KEY or --api-key"
    )


@keys_app.command("revoke")
@handles_errors
def api_keys_revoke(
    key_id: Annotated[
        str, typer.Argument(metavar="ID", help="The key's id (k_...), from `orra api-keys ls`.")
    ],
    as_json: JsonOpt = False,
    gateway_url: GatewayOpt = None,
    api_key: ApiKeyOpt = None,
) -> None:
    """Revoke an API key: it stops working within seconds."""
    check_id(key_id, "an API key", "orra api-keys ls")
    settings = resolve_settings(gateway_url, api_key)
    key = settings.require_api_key()
    with GatewayClient(settings.gateway_url, key) as client:
        client.delete(
            f"/api-keys/{quote(key_id, safe='')}",
            not_found=f"no API key {key_id} in this project: list them with `orra api-keys ls`",
        )
    if as_json:
        emit_json({"revoked": key_id})
    else:
        out().print(f"API key revoked: {key_id}")
    if key_id == api_key_id(key):
        note(
            "that was the key this command used: it no longer works; "
            "use another with ORRA_API_KEY or --api-key",
            "yellow",
        )


@keys_app.command("ls")
@handles_errors
def api_keys_ls(
    as_json: JsonOpt = False, gateway_url: GatewayOpt = None, api_key: ApiKeyOpt = None
) -> None:
    """List the project's API keys (never their secret)."""
    with client_for(gateway_url, api_key) as client:
        items = items_of(client.get_json("/api-keys"), "apiKeys", "keys")
    if as_json:
        emit_json({"items": items})
        return
    rows = [
        [
            cell_text(k, "id", "prefix", "keyPrefix"),
            cell_text(k, "name"),
            cell_text(k, "role"),
            cell_text(k, "project"),
            relative_time(k.get("createdAt")),
        ]
        for k in items
    ]
    print_rows(["ID", "NAME", "ROLE", "PROJECT", "CREATED"], rows, "no API keys")
