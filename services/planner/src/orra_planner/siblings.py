"""Services of one thing: which one the data says is meant.

"Sort out PTO for EMP-1 from 2026-12-22 to 2026-12-31": the words point at the leave
balance (its examples say "PTO"), the dates at the leave request. Both are services of
leave (their names share the word); the one that takes the data the user gave is meant,
where the other would leave it unused and the plan would be refused for it.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Protocol

from orra_planner.lexicon import term
from orra_planner.text import GENERIC_NAME_WORDS, split_words

if TYPE_CHECKING:
    from collections.abc import Collection, Mapping, Sequence

    from orra_events import DataField
    from orra_planner.fields import ServiceFields
    from orra_planner.matching import PartMatch
    from orra_planner.registry import ServiceCatalog

__all__ = ["Member", "name_words", "sibling_swaps", "sibling_taking"]


class Member(Protocol):
    """A service in the plan being made: its fields and the parts it serves."""

    @property
    def keys(self) -> ServiceFields:
        """Its field keys."""
        ...

    @property
    def parts(self) -> set[int]:
        """Indexes of the parts it serves."""
        ...


@lru_cache(maxsize=4096)
def name_words(name: str) -> frozenset[str]:
    """The lemmas of a service name's words, without ``Service``, ``Api`` and the like."""
    words = (term(w) for w in split_words(name) if w not in GENERIC_NAME_WORDS)
    return frozenset(t.lemma for t in words if t is not None)


def sibling_taking(  # noqa: PLR0917
    name: str,
    wanted: Collection[str],
    available: Collection[str],
    taken: Collection[str],
    catalog: ServiceCatalog,
    keys: Mapping[str, ServiceFields],
) -> str | None:
    """The one service of the same thing as ``name`` that takes every ``wanted`` field.

    Args:
        name: The service the words chose.
        wanted: Data fields (keys) that it leaves unused, with those it takes.
        available: Keys the sibling's required inputs may come from (data, outputs).
        taken: Services already in the plan (never a sibling).
        catalog: The catalogue.
        keys: Every service's field keys.

    Returns:
        The sibling, when exactly one shares a word of ``name`` and can run on the data.
    """
    own = name_words(name)
    found = [
        other
        for other in catalog
        if other != name
        and other not in taken
        and own & name_words(other)
        and set(wanted) <= keys[other].inputs
        and keys[other].required <= set(available)
    ]
    return found[0] if len(found) == 1 else None


def sibling_swaps(
    matches: Sequence[PartMatch],
    members: Mapping[str, Member],
    catalog: ServiceCatalog,
    keys: Mapping[str, ServiceFields],
    data: Mapping[str, DataField],
) -> list[tuple[int, str, str, frozenset[str]]]:
    """``(part, service, sibling, data keys)`` for each request to hand to a sibling.

    A part served by one service alone, which serves nothing else, runs on the data as
    given and would leave data no other planned service takes unused, goes to the one
    sibling (:func:`sibling_taking`) that takes all that data. Never a question: a
    question's data may only say what it is about ("how much leave does EMP-1 have from 1
    May?" books no leave).
    """
    swaps: list[tuple[int, str, str, frozenset[str]]] = []
    for index, match in enumerate(matches):
        name = match.serving[0] if len(match.serving) == 1 else None
        member = members.get(name) if name is not None else None
        if match.part.question or name is None or member is None or member.parts != {index}:
            continue
        others = [m for n, m in members.items() if n != name]
        wanted = frozenset(data) - {k for m in others for k in m.keys.inputs}
        if not wanted - keys[name].inputs:
            continue
        produced = {k for m in others for k in m.keys.outputs}
        if not keys[name].required <= data.keys() | produced:
            continue  # a supplier it needs may take the rest ("book a hotel" with a city)
        sibling = sibling_taking(name, wanted, data.keys() | produced, members, catalog, keys)
        if sibling is not None:
            swaps.append((index, name, sibling, wanted))
    return swaps
