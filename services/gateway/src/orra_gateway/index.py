"""The list index: one line per orchestration, in pages saved to a key-value bucket.

``GET /orchestrations`` lists a project's orchestrations newest first. The index behind it
numbers each project's orchestrations in log order of their ``action.submitted`` (the
*ordinal*: 0, 1, 2, ...) and keeps their list lines in pages of :data:`PAGE_SIZE`
consecutive ordinals. A line holds what the list shows: id, action (its first
:data:`ACTION_CHARS` characters; a longer one is read from the log when listed), creation
time and the :class:`~orra_events.projection.ListingState` folded from the orchestration's
status events (pure: :func:`~orra_events.projection.advance_listing`).

Memory is bounded by settings, not by history (:mod:`orra_gateway.indexpages`).

Persistence: a head and pages in the ``gateway_index`` bucket (:mod:`orra_gateway.indexstore`).
A checkpoint writes the changed pages, then the head. Every write is a compare-and-set on
the key's revision and never replaces a newer version (page) or a head that covers more,
so replicas and a process killed between two writes leave a consistent state: pages may be
ahead of the head, never behind it. At start the gateway reads the head and replays the
log after the sequence it covers; an event already in a page (its sequence is not above
the page's version) is skipped, so nothing is applied twice. Without a head (first start
on an existing log), the index folds the log from the beginning in the background; a head
that cannot be used (unreadable, or ahead of the log) is replaced by a new generation built
the same way. The gateway answers meanwhile; only list requests wait, up to
``index_wait_s``, for the index to have folded every event stored before them.

Lines are in log order, which is the order the orchestrations were created in as the
broker saw them (``createdAt`` is the submitting gateway's clock). A line whose
orchestration ended never changes again (see :class:`~orra_events.projection.ListingState`).

Removed events (:mod:`orra_gateway.retention`). The retention never removes an event that
the saved head does not cover, so a process that restarts from the head finds every event
it needs. A replica that lags behind the saved head may find that the events after its
position are gone (a gap in the stream sequences it reads): it then loads the saved head
again, which covers them, and goes on from there. A gap that no head covers (the index was
first built, or rebuilt, on a log whose oldest events had already expired) is accepted:
those orchestrations have no list line, only their summaries.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from typing import TYPE_CHECKING, Any

import msgspec
import structlog

from orra_events import ActionSubmitted, DecodeError, TaskCompensationAbandoned, decode
from orra_events.projection import (
    LISTING_EVENT_TYPES,
    OrchestrationStatus,
    advance_listing,
    is_terminal,
)
from orra_gateway.indexpages import PageCache
from orra_gateway.indexstore import (
    ACTION_CHARS,
    HEAD_KEY,
    INDEX_BUCKET,
    PAGE_SIZE,
    HeadRecord,
    IndexBucket,
    IndexCorrupt,
    IndexEntry,
    Page,
    PageRecord,
    head_record,
)
from orra_gateway.logread import LogFollower, SeqWaiters, position

if TYPE_CHECKING:
    from collections.abc import Callable

    from nats.aio.msg import Msg

    from orra_events import Bus

__all__ = [
    "ACTION_CHARS",
    "HEAD_KEY",
    "INDEX_BUCKET",
    "PAGE_SIZE",
    "HeadRecord",
    "IndexEntry",
    "ListingIndex",
    "PageRecord",
]

log = structlog.get_logger("orra.gateway.index")


class ListingIndex:
    """Every orchestration's list line, by project, newest first; saved as it goes.

    Args:
        bus: Connected bus whose topology names the events stream and the bucket.
        cache_pages: Pages kept in memory besides those that must stay.
        snapshot_interval_s: Seconds between checkpoints (when something changed).
        snapshot_events: Events after which a checkpoint comes sooner.
    """

    def __init__(
        self,
        bus: Bus,
        *,
        cache_pages: int = 32,
        snapshot_interval_s: float = 5.0,
        snapshot_events: int = 20_000,
    ) -> None:
        self._bus = bus
        self._interval_s = snapshot_interval_s
        self._snapshot_events = snapshot_events
        self._prefix_len = len(bus.topology.subject("x", "x")) - 3
        self._store: IndexBucket | None = None
        self._generation = ""
        self._replaces: str | None = None
        self._cache = PageCache(
            self._fetch_page, lambda project: self._counts.get(project, 0), cache_pages
        )
        self._pages = self._cache.pages
        self._load_page = self._cache.load
        self._shrink = self._cache.shrink
        self._entry = self._cache.entry
        self._counts: dict[str, int] = {}
        self._live: dict[str, tuple[str, int]] = {}
        self._dirty = self._cache.dirty
        self._flushing = self._cache.flushing
        self._comp_failed: dict[str, str] = {}
        self._follower: LogFollower | None = None
        self._epoch = 0
        self._rebuilding = False
        self._gap_accepted = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._checkpointer: asyncio.Task[None] | None = None
        self._checkpoint_lock = asyncio.Lock()
        self._seq_waiters = SeqWaiters()
        self._saved_seq = 0
        self._last_save = time.monotonic()
        self._events_since = 0
        self._started_at = 0.0
        self._start_seq = 0
        self.applied_seq = 0
        """Stream sequence of the last event folded (or skipped) by the index."""
        self.target_seq = 0
        """The end of the log when the index started; it has caught up once past it."""
        self.caught_up = asyncio.Event()
        self.undecodable = 0

    # --- lifecycle ------------------------------------------------------------------------

    async def start(self, log_end: int) -> None:
        """Load the saved index and follow the log from the sequence it covers.

        Returns before the index has caught up with the log (see :attr:`caught_up`).

        Args:
            log_end: The last stream sequence of the events stream now.
        """
        self._started_at = time.perf_counter()
        self._store = IndexBucket(await self._bus.kv(INDEX_BUCKET))
        head, _, present = await self._read_head()
        if head is not None and head.covers_seq > log_end:
            log.warning(
                "saved list index is ahead of the event log; rebuilding it",
                covers_seq=head.covers_seq,
                log_end=log_end,
            )
            self._replaces, head = head.generation, None
        elif head is None and present:
            log.warning("saved list index is unreadable; rebuilding it")
        covers = 0
        if head is not None:
            try:
                await self._adopt(head)
                covers = head.covers_seq
            except IndexCorrupt as exc:
                log.error("saved list index is corrupt; rebuilding it", error=str(exc))
                self._clear()
                self._replaces = head.generation
        if not covers:
            self._generation = secrets.token_hex(4)
        self.target_seq = log_end
        await self._subscribe(covers)
        self._checkpointer = asyncio.create_task(self._run_checkpoints())
        log.info(
            "list index loaded",
            generation=self._generation,
            covers_seq=covers,
            log_end=log_end,
            to_replay=max(0, log_end - covers),
            pages_in_memory=len(self._pages),
        )

    async def _adopt(self, head: HeadRecord) -> None:
        self._generation = head.generation
        self._replaces = head.replaces
        self._counts = dict(head.projects)
        self._comp_failed = dict(head.compensation_failed)
        keys = [(p, n) for p, numbers in head.active.items() for n in numbers]
        pages = await asyncio.gather(*(self._load_page(p, n) for p, n in keys))
        for page in pages:
            count = self._counts.get(page.project, 0)
            for pos, entry in enumerate(page.entries):
                ordinal = page.number * PAGE_SIZE + pos
                # Lines past the head's count come from a page saved after it: the replay
                # of their action.submitted finds them there.
                if ordinal < count and not entry.state.terminal:
                    self._live[entry.id] = (page.project, ordinal)

    def _clear(self) -> None:
        self._pages.clear()
        self._counts.clear()
        self._live.clear()
        self._dirty.clear()
        self._comp_failed.clear()

    async def _subscribe(self, covers: int) -> None:
        self._epoch += 1
        epoch = self._epoch
        self.applied_seq = self._saved_seq = self._start_seq = covers
        self._events_since = 0
        if covers >= self.target_seq:
            self._mark_caught_up()

        async def on_event(msg: Msg) -> None:
            if epoch == self._epoch and not self._rebuilding:
                await self._on_event(msg)

        self._follower = LogFollower(self._bus, on_event)
        await self._follower.start(covers + 1)

    async def stop(self) -> None:
        """Stop following the log and save what changed (best effort, a few seconds)."""
        if self._checkpointer is not None:
            self._checkpointer.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._checkpointer
            self._checkpointer = None
        for task in list(self._tasks):
            task.cancel()
        if self._follower is not None:
            await self._follower.stop()
            self._follower = None
        if self._store is not None and not self._rebuilding:
            if not self._bus.connected:
                # Never wait at shutdown for a broker that is gone.
                log.warning("list index not saved at stop: the broker is unavailable")
                return
            try:
                async with asyncio.timeout(5.0):
                    await self.checkpoint()
            except Exception as exc:  # noqa: BLE001 - the next start replays more, that is all
                log.warning("list index not saved at stop", error=repr(exc))

    # --- folding ----------------------------------------------------------------------------

    def _decode(self, msg: Msg) -> Any:
        try:
            return decode(msg.data)
        except DecodeError as exc:
            self.undecodable += 1
            log.warning("undecodable event skipped", subject=msg.subject, error=str(exc))
            return None

    async def _on_event(self, msg: Msg) -> None:
        seq, pending = position(msg)
        if seq > self.applied_seq + 1 and seq - 1 > self._gap_accepted:
            # Events after our position were removed by the retention: see the module doc.
            self._start_rebuild(f"events {self.applied_seq + 1} to {seq - 1} are gone", gap=seq)
            return
        event_type, _, orchestration_id = msg.subject[self._prefix_len :].rpartition(".")
        try:
            if event_type == ActionSubmitted.TYPE:
                await self._on_submitted(seq, msg)
            elif event_type in LISTING_EVENT_TYPES:
                if orchestration_id in self._live:
                    await self._on_listing_event(seq, orchestration_id, msg)
            elif event_type == TaskCompensationAbandoned.TYPE:
                event = self._decode(msg)
                if isinstance(event, TaskCompensationAbandoned):
                    self._comp_failed.pop(orchestration_id, None)
                    self._comp_failed[orchestration_id] = event.project
        except IndexCorrupt as exc:
            self._start_rebuild(str(exc))
            return
        self.applied_seq = seq
        self._events_since += 1
        if not self.caught_up.is_set() and (seq >= self.target_seq or pending == 0):
            self._mark_caught_up()
        self._seq_waiters.applied(seq)

    def _mark_caught_up(self) -> None:
        self.caught_up.set()
        log.info(
            "list index caught up with the event log",
            seq=self.applied_seq,
            replayed=max(0, self.applied_seq - self._start_seq),
            seconds=round(time.perf_counter() - self._started_at, 3),
            orchestrations=self.count(),
        )

    async def _on_submitted(self, seq: int, msg: Msg) -> None:
        event = self._decode(msg)
        if not isinstance(event, ActionSubmitted) or event.orchestration_id in self._live:
            return  # undecodable, or a repeated submission of an orchestration in progress
        project = event.project
        ordinal = self._counts.get(project, 0)
        page = await self._page_for_fold(project, ordinal // PAGE_SIZE)
        # Nothing changed before this point, so a checkpoint taken while the page loaded
        # saw the state before this event.
        pos = ordinal % PAGE_SIZE
        self._counts[project] = ordinal + 1
        oid = event.orchestration_id
        if page.version >= seq:  # a page saved after the head: the line is there already
            if pos >= len(page.entries) or page.entries[pos].id != oid:
                raise IndexCorrupt(f"page {project}/{page.number} lacks {oid} at {pos}")
            if not page.entries[pos].state.terminal:
                self._live[oid] = (project, ordinal)
            return
        if pos != len(page.entries):
            raise IndexCorrupt(f"page {project}/{page.number} has {len(page.entries)} lines")
        action = event.action
        page.entries.append(
            IndexEntry(
                id=oid,
                seq=seq,
                created_at=event.at,
                action=action[:ACTION_CHARS],
                action_truncated=len(action) > ACTION_CHARS,
            )
        )
        page.version = seq
        page.active += 1
        self._dirty.add(page.key)
        self._live[oid] = (project, ordinal)

    async def _on_listing_event(self, seq: int, orchestration_id: str, msg: Msg) -> None:
        project, ordinal = self._live[orchestration_id]
        page = await self._page_for_fold(project, ordinal // PAGE_SIZE)
        if page.version >= seq:
            return
        pos = ordinal % PAGE_SIZE
        if pos >= len(page.entries) or page.entries[pos].id != orchestration_id:
            raise IndexCorrupt(f"page {project}/{page.number} lacks {orchestration_id} at {pos}")
        event = self._decode(msg)
        entry = page.entries[pos]
        if event is None or not advance_listing(entry.state, event):
            return
        page.version = seq
        self._dirty.add(page.key)
        if entry.state.terminal:
            entry.end_seq = seq
            page.active -= 1
            del self._live[orchestration_id]

    async def _page_for_fold(self, project: str, number: int) -> Page:
        """The page, loaded if needed; waits out broker trouble (the fold cannot skip it)."""
        page = self._pages.get((project, number))
        if page is not None:
            return page
        delay = 0.2
        while True:
            try:
                return await self._load_page(project, number)
            except IndexCorrupt:
                raise
            except Exception as exc:  # noqa: BLE001 - retried until the broker answers
                log.warning("cannot read a list index page, retrying", error=repr(exc))
                await asyncio.sleep(delay)
                delay = min(5.0, delay * 2)

    def _start_rebuild(self, reason: str, *, gap: int = 0) -> None:
        if self._rebuilding:
            return
        if gap:
            log.info("events removed before the list index read them", reason=reason)
        else:
            log.error("list index contradicts the event log; rebuilding it", reason=reason)
        self._rebuilding = True
        task = asyncio.create_task(self._reload(gap) if gap else self._rebuild())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _rebuild(self) -> None:
        if self._follower is not None:
            await self._follower.stop()
            self._follower = None
        async with self._checkpoint_lock:
            self._replaces = self._generation
            self._generation = secrets.token_hex(4)
            self._clear()
            self.caught_up.clear()
            info = await self._bus.js.stream_info(self._bus.topology.events_stream)
            self.target_seq = info.state.last_seq
            self._started_at = time.perf_counter()
            self._rebuilding = False
            await self._subscribe(0)

    async def _reload(self, gap: int) -> None:
        """After a gap before ``gap``: load a saved head that covers it, else accept it."""
        if self._follower is not None:
            await self._follower.stop()
            self._follower = None
        async with self._checkpoint_lock:
            head = None
            with contextlib.suppress(Exception):
                head, _, _ = await self._read_head()
            covers = self.applied_seq
            # Not the generation a rebuild replaces: that one is why we rebuild.
            usable = head is not None and head.generation != self._replaces
            if head is not None and usable and head.covers_seq >= gap - 1:
                try:
                    self._clear()
                    await self._adopt(head)
                    covers = head.covers_seq
                    log.info("list index reloaded from its saved head", covers_seq=covers)
                except IndexCorrupt as exc:
                    log.error("saved list index is corrupt; rebuilding it", error=str(exc))
                    self._rebuilding = False
                    self._start_rebuild(str(exc))
                    return
            else:
                self._gap_accepted = gap - 1
                log.warning(
                    "events removed before any list index covered them: their "
                    "orchestrations are not listed (their summaries remain)",
                    first_missing=self.applied_seq + 1,
                    last_missing=gap - 1,
                )
            saved = self._saved_seq if covers == self.applied_seq else covers
            self._rebuilding = False
            await self._subscribe(covers)
            self._saved_seq = saved  # accepting a gap saves nothing

    # --- pages --------------------------------------------------------------------------------

    async def _fetch_page(self, project: str, number: int) -> Page:
        return await self._bucket().fetch_page(self._generation, project, number)

    # --- checkpoints ------------------------------------------------------------------------

    async def _run_checkpoints(self) -> None:
        tick = min(0.5, self._interval_s)
        while True:
            await asyncio.sleep(tick)
            if self._rebuilding or self.applied_seq <= self._saved_seq:
                continue
            due = time.monotonic() - self._last_save >= self._interval_s
            if due or self._events_since >= self._snapshot_events:
                try:
                    await self.checkpoint()
                except Exception as exc:  # noqa: BLE001 - retried at the next tick
                    log.warning("list index not saved", error=repr(exc))
                    self._last_save = time.monotonic()

    @staticmethod
    def _page_record(page: Page) -> PageRecord:
        return page.record()

    def _head_record(self, covers: int) -> HeadRecord:
        return head_record(
            self._pages.values(),
            generation=self._generation,
            covers=covers,
            counts=self._counts,
            compensation_failed=self._comp_failed,
            replaces=self._replaces,
        )

    async def checkpoint(self) -> bool:
        """Save the changed pages, then the head; the head covers what the index folded.

        Returns:
            Whether this call wrote the head (``False`` when another replica saved a head
            that covers as much, or when there was nothing to save).
        """
        async with self._checkpoint_lock:
            covers = self.applied_seq
            if covers <= self._saved_seq or self._rebuilding:
                return False
            # One synchronous cut: the pages and the head as of ``covers``.
            keys = list(self._dirty)
            self._dirty.clear()
            self._flushing.update(keys)
            batch = []
            for key in keys:
                page = self._pages[key]
                batch.append((page, msgspec.json.encode(self._page_record(page)), page.version))
            head = msgspec.json.encode(self._head_record(covers))
            try:
                stored, revision, _ = await self._read_head()
                if (
                    stored is not None
                    and stored.generation == self._generation
                    and stored.covers_seq >= covers
                ):
                    # A replica saved as much: its pages hold these changes (or later ones).
                    wrote = False
                else:
                    for page, data, version in batch:
                        await self._store_page(page, data, version)
                    wrote = await self._bucket().store_head(
                        head,
                        covers,
                        stored,
                        revision,
                        generation=self._generation,
                        replaces=self._replaces,
                    )
            except BaseException:
                self._dirty.update(keys)
                raise
            finally:
                self._flushing.difference_update(keys)
            self._saved_seq = covers
            self._events_since = 0
            self._last_save = time.monotonic()
            self._shrink()
            return wrote

    def _bucket(self) -> IndexBucket:
        assert self._store is not None, "the index has not started"
        return self._store

    async def _read_head(self) -> tuple[HeadRecord | None, int | None, bool]:
        return await self._bucket().read_head()

    async def _store_page(self, page: Page, data: bytes, version: int) -> None:
        await self._bucket().store_page(self._generation, page, data, version)

    # --- queries ------------------------------------------------------------------------------

    async def stored_covers(self) -> int:
        """The stream sequence the head stored in the bucket covers (0: no usable head).

        What a process that starts now would replay from, whatever replica saved it.
        """
        head, _, _ = await self._read_head()
        return head.covers_seq if head is not None else 0

    @property
    def rebuilding(self) -> bool:
        """Whether the index is being rebuilt or reloaded (its lines are incomplete)."""
        return self._rebuilding

    def projects(self) -> list[str]:
        """The projects that have orchestrations."""
        return list(self._counts)

    async def entry(self, project: str, ordinal: int) -> IndexEntry | None:
        """The list line at ``ordinal`` of ``project`` (read from the bucket if needed)."""
        page = await self._load_page(project, ordinal // PAGE_SIZE)
        pos = ordinal % PAGE_SIZE
        return page.entries[pos] if pos < len(page.entries) else None

    def count(self, project: str | None = None) -> int:
        """Orchestrations indexed (of one project, or of all)."""
        if project is not None:
            return self._counts.get(project, 0)
        return sum(self._counts.values())

    @property
    def compensation_failed(self) -> list[tuple[str, str]]:
        """Orchestrations with an abandoned compensation and their projects, oldest first."""
        return list(self._comp_failed.items())

    async def wait_applied(self, seq: int, timeout_s: float) -> bool:
        """Wait until the index has folded the log up to ``seq``; False on timeout."""
        if self.applied_seq >= seq and not self._rebuilding:
            return True
        return await self._seq_waiters.wait(seq, timeout_s)

    async def page(
        self,
        project: str,
        *,
        status: OrchestrationStatus | None,
        limit: int,
        before: int | None,
        match: Callable[[IndexEntry], bool] | None = None,
    ) -> tuple[list[IndexEntry], int | None]:
        """Up to ``limit`` lines of ``project``, newest first, below ordinal ``before``.

        Returns:
            The lines and the ordinal to continue below (``None`` when none are left). A
            filtered list (``status``, or ``match``: a search) that has to read many pages
            from the bucket may return fewer lines than ``limit`` with an ordinal to
            continue from.
        """
        top = self._counts.get(project, 0)
        if before is not None:
            top = min(top, before)
        if status is not None and not is_terminal(status):
            # Unfinished orchestrations are all in memory.
            live = (o for p, o in self._live.values() if p == project and o < top)
            return self._cache.pick(project, live, status=status, limit=limit, match=match)
        return await self._cache.scan(project, top=top, status=status, limit=limit, match=match)
