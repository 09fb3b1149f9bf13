"""The dispatcher's timers: arm and fire them, sweep the stored snapshots, resume pauses.

Deadlines are absolute times in the snapshots: a timer is an event-loop callback that puts a
:class:`~orra_dispatcher.domain.Timer` in its orchestration's mailbox when it is due. The
periodic sweep re-arms every stored snapshot's timers (a dead replica's are taken over) and
rebuilds the index of orchestrations paused per service, which ``health`` inputs resume.
"""

from __future__ import annotations

import asyncio
import time

import structlog

from orra_dispatcher.domain import ORCHESTRATION_TIMER, Orchestration, Timer, timers_of
from orra_dispatcher.handlers.core import Core

__all__ = ["Timers"]

log = structlog.get_logger("orra.dispatcher")


class Timers(Core):
    """Timers, the sweep of stored snapshots, and the paused-orchestration index."""

    async def sweep(self) -> int:
        """Scan stored snapshots: refresh the cache, arm missing timers; return the count."""
        count = 0
        live: set[str] = set()
        paused: dict[str, set[str]] = {}
        async for state, revision in self.store.running():
            count += 1
            live.add(state.id)
            cached = self._cache.get(state.id)
            busy = state.id in self._boxes or state.id in self._lines
            if not busy and (cached is None or cached[1] < revision):
                self._cache[state.id] = (state, revision)
            for timer in timers_of(state):
                if (state.id, timer.task_id) not in self._timers:
                    self._arm(timer)
            if state.paused_since is not None and state.status == "running":
                waiting = {state.service_of(t) for t in state.paused_tasks}
                for service in waiting:
                    paused.setdefault(service, set()).add(state.id)
                if waiting - self.registry.unhealthy:
                    # A service it waits for is back (this process may not have seen it go).
                    self._poke(state.id)
        self._paused = paused
        for orchestration_id in list(self._cache):
            if (
                orchestration_id not in live
                and orchestration_id not in self._boxes
                and orchestration_id not in self._lines
            ):
                del self._cache[orchestration_id]
        return count

    def _on_service_healthy(self, service: str) -> None:
        for orchestration_id in list(self._paused.get(service, ())):
            self._poke(orchestration_id)

    def _poke(self, orchestration_id: str) -> None:
        """Ask an orchestration to dispatch the tasks that waited for a service."""
        if self._stopping:
            return
        self._enqueue(
            orchestration_id,
            Timer(
                orchestration_id=orchestration_id,
                task_id=ORCHESTRATION_TIMER,
                kind="health",
                attempt=0,
                due_at=time.time(),
            ),
        )

    def _index_paused(self, state: Orchestration) -> None:
        """Keep the service → paused orchestrations index in step with a stored state."""
        waiting = (
            {state.service_of(t) for t in state.paused_tasks}
            if state.paused_since is not None and state.status == "running"
            else set()
        )
        for service, ids in list(self._paused.items()):
            if service not in waiting and state.id in ids:
                ids.discard(state.id)
                if not ids:
                    del self._paused[service]
        for service in waiting:
            self._paused.setdefault(service, set()).add(state.id)

    async def _sweep_loop(self) -> None:
        while not self._stopping:
            await asyncio.sleep(self.settings.sweep_interval_s)
            try:
                await self.sweep()
            except Exception:
                log.warning("sweep of stored snapshots failed", exc_info=True)

    def _arm(self, timer: Timer) -> None:
        if self._stopping:
            return
        key = (timer.orchestration_id, timer.task_id)
        previous = self._timers.pop(key, None)
        if previous is not None:
            previous[0].cancel()
        delay = max(0.0, timer.due_at - time.time())
        handle = asyncio.get_running_loop().call_later(delay, self._fire, timer)
        self._timers[key] = (handle, timer)

    def _fire(self, timer: Timer) -> None:
        key = (timer.orchestration_id, timer.task_id)
        entry = self._timers.get(key)
        if entry is not None and entry[1] is timer:
            del self._timers[key]
        if not self._stopping:
            self._enqueue(timer.orchestration_id, timer)
