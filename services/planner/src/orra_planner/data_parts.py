"""Requests made of data: a general verb whose object is the values of one data field.

"Set up new hire CAND-1, give them Slack and GitHub" with ``applications: [Slack,
GitHub]``: "give them Slack and GitHub" has no word that says what to do beyond "give",
and its objects are data values; the data field says which service is meant, when exactly
one service of the catalogue takes it and no other part's service does. Without it the
field would be left unused and the plan refused for it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from orra_planner.lexicon import GENERIC_VERBS, term
from orra_planner.matching import PartMatch, field_key
from orra_planner.parts import Part, data_fields, mentioned_values, split_action

if TYPE_CHECKING:
    from collections.abc import Sequence

    from orra_events import DataField
    from orra_planner.registry import ServiceCatalog

__all__ = ["data_requests"]


def _values(field: DataField) -> list[str]:
    items = field.value if isinstance(field.value, list) else [field.value]
    return [str(v).lower() for v in items if isinstance(v, str | int | float)]


def data_requests(
    action: str,
    catalog: ServiceCatalog,
    data: Sequence[DataField],
    matches: Sequence[PartMatch],
) -> list[PartMatch]:
    """The pieces of ``action`` that ask, by a general verb, for what a data field's taker does.

    A piece that is no request and opens with a general verb ("give", "get", "use"), with a
    value of a field that exactly one service takes, a service no part is served by; the
    pieces right after it that are only values of that field belong to it ("and GitHub").
    """
    serving = {name for m in matches for name, _ in m.ranked}
    lower = action.lower()
    fields: dict[str, tuple[DataField, list[str]]] = {}
    by_field = catalog.derived("data_parts.takers", _takers)
    for field in data:
        takers = by_field.get(field_key(field.field), ())
        if len(takers) != 1 or takers[0] in serving:
            continue
        values = _values(field)
        if any(v in lower for v in values):
            fields[takers[0]] = (field, values)
    if not fields:
        return []  # no value of a field only an unplanned service takes: nothing to split
    pieces = split_action(action, mentioned_values(action, data), data_fields(data))
    found: list[PartMatch] = []
    for index, piece in enumerate(pieces):
        if piece.request or piece.terms:
            continue
        words = piece.text.split()
        opening = term(words[0].lower(), verb_position=True) if words else None
        if opening is None or opening.lemma not in GENERIC_VERBS:
            continue
        for taker, (_, values) in fields.items():
            if taker in serving or not any(v in piece.text.lower() for v in values):
                continue
            end = piece.end
            for after in pieces[index + 1 :]:
                if after.request or after.text.lower() not in values:
                    break
                end = after.end
            part = Part(action[piece.start : end].strip(), piece.start, end, (), None)
            found.append(PartMatch(part, ((taker, 1.0),), (taker,)))
            serving.add(taker)
            break
    return found


def _takers(catalog: ServiceCatalog) -> dict[str, tuple[str, ...]]:
    """Input field key → the services that take it (once per catalogue)."""
    found: dict[str, list[str]] = {}
    for name, spec in catalog.items():
        for key in {field_key(n) for n in spec.inputs}:
            found.setdefault(key, []).append(name)
    return {key: tuple(names) for key, names in found.items()}
