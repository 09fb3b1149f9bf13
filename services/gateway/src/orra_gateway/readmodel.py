"""The gateway's read model: orchestrations and services, from JetStream, in bounded memory.

Three parts, none of which keeps the whole history in memory:

* :class:`~orra_gateway.index.ListingIndex` answers ``GET /orchestrations``: one line per
  orchestration in pages saved to a key-value bucket; at start it loads the saved head and
  replays only the log after it (in the background: the gateway is ready at once).
* :class:`~orra_gateway.views.ViewCache` answers ``GET /orchestrations/{id}`` and everything
  that needs an orchestration's full view: a bounded cache of views folded from each
  orchestration's own history (``*.*.<id>``) on demand, kept live from the end of the log.
* The service registry (one registration per service name and version, and the last
  heartbeat of each) is folded whole by :class:`~orra_gateway.registryview.ServiceRegistryView`:
  it is small by construction.

Expired orchestrations. :class:`~orra_gateway.retention.Retention` removes the events of
orchestrations that ended long ago and keeps a compact summary of each
(:mod:`orra_gateway.summaries`): :meth:`ReadModel.find` answers it, as a view with
``expired: true``, when the log no longer has the orchestration's ``action.submitted``;
list lines whose ``action.submitted`` is older than the log's first event say
``expired: true``.

Two replicas read the same log and save the same index, so they give the same answers.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import time
from typing import TYPE_CHECKING, Any

import structlog
from nats.js.api import DeliverPolicy
from nats.js.errors import NotFoundError

from orra_events import (
    ActionSubmitted,
    DecodeError,
    decode,
)
from orra_events.bus import FOLLOW_HEARTBEAT_S
from orra_events.projection import (
    OrchestrationStatus,
    OrchestrationSummary,
    OrchestrationView,
)
from orra_events.registry import registry_problem
from orra_events.topology import NAME_PATTERN
from orra_gateway.errors import BrokerDown, FieldError, InvalidInput, NotFound
from orra_gateway.index import ListingIndex
from orra_gateway.logread import HistoryUnavailable
from orra_gateway.registryview import ServiceRegistryView, ServiceView
from orra_gateway.retention import Retention
from orra_gateway.search import matcher, search_words
from orra_gateway.summaries import SummaryStore
from orra_gateway.views import ViewCache

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from nats.aio.msg import Msg

    from orra_events import Bus
    from orra_gateway.index import IndexEntry
    from orra_gateway.settings import GatewaySettings

__all__ = ["ReadModel", "ServiceView", "decode_cursor", "encode_cursor"]

log = structlog.get_logger("orra.gateway.readmodel")


def encode_cursor(ordinal: int) -> str:
    """Opaque pagination cursor: list what comes before this position of the project's list."""
    return base64.urlsafe_b64encode(f"o{ordinal}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    """The position a cursor of :func:`encode_cursor` points at.

    Raises:
        InvalidInput: naming ``cursor`` when it is not one of ours.
    """
    invalid = InvalidInput(
        "invalid cursor", [FieldError("cursor", "not a cursor returned by this API")]
    )
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise invalid from None
    digits = raw[1:]
    if not raw.startswith("o") or not digits.isascii() or not digits.isdigit():
        raise invalid
    return int(digits)


class ReadModel:
    """Orchestrations (list index and full views) and services, kept up to date.

    Args:
        bus: Connected bus whose topology names the streams and buckets.
        settings: Cache sizes, checkpoint cadence and waits (``GatewaySettings``).
    """

    def __init__(self, bus: Bus, settings: GatewaySettings) -> None:
        self._bus = bus
        self._index_wait_s = settings.index_wait_s
        self.index = ListingIndex(
            bus,
            cache_pages=settings.index_cache_pages,
            snapshot_interval_s=settings.snapshot_interval_s,
            snapshot_events=settings.snapshot_events,
        )
        self.views = ViewCache(bus, capacity=settings.view_cache)
        self._services = ServiceRegistryView(settings.liveness)
        self._settings = settings
        self.summaries: SummaryStore | None = None
        self.retention: Retention | None = None
        self._first_seq = 0
        self._subs: list[Any] = []
        self.caught_up = asyncio.Event()
        """Set once the gateway can answer: views live, index loaded, registry read."""

    @property
    def applied_seq(self) -> int:
        """Stream sequence of the last event the live view feed delivered."""
        return self.views.applied_seq

    # --- lifecycle ------------------------------------------------------------------------

    async def start(self, timeout_s: float = 120.0) -> float:
        """Load the saved index, follow the log live, read the registry.

        The index replays the log after its saved head in the background: a list request
        waits until it has folded every event stored before the request (up to
        ``index_wait_s``); everything else is answered at once.

        Returns:
            Seconds the start took.
        """
        started = time.perf_counter()
        topology = self._bus.topology
        js = self._bus.js
        events_info = await js.stream_info(topology.events_stream)
        log_end = events_info.state.last_seq
        self._first_seq = events_info.state.first_seq
        settings = self._settings
        self.summaries = await SummaryStore.open(self._bus, settings.summary_max_age_s)
        self.retention = retention = Retention(
            self._bus,
            self.index,
            self.summaries,
            self.find,
            self.views.forget,
            max_age_s=settings.retention_max_age_s,
            max_bytes=settings.retention_max_bytes,
            interval_s=settings.retention_interval_s,
        )
        registry: list[tuple[str, str, asyncio.Event]] = []
        for stream, subjects in (
            (topology.services_stream, topology.registrations_filter()),
            (topology.heartbeats_stream, topology.heartbeats_filter()),
        ):
            loaded = asyncio.Event()
            if (await js.stream_info(stream)).state.messages == 0:
                loaded.set()
            registry.append((stream, subjects, loaded))
        async with asyncio.timeout(timeout_s):
            await self.index.start(log_end)
            await self.views.start(log_end)
            for stream, subjects, loaded in registry:
                self._subs.append(
                    await js.subscribe(
                        subjects,
                        stream=stream,
                        cb=self._registry_follower(loaded),
                        ordered_consumer=True,
                        idle_heartbeat=FOLLOW_HEARTBEAT_S,
                        deliver_policy=DeliverPolicy.ALL,
                        pending_msgs_limit=-1,
                        pending_bytes_limit=-1,
                    )
                )
            for _, _, loaded in registry:
                await loaded.wait()
        self.caught_up.set()
        retention.start()
        elapsed = time.perf_counter() - started
        log.info(
            "read model started",
            log_end=log_end,
            index_seq=self.index.applied_seq,
            index_caught_up=self.index.caught_up.is_set(),
            services=len(self._services),
            seconds=round(elapsed, 3),
        )
        return elapsed

    async def stop(self) -> None:
        """Stop following the streams; save the index."""
        if self.retention is not None:
            await self.retention.stop()
        for sub in self._subs:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
        self._subs.clear()
        await self.views.stop()
        await self.index.stop()

    # --- the registry -------------------------------------------------------------------------

    def _registry_follower(self, loaded: asyncio.Event) -> Callable[[Msg], Awaitable[None]]:
        async def on_message(msg: Msg) -> None:
            try:
                event = decode(msg.data)
            except DecodeError as exc:
                problem: str | None = f"{type(exc).__name__}: {exc}"
            else:
                problem = registry_problem(self._bus.topology, event, msg.subject)
                if problem is None:
                    problem = self._services.apply(event)
            if problem is not None:
                # The planner and the dispatcher park it; the gateway only leaves it out.
                log.warning("registry message skipped", subject=msg.subject, reason=problem)
            if msg.metadata.num_pending == 0:
                loaded.set()

        return on_message

    # --- orchestrations -----------------------------------------------------------------------

    def expect(self, orchestration_id: str) -> None:
        """Follow a brand-new orchestration live from its first event (a fresh submission)."""
        self.views.expect(orchestration_id)

    async def find(self, orchestration_id: str) -> OrchestrationView | None:
        """The view of an orchestration of any project, or ``None``.

        An orchestration whose events the retention removed has its summary as view
        (``expired`` true).

        Raises:
            BrokerDown: its history (or summary) could not be read.
        """
        if not NAME_PATTERN.fullmatch(orchestration_id):
            return None  # not an id we could have made: no subject carries it
        try:
            view = await self.views.get(orchestration_id)
        except HistoryUnavailable as exc:
            raise BrokerDown(str(exc)) from exc
        if view is not None or self.summaries is None:
            return view
        try:
            summary = await self.summaries.get(orchestration_id)
        except Exception as exc:
            raise BrokerDown(f"the summary of {orchestration_id} could not be read") from exc
        return summary.view() if summary is not None else None

    async def get(self, project: str, orchestration_id: str) -> OrchestrationView:
        """The view of one of ``project``'s orchestrations.

        Raises:
            NotFound: it does not exist, or belongs to another project.
            BrokerDown: its history could not be read from the log.
        """
        view = await self.find(orchestration_id)
        if view is None or view.project != project:
            raise NotFound(f"no orchestration {orchestration_id!r}")
        return view

    async def wait_for(
        self,
        orchestration_id: str,
        predicate: Callable[[OrchestrationView | None], bool],
        timeout_s: float,
    ) -> OrchestrationView | None:
        """Wait until ``predicate`` holds for the orchestration's view, or time out.

        Returns:
            The view as it is when the predicate held or time ran out (``None`` if no
            ``action.submitted`` of the orchestration has been seen yet).

        Raises:
            BrokerDown: its history could not be read from the log.
        """
        try:
            return await self.views.wait_for(orchestration_id, predicate, timeout_s)
        except HistoryUnavailable as exc:
            raise BrokerDown(str(exc)) from exc

    async def _index_current(self) -> None:
        """Wait until the index has folded every event stored before this call.

        Without the broker, what the live views have seen (the list is then served from
        memory, as current as the gateway can know).

        Raises:
            BrokerDown: the index is still catching up with the log after ``index_wait_s``.
        """
        target = self.views.applied_seq
        if self._bus.connected:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(1.0):
                    info = await self._bus.js.stream_info(self._bus.topology.events_stream)
                target = max(target, info.state.last_seq)
                self._first_seq = info.state.first_seq
        if not await self.index.wait_applied(target, self._index_wait_s):
            raise BrokerDown(
                "the orchestration list is still being built from the event log "
                f"(at sequence {self.index.applied_seq} of {target}); retry"
            )

    async def page(
        self,
        project: str,
        *,
        status: OrchestrationStatus | None = None,
        limit: int = 50,
        cursor: str | None = None,
        q: str | None = None,
    ) -> tuple[list[OrchestrationSummary], str | None]:
        """A page of ``project``'s orchestrations, newest first (in log order).

        ``q``: only those with these words in their id or action (:mod:`orra_gateway.search`).

        Returns:
            The page and the cursor of the next one (``None`` on the last page). A page can
            be shorter than ``limit`` and still have a next one.

        Raises:
            InvalidInput: the cursor is not one of ours.
            BadRequest: ``q`` is not a search (blank, too long, too many words).
            BrokerDown: the index is still being built, or a page could not be read.
        """
        match = matcher(search_words(q)) if q is not None else None
        before = decode_cursor(cursor) if cursor is not None else None
        await self._index_current()
        try:
            entries, next_before = await self.index.page(
                project, status=status, limit=limit, before=before, match=match
            )
            items = [await self._summary(entry) for entry in entries]
        except (BrokerDown, InvalidInput):
            raise
        except Exception as exc:
            raise BrokerDown(f"the orchestration list could not be read: {exc}") from exc
        return items, encode_cursor(next_before) if next_before is not None else None

    async def _summary(self, entry: IndexEntry) -> OrchestrationSummary:
        action = entry.action
        expired = entry.seq < self._first_seq
        if entry.action_truncated and not expired:
            try:
                msg = await self._bus.js.get_msg(self._bus.topology.events_stream, seq=entry.seq)
            except NotFoundError:  # removed meanwhile: the line's text is all there is
                expired = True
            else:
                event = decode(msg.data or b"")
                if isinstance(event, ActionSubmitted):
                    action = event.action
        state = entry.state
        return OrchestrationSummary(
            id=entry.id,
            action=action,
            status=state.status,
            task_count=state.task_count,
            created_at=entry.created_at,
            finished_at=state.finished_at,
            expired=expired,
        )

    async def compensation_failed(self, project: str) -> list[OrchestrationView]:
        """Views of ``project``'s orchestrations with an abandoned compensation, newest first.

        Raises:
            BrokerDown: the index is still being built, or a view could not be read.
        """
        await self._index_current()
        out: list[OrchestrationView] = []
        for orchestration_id, owner in reversed(self.index.compensation_failed):
            if owner != project:
                continue
            view = await self.find(orchestration_id)
            if view is not None and view.project == project:
                out.append(view)
        return out

    def services(self, project: str, *, now: float | None = None) -> list[ServiceView]:
        """``project``'s services by name, each with its health as of ``now``."""
        return self._services.services(project, now=now)
