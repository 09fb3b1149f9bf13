"""``orra grounding``: worked examples and constraints for the LLM planner."""

from __future__ import annotations

import asyncio
from pathlib import Path  # noqa: TC003 - Typer reads the annotations at runtime
from typing import Annotated

import typer

from orra_cli.common import (
    JsonOpt,
    emit_json,
    handles_errors,
    out,
    print_rows,
    resolve_settings,
    with_bus,
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
) -> None:
    """Store the groundings of a YAML file (a grounding of the same name is replaced)."""
    from orra_planner.llm.grounding import GroundingError, apply_grounding

    try:
        text = file.read_text()
    except OSError as exc:
        raise UsageError(f"cannot read {file}: {exc.strerror}") from None
    settings = resolve_settings(None, None)
    try:
        applied = asyncio.run(with_bus(settings, lambda bus: apply_grounding(bus, text)))
    except GroundingError as exc:
        raise CliError(f"{file}: {exc}") from None
    names = [g.name for g in applied]
    if as_json:
        emit_json({"applied": names})
        return
    for name in names:
        out().print(f"grounding applied: {name}")


@grounding_app.command("ls")
@handles_errors
def grounding_ls(as_json: JsonOpt = False) -> None:
    """List the stored groundings."""
    from orra_planner.llm.grounding import list_groundings

    items = asyncio.run(with_bus(resolve_settings(None, None), list_groundings))
    rows = [
        {
            "name": g.name,
            "useCases": len(g.use_cases),
            "constraints": len(g.constraints),
            "strict": g.strict,
        }
        for g in items
    ]
    if as_json:
        emit_json({"items": rows})
        return
    print_rows(
        ["NAME", "USE CASES", "CONSTRAINTS", "STRICT"],
        [
            [r["name"], str(r["useCases"]), str(r["constraints"]), str(r["strict"]).lower()]
            for r in rows
        ],
        "no groundings: add one with `orra grounding apply -f FILE`",
    )


@grounding_app.command("rm")
@handles_errors
def grounding_rm(
    name: Annotated[str, typer.Argument(help="The grounding to delete.")],
    as_json: JsonOpt = False,
) -> None:
    """Delete a grounding."""
    from orra_planner.llm.grounding import remove_grounding

    existed = asyncio.run(
        with_bus(resolve_settings(None, None), lambda bus: remove_grounding(bus, name))
    )
    if not existed:
        raise CliError(f"no grounding named {name!r}: see `orra grounding ls`")
    if as_json:
        emit_json({"removed": name})
        return
    out().print(f"grounding removed: {name}")
