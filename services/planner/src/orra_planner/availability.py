"""What the registry's versions and liveness change in a plan, after the strategy planned.

* **Down services.** A catalogue leaves out every service that has had no live instance
  for ``ORRA_SERVICE_DOWN_AFTER_S`` (:attr:`~orra_planner.registry.ServiceCatalog.down`),
  so no strategy plans a task for one. When some are down, :func:`account_for_down` asks
  the offline planner (deterministic, free) to plan the action with them put back: if that
  plan needs a down service, the action is refused (``not_actionable``) with a reason that
  names it (``PaymentService has had no live instance for 5 min ...``), instead of running
  a plan without it or refusing with an unrelated reason.
* **Versions.** :func:`~orra_planner.strategy.finalize` records in each task the version
  of its service that the plan was made against
  (:meth:`~orra_planner.registry.ServiceCatalog.versioned`); the dispatcher sends it with
  the task, and only a replica of that version runs it (a rolling upgrade does not change
  a planned task).
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import structlog

from orra_planner.strategy import Planned, PlanRejected, finalize

if TYPE_CHECKING:
    from orra_planner.strategy import Planner, PlanOutcome, PlanRequest

__all__ = ["account_for_down"]

log = structlog.get_logger("orra.planner")


async def account_for_down(
    outcome: PlanOutcome, request: PlanRequest, oracle: Planner, *, now: float | None = None
) -> PlanOutcome:
    """Refuse an action that needs a down service, naming it; otherwise keep ``outcome``.

    Args:
        outcome: What the strategy made of the action with the live services only.
        request: The request (its catalogue lists the down services).
        oracle: The planner asked whether the action needs a down service (offline).
        now: The time the reasons are computed at.
    """
    catalog = request.catalog
    if not catalog.down:
        return outcome
    full = dataclasses.replace(request, catalog=catalog.with_unavailable())
    try:
        guess = finalize(await oracle.plan(full), full)
    except Exception:
        log.warning("could not tell whether the action needs a down service", exc_info=True)
        return outcome
    if not isinstance(guess, Planned):
        return outcome
    needed = sorted({t.service for t in guess.plan.tasks if t.service in catalog.down})
    if not needed:
        return outcome
    reasons = tuple(
        f"{reason}: it is left out of new plans until an instance of it runs again"
        for reason in catalog.down_reasons(needed, now=now)
    )
    return PlanRejected(
        status="not_actionable",
        reasons=reasons,
        planner=outcome.planner,
        attempts=outcome.attempts,
        notes=outcome.notes,
    )
