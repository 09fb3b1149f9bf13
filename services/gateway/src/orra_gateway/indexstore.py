"""The list index's records and the bucket they are saved in.

:mod:`orra_gateway.index` keeps the list lines in pages; this module is what it saves, in the
``gateway_index`` bucket (through :meth:`orra_events.Topology.bucket`):

===============================  ==============================================================
key                              value (JSON, camelCase)
===============================  ==============================================================
``head``                         :class:`HeadRecord`: the stream sequence it covers, each
                                 project's count, the pages with unfinished orchestrations,
                                 the orchestrations with an abandoned compensation
``<generation>.<project>.<n>``   :class:`PageRecord`: page ``n`` of the project, with the
                                 stream sequence of the last event folded into it (its
                                 *version*)
===============================  ==============================================================

Every write is a compare-and-set on the key's revision and never replaces a newer version
(page) or a head that covers more (:class:`IndexBucket`).
"""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING, Final

import msgspec
import structlog
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError

from orra_events.projection import ListingState

if TYPE_CHECKING:
    from collections.abc import Iterable

    from nats.js.kv import KeyValue

__all__ = [
    "ACTION_CHARS",
    "FORMAT",
    "HEAD_KEY",
    "INDEX_BUCKET",
    "PAGE_SIZE",
    "HeadRecord",
    "IndexBucket",
    "IndexCorrupt",
    "IndexEntry",
    "Page",
    "PageKey",
    "PageRecord",
    "head_record",
]

log = structlog.get_logger("orra.gateway.index")

INDEX_BUCKET: Final = "gateway_index"
"""Name (within the topology) of the bucket holding the index."""

PAGE_SIZE: Final = 256
"""List lines per page (consecutive ordinals of one project)."""

ACTION_CHARS: Final = 200
"""Characters of the action text kept in a list line (a page stays far below 1 MB)."""

FORMAT: Final = 1
"""Version of the records' layout."""

HEAD_KEY: Final = "head"
"""Key of the head record."""

_CAS_TRIES = 10
_SAFE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


class IndexCorrupt(Exception):
    """A saved page contradicts the log; the index is rebuilt in a new generation."""


class IndexEntry(msgspec.Struct, kw_only=True, rename="camel"):
    """The list line of one orchestration.

    Attributes:
        id: Orchestration id.
        seq: Stream sequence of its ``action.submitted``.
        created_at: When the action was submitted.
        action: The action's text, cut to :data:`ACTION_CHARS` characters.
        action_truncated: Whether ``action`` was cut (the full text is in the log at ``seq``).
        state: Status, task count and end, folded from its events.
        end_seq: Stream sequence of the event that ended it (0: not ended, or unknown in
            a page saved by an earlier version).
    """

    id: str
    seq: int
    created_at: float
    action: str
    action_truncated: bool = False
    state: ListingState = msgspec.field(default_factory=ListingState)
    end_seq: int = 0


class PageRecord(msgspec.Struct, kw_only=True, rename="camel"):
    """A saved page of list lines.

    Attributes:
        format: :data:`FORMAT`.
        project: The project whose orchestrations it lists.
        number: Its number: it holds ordinals ``number * PAGE_SIZE`` onwards.
        version: Stream sequence of the last event folded into it.
        entries: The lines, by ordinal.
    """

    format: int
    project: str
    number: int
    version: int
    entries: list[IndexEntry]


class HeadRecord(msgspec.Struct, kw_only=True, rename="camel"):
    """The saved state of the index besides its pages.

    Attributes:
        format: :data:`FORMAT`.
        generation: Prefix of the keys of its pages.
        covers_seq: Every event up to this stream sequence is in the saved pages.
        saved_at: When it was written (UNIX epoch seconds).
        projects: Orchestrations indexed per project (the next ordinal).
        active: Per project, the pages holding an orchestration that has not ended.
        compensation_failed: Orchestrations with an abandoned compensation (id to project),
            in order of their last abandonment.
        replaces: The generation this one was rebuilt to replace, if any.
    """

    format: int
    generation: str
    covers_seq: int
    saved_at: float
    projects: dict[str, int] = msgspec.field(default_factory=dict)
    active: dict[str, list[int]] = msgspec.field(default_factory=dict)
    compensation_failed: dict[str, str] = msgspec.field(default_factory=dict)
    replaces: str | None = None


PageKey = tuple[str, int]
"""A page's project and number."""


class Page:
    """A page in memory: its lines, version, stored revision and unfinished count."""

    __slots__ = ("active", "entries", "number", "project", "revision", "version")

    def __init__(
        self,
        project: str,
        number: int,
        entries: list[IndexEntry] | None = None,
        version: int = 0,
        revision: int | None = None,
    ) -> None:
        self.project = project
        self.number = number
        self.entries: list[IndexEntry] = entries or []
        self.version = version
        self.revision = revision
        self.active = sum(1 for e in self.entries if not e.state.terminal)

    @property
    def key(self) -> PageKey:
        """The page's project and number."""
        return self.project, self.number

    def record(self) -> PageRecord:
        """What is saved of the page."""
        return PageRecord(
            format=FORMAT,
            project=self.project,
            number=self.number,
            version=self.version,
            entries=self.entries,
        )


def _project_key(project: str) -> str:
    return project if _SAFE_KEY.fullmatch(project) else "=" + project.encode().hex()


def head_record(
    pages: Iterable[Page],
    *,
    generation: str,
    covers: int,
    counts: dict[str, int],
    compensation_failed: dict[str, str],
    replaces: str | None,
) -> HeadRecord:
    """The head of an index whose pages in memory are ``pages`` (unfinished ones among them)."""
    active: dict[str, list[int]] = {}
    for page in pages:
        if page.active > 0:
            active.setdefault(page.project, []).append(page.number)
    for numbers in active.values():
        numbers.sort()
    return HeadRecord(
        format=FORMAT,
        generation=generation,
        covers_seq=covers,
        saved_at=time.time(),
        projects=dict(counts),
        active=active,
        compensation_failed=dict(compensation_failed),
        replaces=replaces,
    )


class IndexBucket:
    """The index's bucket: its head and pages, each written by compare-and-set.

    A write never replaces a newer version of a page or a head that covers more (see the
    module doc), so replicas sharing the bucket leave it consistent.

    Args:
        kv: The ``gateway_index`` bucket.
    """

    def __init__(self, kv: KeyValue) -> None:
        self._kv = kv

    @staticmethod
    def page_key(generation: str, project: str, number: int) -> str:
        """The key of page ``number`` of ``project`` in ``generation``."""
        return f"{generation}.{_project_key(project)}.{number}"

    async def fetch_page(self, generation: str, project: str, number: int) -> Page:
        """Page ``number`` of ``project`` as saved (empty when there is none).

        Raises:
            IndexCorrupt: it is unreadable or not what its key says.
        """
        try:
            entry = await self._kv.get(self.page_key(generation, project, number))
        except KeyNotFoundError:
            return Page(project, number)
        try:
            record = msgspec.json.decode(entry.value or b"", type=PageRecord)
        except msgspec.DecodeError as exc:
            raise IndexCorrupt(f"page {project}/{number} is unreadable: {exc}") from None
        if record.format != FORMAT or record.project != project or record.number != number:
            raise IndexCorrupt(f"page {project}/{number} is not what its key says")
        return Page(project, number, record.entries, record.version, entry.revision)

    async def read_head(self) -> tuple[HeadRecord | None, int | None, bool]:
        """The saved head (``None`` if unreadable), its revision, and whether one exists."""
        try:
            entry = await self._kv.get(HEAD_KEY)
        except KeyNotFoundError:
            return None, None, False
        try:
            head = msgspec.json.decode(entry.value or b"", type=HeadRecord)
        except msgspec.DecodeError:
            return None, entry.revision, True
        if head.format != FORMAT:
            return None, entry.revision, True
        return head, entry.revision, True

    async def store_head(
        self,
        data: bytes,
        covers: int,
        stored: HeadRecord | None,
        revision: int | None,
        *,
        generation: str,
        replaces: str | None,
    ) -> bool:
        """Save the head ``data`` of ``generation`` covering ``covers``, unless it may not.

        Args:
            data: The encoded :class:`HeadRecord`.
            covers: The stream sequence it covers.
            stored: The head read last (``None``: none, or unreadable).
            revision: Its revision (``None``: there is none).
            generation: The generation writing.
            replaces: The generation it was rebuilt to replace, if any.

        Returns:
            Whether it was written (``False``: the bucket holds a head it may not replace).
        """
        for _ in range(_CAS_TRIES):
            if not _may_replace(stored, covers, generation, replaces):
                if stored is not None and stored.generation != generation:
                    log.warning(
                        "list index saved by another generation; not replacing it",
                        theirs=stored.generation,
                        mine=generation,
                    )
                return False
            try:
                if revision is None:
                    await self._kv.create(HEAD_KEY, data)
                else:
                    await self._kv.update(HEAD_KEY, data, last=revision)
            except KeyWrongLastSequenceError:
                stored, revision, _ = await self.read_head()
                continue
            return True
        return False

    async def store_page(self, generation: str, page: Page, data: bytes, version: int) -> None:
        """Save ``data``, the page at ``version``, unless the bucket holds a later one.

        Raises:
            RuntimeError: the key kept changing through every try.
        """
        key = self.page_key(generation, page.project, page.number)
        revision = page.revision
        for _ in range(_CAS_TRIES):
            try:
                if revision is None:
                    page.revision = await self._kv.create(key, data)
                else:
                    page.revision = await self._kv.update(key, data, last=revision)
            except KeyWrongLastSequenceError:
                try:
                    entry = await self._kv.get(key)
                except KeyNotFoundError:
                    revision = None
                    continue
                try:
                    stored = msgspec.json.decode(entry.value or b"", type=PageRecord).version
                except msgspec.DecodeError:
                    stored = -1
                if stored >= version:  # saved by a replica that is further along
                    page.revision = entry.revision
                    return
                revision = entry.revision
                continue
            return
        raise RuntimeError(f"page {key} kept changing under us")


def _may_replace(
    stored: HeadRecord | None, covers: int, generation: str, replaces: str | None
) -> bool:
    if stored is None:
        return True
    if stored.generation == generation:
        return stored.covers_seq < covers
    # Another generation: only the rebuild that replaces it, once it covers as much.
    return stored.generation == replaces and stored.covers_seq <= covers
