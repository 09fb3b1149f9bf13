"""``orra webhooks``: project webhooks and their signing secret."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

import typer

from orra_cli.common import (
    ApiKeyOpt,
    GatewayOpt,
    JsonOpt,
    cell_text,
    check_id,
    check_webhook,
    client_for,
    emit_json,
    handles_errors,
    items_of,
    note,
    out,
    print_rows,
    utc_time,
)
from orra_cli.errors import CliError
from orra_cli.render import parse_time, relative_time
from orra_events import PREVIOUS_SECRET_GRACE_S

__all__ = ["webhooks_add", "webhooks_app", "webhooks_ls", "webhooks_rm", "webhooks_secret"]

webhooks_app = typer.Typer(
    help="Webhooks that receive orchestration results.", no_args_is_help=True
)


@webhooks_app.command("add")
@handles_errors
def webhooks_add(
    url: Annotated[str, typer.Argument(help="URL that receives orchestration results.")],
    as_json: JsonOpt = False,
    gateway_url: GatewayOpt = None,
    api_key: ApiKeyOpt = None,
) -> None:
    """Register a webhook URL for the project."""
    check_webhook(url, "URL")
    with client_for(gateway_url, api_key) as client:
        payload = client.post_json("/webhooks", {"url": url})
    if as_json:
        emit_json(payload if isinstance(payload, dict) else {"url": url})
        return
    out().print(f"webhook added: {url}")
    if isinstance(payload, dict) and payload.get("secret"):
        note(f"signing secret: {payload['secret']}")


@webhooks_app.command("ls")
@handles_errors
def webhooks_ls(
    as_json: JsonOpt = False, gateway_url: GatewayOpt = None, api_key: ApiKeyOpt = None
) -> None:
    """List the project's webhooks."""
    with client_for(gateway_url, api_key) as client:
        items = items_of(client.get_json("/webhooks"), "webhooks")
    if as_json:
        emit_json({"items": items})
        return
    rows = [
        [cell_text(w, "url"), cell_text(w, "id"), relative_time(w.get("createdAt"))] for w in items
    ]
    print_rows(["URL", "ID", "CREATED"], rows, "no webhooks: add one with `orra webhooks add URL`")


@webhooks_app.command("rm")
@handles_errors
def webhooks_rm(
    webhook_id: Annotated[
        str, typer.Argument(metavar="ID", help="The webhook's id, from `orra webhooks ls`.")
    ],
    as_json: JsonOpt = False,
    gateway_url: GatewayOpt = None,
    api_key: ApiKeyOpt = None,
) -> None:
    """Remove a webhook: the project's results are no longer delivered to it."""
    check_id(webhook_id, "a webhook", "orra webhooks ls")
    with client_for(gateway_url, api_key) as client:
        client.delete(
            f"/webhooks/{quote(webhook_id, safe='')}",
            not_found=f"no webhook {webhook_id}: list them with `orra webhooks ls`",
        )
    if as_json:
        emit_json({"removed": webhook_id})
        return
    out().print(f"webhook removed: {webhook_id}")


@webhooks_app.command("secret")
@handles_errors
def webhooks_secret(
    rotate: Annotated[
        bool,
        typer.Option(
            "--rotate",
            help="Replace the secret; the previous one keeps signing deliveries for "
            f"{PREVIOUS_SECRET_GRACE_S / 3600:g} h.",
        ),
    ] = False,
    as_json: JsonOpt = False,
    gateway_url: GatewayOpt = None,
    api_key: ApiKeyOpt = None,
) -> None:
    """Print the secret (whsec_...) that signs the project's webhook deliveries."""
    with client_for(gateway_url, api_key) as client:
        if rotate:
            payload = client.post_json("/webhooks/secret/rotate")
        else:
            payload = client.get_json("/webhooks/secret")
    secret = payload.get("secret") if isinstance(payload, dict) else None
    if not isinstance(payload, dict) or not secret:
        raise CliError(
            "the gateway answered without a webhook secret: is ORRA_GATEWAY_URL the Orra "
            "gateway, and is it up to date?"
        )
    if as_json:
        emit_json(payload)
        return
    out().print(str(secret))
    created = parse_time(payload.get("createdAt"))
    note(f"created {utc_time(created)} ({relative_time(created)})")
    if rotate:
        note(
            "the previous secret keeps signing deliveries for "
            f"{PREVIOUS_SECRET_GRACE_S / 3600:g} h"
            + (
                f" (until {utc_time(created + PREVIOUS_SECRET_GRACE_S)})"
                if created is not None
                else ""
            )
            + ": give your webhook receivers the new one before then",
            "yellow",
        )
    else:
        note("verify deliveries with it (Standard Webhooks); keep it secret")
