"""The list index's pages in memory: loading, eviction and the newest-first scan.

:class:`PageCache` holds the pages of :class:`~orra_gateway.index.ListingIndex`. Pages that
must stay (with an unfinished orchestration, changes not saved yet, or a project's newest
page) are never evicted; of the others the ``cache_pages`` most recently
used are kept, and the rest are read back from the bucket
(:class:`~orra_gateway.indexstore.IndexBucket`) when a list reaches them.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from typing import TYPE_CHECKING, Final

from orra_gateway.indexstore import PAGE_SIZE, IndexEntry, Page, PageKey

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterable

    from orra_events.projection import OrchestrationStatus

__all__ = ["SCAN_PAGES", "PageCache"]

SCAN_PAGES: Final = 64
"""Pages a list request reads from the bucket at most before answering with a cursor."""


class PageCache:
    """A project's pages by number, most recently used last.

    Args:
        fetch: Reads a page from the bucket (an empty page when it has none).
        count: A project's number of orchestrations (its newest page stays in memory).
        cache_pages: Pages kept in memory besides those that must stay.
    """

    def __init__(
        self,
        fetch: Callable[[str, int], Awaitable[Page]],
        count: Callable[[str], int],
        cache_pages: int,
    ) -> None:
        self._fetch = fetch
        self._count = count
        self._cache_pages = max(1, cache_pages)
        self._loads: dict[PageKey, asyncio.Future[Page]] = {}
        self.pages: OrderedDict[PageKey, Page] = OrderedDict()
        """The pages in memory."""
        self.dirty: set[PageKey] = set()
        """Pages changed since the last checkpoint."""
        self.flushing: set[PageKey] = set()
        """Pages a checkpoint is writing."""

    def _pinned(self, page: Page) -> bool:
        key = page.key
        return (
            page.active > 0
            or key in self.dirty
            or key in self.flushing
            or page.number == self._count(page.project) // PAGE_SIZE
        )

    def shrink(self) -> None:
        """Evict the least recently used pages beyond ``cache_pages`` that are not pinned."""
        evictable = [key for key, page in self.pages.items() if not self._pinned(page)]
        for key in evictable[: max(0, len(evictable) - self._cache_pages)]:
            del self.pages[key]

    async def load(self, project: str, number: int) -> Page:
        """Page ``number`` of ``project``, from memory or the bucket (one read per page)."""
        key = (project, number)
        page = self.pages.get(key)
        if page is not None:
            self.pages.move_to_end(key)
            return page
        pending = self._loads.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[Page] = asyncio.get_running_loop().create_future()
        self._loads[key] = future
        try:
            page = await self._fetch(project, number)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: whoever awaits it gets it raised
            raise
        finally:
            del self._loads[key]
        self.pages[key] = page
        future.set_result(page)
        self.shrink()
        return page

    def entry(self, project: str, ordinal: int) -> IndexEntry:
        """The line at ``ordinal`` of ``project``, whose page is in memory."""
        return self.pages[(project, ordinal // PAGE_SIZE)].entries[ordinal % PAGE_SIZE]

    def pick(
        self,
        project: str,
        ordinals: Iterable[int],
        *,
        status: OrchestrationStatus,
        limit: int,
        match: Callable[[IndexEntry], bool] | None = None,
    ) -> tuple[list[IndexEntry], int | None]:
        """Up to ``limit`` of these lines (in memory) with ``status``, newest first.

        Returns:
            The lines and the ordinal to continue below (``None`` when none are left).
        """

        def chosen_line(entry: IndexEntry) -> bool:
            return entry.state.status == status and (match is None or match(entry))

        chosen = sorted(
            (o for o in ordinals if chosen_line(self.entry(project, o))),
            reverse=True,
        )
        entries = [self.entry(project, o) for o in chosen[:limit]]
        return entries, chosen[limit - 1] if len(chosen) > limit else None

    async def scan(
        self,
        project: str,
        *,
        top: int,
        status: OrchestrationStatus | None,
        limit: int,
        match: Callable[[IndexEntry], bool] | None = None,
    ) -> tuple[list[IndexEntry], int | None]:
        """Up to ``limit`` lines of ``project`` with ``status``, newest first, below ``top``.

        ``match``, when given, also has to accept a line (a search).

        Returns:
            The lines and the ordinal to continue below (``None`` when none are left); fewer
            lines and an ordinal when :data:`SCAN_PAGES` pages were read from the bucket.
        """
        found: list[tuple[int, IndexEntry]] = []
        ordinal = top - 1
        fetched = 0
        while ordinal >= 0:
            number = ordinal // PAGE_SIZE
            page = self.pages.get((project, number))
            if page is None:
                if fetched >= SCAN_PAGES:
                    return [e for _, e in found], ordinal + 1
                page = await self.load(project, number)
                fetched += 1
            else:
                self.pages.move_to_end((project, number))
            base = number * PAGE_SIZE
            for pos in range(min(ordinal - base, len(page.entries) - 1), -1, -1):
                entry = page.entries[pos]
                if (status is None or entry.state.status == status) and (
                    match is None or match(entry)
                ):
                    found.append((base + pos, entry))
                    if len(found) > limit:
                        return [e for _, e in found[:limit]], found[limit - 1][0]
            ordinal = base - 1
        return [e for _, e in found], None
