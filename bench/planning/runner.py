"""Plan every corpus case in-process through a planner's public API, and score it.

Each domain's catalogue becomes a :class:`~orra_planner.registry.ServiceCatalog` (one
project per domain); each case becomes a :class:`~orra_planner.strategy.PlanRequest`
planned by the strategy and then :func:`~orra_planner.strategy.finalize`, exactly as the
planner service's handler does. What came back is read into an
:class:`~bench.planning.score.Observed`.

Fields that other branches add are read and passed only when they exist
(``ServiceSpec.examples``, ``PlanRequest.allow_partial``, ``PlanTask.serves``,
``Plan.uncovered``), so the benchmark measures the planner before and after them.
"""

from __future__ import annotations

import asyncio
import dataclasses
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from bench.planning.corpus import (
    CATEGORIES,
    SETS,
    Case,
    Domain,
    SetName,
    load_cases,
    load_domains,
)
from bench.planning.score import Observed, Scorecard, score
from orra_events import DataField
from orra_events.plan import find_references
from orra_events.registrations import definition_hash
from orra_planner.registry import ServiceCatalog, ServiceSpec
from orra_planner.strategy import PlanRejected, PlanRequest, finalize

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from orra_planner.strategy import Planner, PlanOutcome

__all__ = [
    "PlannerName",
    "PlannerUnavailableError",
    "catalog_for",
    "commit",
    "make_planner",
    "measure",
    "observe",
    "plan_cases",
    "request_for",
]

PlannerName = Literal["offline", "llm"]

_LLM_CONCURRENCY = 4


class PlannerUnavailableError(Exception):
    """The planner asked for cannot run here (the LLM is not configured)."""


def _fields(cls: type) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)}


def catalog_for(domain: Domain) -> ServiceCatalog:
    """The catalogue of ``domain``'s project, as the registry would hold it."""
    specs = []
    for service in domain.services:
        definition: dict[str, Any] = {
            "name": service.name,
            "description": service.description,
            "input_schema": service.input_schema,
            "output_schema": service.output_schema,
            "revertible": service.revertible,
            "version": "1",
            "kind": service.kind,
            "examples": tuple(service.examples),
        }
        specs.append(
            ServiceSpec(
                **definition,
                project=domain.name,
                schema_hash=definition_hash(**definition),
            )
        )
    return ServiceCatalog.of(domain.name, specs)


def request_for(case: Case, catalog: ServiceCatalog) -> PlanRequest:
    """The planning request of ``case`` (with ``allow_partial`` where requests have it)."""
    kwargs: dict[str, Any] = {
        "orchestration_id": f"bench-{case.id}",
        "action": case.action,
        "data": tuple(DataField(field=name, value=value) for name, value in case.data),
        "catalog": catalog,
    }
    if "allow_partial" in _fields(PlanRequest):
        kwargs["allow_partial"] = case.allow_partial
    return PlanRequest(**kwargs)


def observe(outcome: PlanOutcome) -> Observed:
    """What a planner's outcome says, in the scorer's terms."""
    if isinstance(outcome, PlanRejected):
        return Observed(status=outcome.status, reasons=tuple(outcome.reasons))
    plan = outcome.plan
    service_of = {task.id: task.service for task in plan.tasks}
    edges = []
    for task in plan.tasks:
        for _, ref in find_references(task.input):
            source = service_of.get(ref.task)
            if source is not None:
                edges.append((source, task.service, ref.field))
    uncovered = tuple(
        (str(getattr(item, "part", "")), str(getattr(item, "reason", "")))
        for item in getattr(plan, "uncovered", None) or ()
    )
    return Observed(
        status="planned",
        nodes=tuple(task.service for task in plan.tasks),
        edges=tuple(edges),
        uncovered=uncovered,
        serves=tuple(getattr(task, "serves", None) for task in plan.tasks),
    )


def make_planner(name: PlannerName) -> Planner:
    """The strategy called ``name``.

    Raises:
        PlannerUnavailableError: ``llm`` without ``ORRA_LLM_*`` configured.
    """
    if name == "offline":
        from orra_planner.offline import OfflinePlanner

        return OfflinePlanner()
    from orra_planner.settings import PlannerSettings

    unavailable = PlannerUnavailableError(
        "the LLM planner is not configured: set ORRA_LLM_MODEL and ORRA_LLM_BASE_URL "
        "or ORRA_LLM_API_KEY"
    )
    if not PlannerSettings.from_env().llm_configured:
        raise unavailable  # checked first: the LLM modules take seconds to import
    from orra_planner.llm import LlmPlanner, LlmSettings
    from orra_planner.llm.strategy import LlmStrategy

    settings = LlmSettings.from_env()
    if not settings.enabled:
        raise unavailable
    # No plan cache and no grounding: every case is planned by the model itself.
    return LlmStrategy(LlmPlanner(settings))


async def _plan_one(planner: Planner, case: Case, catalog: ServiceCatalog) -> Observed:
    request = request_for(case, catalog)
    try:
        outcome = finalize(await planner.plan(request), request)
    except Exception as exc:
        return Observed(status="error", reasons=(f"{type(exc).__name__}: {exc}",))
    return observe(outcome)


async def plan_cases(
    planner: Planner, cases: Sequence[Case], domains: Mapping[str, Domain]
) -> dict[str, Observed]:
    """Plan every case (the offline planner one at a time, the LLM a few at a time)."""
    catalogs = {name: catalog_for(domain) for name, domain in domains.items()}
    limit = asyncio.Semaphore(1 if planner.name == "offline" else _LLM_CONCURRENCY)

    async def one(case: Case) -> tuple[str, Observed]:
        async with limit:
            return case.id, await _plan_one(planner, case, catalogs[case.domain])

    return dict(await asyncio.gather(*(one(case) for case in cases)))


def commit() -> str:
    """The commit measured (short hash, ``+dirty`` when the work tree has changes)."""
    cwd = Path(__file__).resolve().parents[2]
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"],
            cwd=cwd,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=cwd,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


def measure(
    planner_name: PlannerName, set_names: Sequence[SetName] = tuple(SETS)
) -> dict[str, Any]:
    """Plan and score ``set_names`` with one planner.

    Returns:
        ``{"planner", "seconds", "sets": {set: scorecard dict}, "cards": {set: Scorecard}}``
        where ``all`` is added when more than one set is measured.

    Raises:
        PlannerUnavailableError: the planner cannot run here.
    """
    planner = make_planner(planner_name)
    domains = load_domains()
    cases = {name: load_cases(name) for name in set_names}
    everything = [case for group in cases.values() for case in group]
    started = time.perf_counter()
    observed = asyncio.run(plan_cases(planner, everything, domains))
    seconds = time.perf_counter() - started
    cards: dict[str, Scorecard] = {
        name: score(group, observed, CATEGORIES) for name, group in cases.items()
    }
    if len(cases) > 1:
        cards["all"] = score(everything, observed, CATEGORIES)
    return {
        "planner": planner_name,
        "seconds": seconds,
        "cases": len(everything),
        "sets": {name: card.to_dict() for name, card in cards.items()},
        "cards": cards,
    }
