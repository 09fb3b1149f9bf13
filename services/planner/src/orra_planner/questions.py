"""Questions the offline planner answers from the data: a question changes nothing.

:func:`asked_of_data` answers a question with no request words by the one service that
reads all of its data; :func:`most_like` picks, of several services that take a question's
data, the one whose example phrases read most like it.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Final

from rapidfuzz import fuzz

from orra_planner.fields import fields_of
from orra_planner.matching import PartMatch, field_key, vocabulary
from orra_planner.parts import split_action

if TYPE_CHECKING:
    from collections.abc import Sequence

    from orra_planner.registry import ServiceCatalog
    from orra_planner.strategy import PlanRequest

__all__ = ["asked_of_data", "most_like"]

_LIKE: Final = 70.0
_LIKE_MARGIN: Final = 10.0


def most_like(text: str, names: Sequence[str], catalog: ServiceCatalog) -> list[str]:
    """The one service of ``names`` whose example phrases read most like ``text``, if clear.

    Whole phrases, function words included ("how upset is the customer" reads like the
    example "is the customer angry", not like "write a response to the customer"); the
    best must be close (:data:`_LIKE`) and clearly ahead of the next (:data:`_LIKE_MARGIN`).
    """
    lowered = text.lower()
    scored = sorted(
        (
            (
                max(
                    (fuzz.token_set_ratio(lowered, e.lower()) for e in catalog[n].examples),
                    default=0.0,
                ),
                n,
            )
            for n in names
        ),
        reverse=True,
    )
    best, runner_up = scored[0][0], scored[1][0] if len(scored) > 1 else 0.0
    if best >= _LIKE and best - runner_up >= _LIKE_MARGIN:
        return [scored[0][1]]
    return list(names)


def asked_of_data(request: PlanRequest) -> list[PartMatch]:
    """A question with no request words, answered by the one reader of all its data.

    "Any way to get from LIS to BER on 2026-12-14?" with ``origin``, ``destination`` and
    ``date``: a question changes nothing, so only a service whose name says it reads
    (:attr:`~orra_planner.service_words.ServiceWords.reads`), takes every data field
    and runs on them alone answers it; none when it is not exactly one.
    """
    catalog = request.catalog
    given = {field_key(d.field) for d in request.data}
    pieces = [p for p in split_action(request.action) if p.text]
    if not given or not pieces or not request.action.rstrip().endswith("?"):
        return []
    keys = catalog.derived("offline.keys", fields_of)
    words = vocabulary(catalog).services
    readers = [
        name
        for name in catalog
        if words[name].reads and given <= keys[name].inputs and keys[name].required <= given
    ]
    if len(readers) != 1:
        return []
    whole = dataclasses.replace(
        pieces[0], text=request.action.strip().rstrip("?").strip(), question=True
    )
    return [PartMatch(whole, ((readers[0], 0.0),), (readers[0],))]
