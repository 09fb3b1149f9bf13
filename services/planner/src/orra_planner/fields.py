"""A service's field names as the offline planner compares them, and the action's data.

Field names are compared case-, ``_``- and ``-``-insensitively (``order_id`` = ``orderId``,
:func:`~orra_planner.matching.field_key`); :class:`ServiceFields` holds a service's inputs,
required inputs and outputs that way, computed once per catalogue (:func:`fields_of`).
:func:`aliased` keys the action's data, reading a field named with another word for a
reference (``orderRef``) as the one input it means (``orderId``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from orra_planner.matching import field_key
from orra_planner.text import split_words

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from orra_events import DataField
    from orra_planner.registry import ServiceCatalog, ServiceSpec

__all__ = ["ServiceFields", "aliased", "fields_of"]


@dataclass(frozen=True)
class ServiceFields:
    """A service's field names as :func:`_key` normalises them (computed once per catalogue).

    Attributes:
        inputs: Keys of every input.
        required: Keys of the required inputs.
        outputs: Keys of every output.
        output_named: Output key → the output's declared name (the first one, if several).
    """

    inputs: frozenset[str]
    required: frozenset[str]
    outputs: frozenset[str]
    output_named: Mapping[str, str]

    @classmethod
    def of(cls, spec: ServiceSpec) -> ServiceFields:
        """The field names of ``spec``."""
        output_named: dict[str, str] = {}
        for name in spec.outputs:
            output_named.setdefault(field_key(name), name)
        return cls(
            inputs=frozenset(field_key(n) for n in spec.inputs),
            required=frozenset(field_key(n) for n in spec.required_inputs),
            outputs=frozenset(output_named),
            output_named=output_named,
        )


def fields_of(catalog: ServiceCatalog) -> dict[str, ServiceFields]:
    """The field names of every service of ``catalog`` (derive it once per catalogue)."""
    return {name: ServiceFields.of(spec) for name, spec in catalog.items()}


_REFERENCE_WORDS: Final = frozenset({"id", "ref", "reference", "number", "no", "num", "code"})


def aliased(
    data: Sequence[DataField], keys: Mapping[str, ServiceFields], notes: list[str]
) -> dict[str, DataField]:
    """The action's data by field key; ``orderRef`` or ``orderNumber`` read as ``orderId``.

    A field is read as an input named like it with another word for a reference only when
    no service takes the field as named and exactly one input name of the catalogue is the
    same thing with another reference word.
    """
    inputs = {k for entry in keys.values() for k in entry.inputs}
    found: dict[str, DataField] = {}
    for item in data:
        key = field_key(item.field)
        words = split_words(item.field)
        if key not in inputs and len(words) > 1 and words[-1] in _REFERENCE_WORDS:
            stem = field_key("".join(words[:-1]))
            same = sorted(k for k in inputs if k in {stem + w for w in _REFERENCE_WORDS})
            if len(same) == 1 and same[0] not in found:
                notes.append(f"read data field {item.field!r} as the input {same[0]!r}")
                key = same[0]
        found.setdefault(key, item)
    return found
