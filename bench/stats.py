# ruff: noqa: RUF001, RUF002 - the report uses typographic dashes and multiplication signs
"""Small statistics helpers: percentiles and the median/min/max aggregate of repeated runs."""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

__all__ = ["Agg", "percentile"]


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100) of ``values`` by the nearest-rank method.

    Raises:
        ValueError: ``values`` is empty.
    """
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100.0 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


@dataclass(frozen=True)
class Agg:
    """One figure measured over repeated runs: its median, minimum, maximum and run count."""

    median: float
    min: float
    max: float
    runs: int

    @classmethod
    def of(cls, values: Iterable[float | None]) -> Agg | None:
        """Aggregate the non-``None`` values; ``None`` when there are none."""
        kept = [float(v) for v in values if v is not None]
        if not kept:
            return None
        return cls(statistics.median(kept), min(kept), max(kept), len(kept))

    @classmethod
    def dict_of(cls, values: Iterable[float | None]) -> dict[str, float | int] | None:
        """:meth:`of` then :meth:`as_dict`: the JSON form, or ``None`` without values."""
        agg = cls.of(values)
        return agg.as_dict() if agg else None

    def fmt(self, unit: str = "", digits: int = 1) -> str:
        """``12.3 ms (10.1–14.2)``, or just the value for a single run."""
        sep = " " if unit and not unit.startswith("%") else ""
        value = f"{self.median:,.{digits}f}{sep}{unit}"
        if self.runs > 1:
            value += f" ({self.min:,.{digits}f}–{self.max:,.{digits}f})"
        return value

    def as_dict(self) -> dict[str, float | int]:
        """JSON-friendly form."""
        return {"median": self.median, "min": self.min, "max": self.max, "runs": self.runs}
