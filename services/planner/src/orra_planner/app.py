"""App factory of the planner: wires the registry follower and the action handler to the bus."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import structlog

from orra_planner import lexicon
from orra_planner.handlers import ActionHandler
from orra_planner.llm.settings import LlmSettings
from orra_planner.offline import OfflinePlanner
from orra_planner.registry import Registry, RegistryFollower
from orra_planner.settings import PlannerSettings

if TYPE_CHECKING:
    from orra_events import Bus
    from orra_events.runtime import Stop
    from orra_planner.strategy import Planner

__all__ = ["CONSUMED", "DURABLE", "build_planner", "setup"]

DURABLE = "planner"
"""The durable consumer (and deliver group) that planner replicas share."""

CONSUMED = ("action.submitted",)
"""Event types the planner consumes."""

_STOP_GRACE_S = 10.0

log = structlog.get_logger("orra.planner")


async def build_planner(bus: Bus, settings: PlannerSettings) -> Planner:
    """The strategy the settings ask for: the LLM planner when configured, else offline.

    The LLM planner gets the plan cache (when ``ORRA_PLAN_CACHE`` is on) and the grounding
    store, both in JetStream KV so that replicas and restarts share them.
    """
    llm_settings = LlmSettings.from_env()
    if not (settings.llm_configured and llm_settings.enabled):
        if settings.llm_configured:
            log.warning("ORRA_LLM_* is incomplete (set a model); using the offline planner")
        return OfflinePlanner()
    # Imported only now: the OpenAI client is slow to import and offline planning needs none.
    from orra_planner.llm import GroundingStore, LlmPlanner, PlanCache
    from orra_planner.llm.strategy import LlmStrategy

    cache = await PlanCache.open(bus) if llm_settings.cache else None
    grounding = await GroundingStore.open(bus)
    log.info("LLM planning", base_url=llm_settings.base_url, model=llm_settings.model)
    return LlmStrategy(LlmPlanner(llm_settings, cache=cache, grounding=grounding))


async def setup(
    bus: Bus, settings: PlannerSettings | None = None, planner: Planner | None = None
) -> Stop:
    """Start the planner's consumers on ``bus``; return how to stop them.

    Args:
        bus: A connected bus whose streams exist.
        settings: The planner's settings; read from the environment by default.
        planner: The planning strategy; chosen from the settings by default.
    """
    settings = settings or PlannerSettings.from_env()
    strategy = planner or await build_planner(bus, settings)
    # The lexicon loads its tables on first use (about a second): before the first action.
    await asyncio.to_thread(lexicon.warm)
    follower = RegistryFollower(bus, Registry(settings.liveness))
    await follower.start(settings.registry_load_timeout_s)
    handler = ActionHandler(bus, follower, strategy, settings)
    await bus.consume(
        stream=bus.topology.events_stream,
        durable=bus.topology.consumer(DURABLE),
        filter_subjects=[bus.topology.all_of(t) for t in CONSUMED],
        handler=handler,
        ack_wait_s=settings.ack_wait_s,
        max_deliver=max(settings.max_attempts + 2, 5),
        retry_delay_s=settings.retry_delay_s,
        concurrency=settings.concurrency,
    )
    if not handler.wildcard_checks:
        log.warning(
            "nats-server older than 2.11: every action is looked up before it is planned",
            server=str(bus.nc.connected_server_version),
        )
    log.info("planner started", planner=strategy.name, concurrency=settings.concurrency)

    async def stop() -> None:
        handler.stopping = True
        # Actions being planned finish first (they need the registry and the strategy);
        # new deliveries are sent back meanwhile.
        # Not longer than a moment while the broker is unreachable: they cannot finish.
        if not await bus.wait_while_reachable(
            handler.wait_idle(_STOP_GRACE_S), _STOP_GRACE_S, what="actions being planned"
        ):
            log.warning("stopping with actions still being planned; they will be redelivered")
        await follower.stop()
        aclose = getattr(strategy, "aclose", None)
        if aclose is not None:
            await aclose()

    return stop
