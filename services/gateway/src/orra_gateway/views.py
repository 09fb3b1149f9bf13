"""Full orchestration views: a bounded cache, filled from the event log on demand, kept live.

``GET /orchestrations/{id}`` needs an orchestration's whole view; keeping every view in
memory would make the gateway grow with history. :class:`ViewCache` keeps at most
``capacity`` views (least recently used out first, except those a request is waiting on).
A view that is not cached is folded from the orchestration's own history
(``*.*.<id>``, see :func:`~orra_gateway.logread.read_history`); cached views follow the log
live through one :class:`~orra_gateway.logread.LogFollower` that starts at the end of the
log.

No event is lost or applied twice while a view loads: the live feed buffers the events of
an orchestration being loaded, and applies, after the history, those of the buffer with a
higher stream sequence than the history's last.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from typing import TYPE_CHECKING

import structlog

from orra_events import ActionSubmitted, DecodeError, decode
from orra_events.projection import OrchestrationView, apply
from orra_gateway.logread import LogFollower, position, read_history

if TYPE_CHECKING:
    from collections.abc import Callable

    from nats.aio.msg import Msg

    from orra_events import Bus, Event

__all__ = ["ViewCache"]

log = structlog.get_logger("orra.gateway.views")


class _Slot:
    """One cached orchestration: its view and the last stream sequence folded into it."""

    __slots__ = ("pins", "seq", "submitted", "view", "waiters")

    def __init__(self) -> None:
        self.view: OrchestrationView | None = None
        self.seq = 0
        self.submitted = False
        self.pins = 0
        self.waiters: set[asyncio.Event] = set()


class _Loading:
    """A view being read from the log, and the live events that arrived meanwhile."""

    __slots__ = ("buffer", "done", "error")

    def __init__(self) -> None:
        self.buffer: list[tuple[int, Event]] = []
        self.done = asyncio.Event()
        self.error: BaseException | None = None


class ViewCache:
    """The full views of recently used orchestrations, kept up to date.

    Args:
        bus: Connected bus whose topology names the events stream.
        capacity: Views kept in memory at most (views a request waits on are kept too).
        load_timeout_s: How long reading one orchestration's history may take.
    """

    def __init__(self, bus: Bus, *, capacity: int, load_timeout_s: float = 10.0) -> None:
        self._bus = bus
        self._capacity = max(1, capacity)
        self._load_timeout_s = load_timeout_s
        self._slots: OrderedDict[str, _Slot] = OrderedDict()
        self._loading: dict[str, _Loading] = {}
        self._follower: LogFollower | None = None
        self.applied_seq = 0
        """Stream sequence of the last event the live feed delivered."""
        self.loads = 0
        self.undecodable = 0

    def __len__(self) -> int:
        return len(self._slots)

    # --- lifecycle ------------------------------------------------------------------------

    async def start(self, after_seq: int) -> None:
        """Follow the log live from the event after ``after_seq`` (the end of the log now)."""
        self.applied_seq = after_seq
        self._follower = LogFollower(self._bus, self._on_event)
        await self._follower.start(after_seq + 1)

    async def stop(self) -> None:
        """Stop following the log."""
        if self._follower is not None:
            await self._follower.stop()
            self._follower = None

    # --- the live feed ----------------------------------------------------------------------

    def _decode(self, msg: Msg) -> Event | None:
        try:
            return decode(msg.data)
        except DecodeError as exc:
            self.undecodable += 1
            log.warning("undecodable event skipped", subject=msg.subject, error=str(exc))
            return None

    async def _on_event(self, msg: Msg) -> None:
        seq, _ = position(msg)
        self.applied_seq = seq
        orchestration_id = msg.subject.rpartition(".")[2]
        slot = self._slots.get(orchestration_id)
        if slot is None:
            loading = self._loading.get(orchestration_id)
            if loading is not None and (event := self._decode(msg)) is not None:
                loading.buffer.append((seq, event))
            return
        if seq <= slot.seq:
            return
        event = self._decode(msg)
        if event is not None:
            _fold(slot, seq, event)
            for waiter in slot.waiters:
                waiter.set()

    # --- loading ------------------------------------------------------------------------------

    def expect(self, orchestration_id: str) -> None:
        """Make room for a brand-new orchestration, whose events all come live.

        Only for an id nobody used before (a fresh submission): an orchestration that may
        have events in the log already must be loaded instead.
        """
        if orchestration_id not in self._slots and orchestration_id not in self._loading:
            self._slots[orchestration_id] = _Slot()
            self._shrink()

    async def _ensure(self, orchestration_id: str) -> _Slot:
        while True:
            slot = self._slots.get(orchestration_id)
            if slot is not None:
                self._slots.move_to_end(orchestration_id)
                return slot
            loading = self._loading.get(orchestration_id)
            if loading is None:
                return await self._load(orchestration_id)
            await loading.done.wait()
            if loading.error is not None:
                raise loading.error

    async def _load(self, orchestration_id: str) -> _Slot:
        loading = _Loading()
        self._loading[orchestration_id] = loading
        try:
            msgs = await read_history(self._bus, orchestration_id, timeout_s=self._load_timeout_s)
        except BaseException as exc:
            loading.error = exc
            del self._loading[orchestration_id]
            loading.done.set()
            raise
        slot = _Slot()
        for msg in msgs:
            event = self._decode(msg)
            if event is not None:
                _fold(slot, position(msg)[0], event)
        for seq, event in loading.buffer:
            if seq > slot.seq:
                _fold(slot, seq, event)
        del self._loading[orchestration_id]
        self._slots[orchestration_id] = slot
        self.loads += 1
        loading.done.set()
        self._shrink()
        return slot

    def _shrink(self) -> None:
        excess = len(self._slots) - self._capacity
        if excess <= 0:
            return
        victims = []
        for key, slot in self._slots.items():
            if slot.pins == 0:
                victims.append(key)
                if len(victims) == excess:
                    break
        for key in victims:
            del self._slots[key]

    def forget(self, orchestration_ids: list[str]) -> None:
        """Drop the cached views of orchestrations whose events were removed from the log.

        Views a request is waiting on stay until it is done.
        """
        for orchestration_id in orchestration_ids:
            slot = self._slots.get(orchestration_id)
            if slot is not None and slot.pins == 0:
                del self._slots[orchestration_id]

    # --- queries --------------------------------------------------------------------------------

    async def get(self, orchestration_id: str) -> OrchestrationView | None:
        """The orchestration's view, or ``None`` if the log has no ``action.submitted`` for it.

        Raises:
            HistoryUnavailable: it is not cached and the broker did not deliver its history.
        """
        slot = await self._ensure(orchestration_id)
        return slot.view if slot.submitted else None

    async def wait_for(
        self,
        orchestration_id: str,
        predicate: Callable[[OrchestrationView | None], bool],
        timeout_s: float,
    ) -> OrchestrationView | None:
        """Wait until ``predicate`` holds for the orchestration's view, or time out.

        Returns:
            The view when the predicate held or time ran out (``None`` while no
            ``action.submitted`` of it has been seen).

        Raises:
            HistoryUnavailable: it is not cached and the broker did not deliver its history.
        """
        slot = await self._ensure(orchestration_id)
        slot.pins += 1
        waiter = asyncio.Event()
        slot.waiters.add(waiter)
        try:
            async with asyncio.timeout(timeout_s):
                while not predicate(slot.view if slot.submitted else None):
                    await waiter.wait()
                    waiter.clear()
        except TimeoutError:
            pass
        finally:
            slot.waiters.discard(waiter)
            slot.pins -= 1
        return slot.view if slot.submitted else None


def _fold(slot: _Slot, seq: int, event: Event) -> None:
    view = apply(slot.view, event)
    if view is not None:
        slot.view = view
        if isinstance(event, ActionSubmitted):
            slot.submitted = True
    slot.seq = seq
