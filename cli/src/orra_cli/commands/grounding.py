"""``orra grounding``: worked examples and constraints for the LLM planner.

The gateway stores them (``/groundings``, admin keys); this command reads the YAML file,
checks it with the rules the gateway and the planner use (:mod:`orra_events.grounding`)
so that a mistake is reported against the file, and sends the documents.
"""

from __future__ import annotations

from pathlib import Path  # noqa: TC003 - Typer reads the annotations at runtime
from typing import Annotated, Any
from urllib.parse import quote

import typer

from orra_cli.common import (
    ApiKeyOpt,
    GatewayOpt,
    JsonOpt,
    client_for,
    emit_json,
    handles_errors,
    items_of,
    out,
    print_rows,
)
from orra_cli.errors import CliError, UsageError

__all__ = ["grounding_app", "grounding_apply", "grounding_ls", "grounding_rm"]

grounding_app = typer.Typer(
    help="Domain grounding: worked examples and constraints for the LLM planner.",
    no_args_is_help=True,
)


@grounding_app.command("apply")
@handles_errors
def grounding_apply(
    file: Annotated[
        Path, typer.Option("-f", "--file", help="YAML file of use cases and constraints.")
    ],
    as_json: JsonOpt = False,
    gateway_url: GatewayOpt = None,
    api_key: ApiKeyOpt = None,
) -> None:
    """Store the groundings of a YAML file (a grounding of the same name is replaced)."""
    import msgspec

    from orra_events.errors import InvalidGrounding
    from orra_events.grounding import parse_groundings

    try:
        text = file.read_text()
    except OSError as exc:
        raise UsageError(f"cannot read {file}: {exc.strerror}") from None
    try:
        groundings = parse_groundings(text)
    except InvalidGrounding as exc:
        raise CliError(f"{file}: {exc}") from None
    documents = [msgspec.to_builtins(g) for g in groundings]
    with client_for(gateway_url, api_key) as client:
        answer = client.post_json("/groundings", {"groundings": documents})
    names = list(answer["applied"]) if isinstance(answer, dict) else []
    if as_json:
        emit_json({"applied": names})
        return
    for name in names:
        out().print(f"grounding applied: {name}")


def _count(value: Any) -> int:
    return len(value) if isinstance(value, list) else 0


@grounding_app.command("ls")
@handles_errors
def grounding_ls(
    as_json: JsonOpt = False, gateway_url: GatewayOpt = None, api_key: ApiKeyOpt = None
) -> None:
    """List the stored groundings."""
    with client_for(gateway_url, api_key) as client:
        items = items_of(client.get_json("/groundings"), "groundings")
    rows = [
        {
            "name": str(g.get("name", "")),
            "useCases": _count(g.get("use_cases")),
            "constraints": _count(g.get("constraints")),
            "strict": bool(g.get("strict", False)),
        }
        for g in items
    ]
    if as_json:
        emit_json({"items": rows})
        return
    print_rows(
        ["NAME", "USE CASES", "CONSTRAINTS", "STRICT"],
        [
            [str(r["name"]), str(r["useCases"]), str(r["constraints"]), str(r["strict"]).lower()]
            for r in rows
        ],
        "no groundings: add one with `orra grounding apply -f FILE`",
    )


@grounding_app.command("rm")
@handles_errors
def grounding_rm(
    name: Annotated[str, typer.Argument(help="The grounding to delete.")],
    as_json: JsonOpt = False,
    gateway_url: GatewayOpt = None,
    api_key: ApiKeyOpt = None,
) -> None:
    """Delete a grounding."""
    with client_for(gateway_url, api_key) as client:
        client.delete(
            f"/groundings/{quote(name, safe='')}",
            not_found=f"no grounding named {name!r}: see `orra grounding ls`",
        )
    if as_json:
        emit_json({"removed": name})
        return
    out().print(f"grounding removed: {name}")
