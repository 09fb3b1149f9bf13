"""Search in the orchestration list: ``GET /orchestrations?q=<words>``.

``q`` is one to :data:`MAX_WORDS` words separated by spaces. An orchestration matches when
every word occurs, ignoring case, in its id or in its action text (the list line's text:
the first :data:`~orra_gateway.indexstore.ACTION_CHARS` characters of the action). The list
index is read newest first (:meth:`orra_gateway.index.ListingIndex.page`), so a search
pages like the list itself; a page may come back short, with a cursor, when many lines had
to be read to fill it.
"""

from __future__ import annotations

import unicodedata
from typing import TYPE_CHECKING, Final

from orra_gateway.errors import BadRequest, FieldError

if TYPE_CHECKING:
    from collections.abc import Callable

    from orra_gateway.indexstore import IndexEntry

__all__ = ["MAX_CHARS", "MAX_WORDS", "matcher", "search_words"]

MAX_CHARS: Final = 200
"""Longest ``q`` accepted."""

MAX_WORDS: Final = 8
"""Most words in ``q``."""


def _refuse(message: str) -> BadRequest:
    return BadRequest(f"invalid search: {message}", [FieldError("q", message)])


def search_words(q: str) -> tuple[str, ...]:
    """The words of a search, case-folded.

    Raises:
        BadRequest: naming ``q`` when it is blank, too long, has too many words or holds
            control characters.
    """
    if len(q) > MAX_CHARS:
        raise _refuse(f"at most {MAX_CHARS} characters (got {len(q)})")
    if any(unicodedata.category(c) == "Cc" for c in q):
        raise _refuse("control characters are not allowed")
    words = tuple(dict.fromkeys(w.casefold() for w in q.split()))
    if not words:
        raise _refuse("give at least one word, or leave q out to list everything")
    if len(words) > MAX_WORDS:
        raise _refuse(f"at most {MAX_WORDS} words (got {len(words)})")
    return words


def matcher(words: tuple[str, ...]) -> Callable[[IndexEntry], bool]:
    """Whether a list line has every one of ``words`` in its id or its action text."""

    def match(entry: IndexEntry) -> bool:
        text = f"{entry.id}\n{entry.action}".casefold()
        return all(word in text for word in words)

    return match
