"""Tables of per-event-type functions, looked up by the event's class.

The fold and the list lines dispatch on the event's type through a dict rather than a chain
of ``isinstance`` checks (a ``match`` on classes): one small function per event type, and
one lookup per event whatever its type. Usage::

    table = EventTable(entry(PlanCreated, on_plan_created), ...)
    try:
        fn = table.handlers[type(event)]
    except KeyError:  # a class seen for the first time: resolved once, then cached
        fn = table.resolve(type(event))
    if fn is not None:
        fn(state, event)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Generic, TypeVar

if TYPE_CHECKING:
    from collections.abc import Callable

    from orra_events.events import Event

__all__ = ["EventTable", "entry"]

E = TypeVar("E", bound="Event")
S = TypeVar("S")
R = TypeVar("R")


def entry(cls: type[E], fn: Callable[[S, E], R]) -> tuple[type[Event], Callable[[S, Any], R]]:
    """A row of an :class:`EventTable`: ``fn`` handles the events of class ``cls``.

    Typed so that mypy checks that ``fn`` takes events of ``cls``.
    """
    return cls, fn


class EventTable(Generic[S, R]):
    """Functions by event class; a subclass gets its nearest base's, as ``isinstance`` would.

    Attributes:
        types: The event classes of the table's rows.
        handlers: The function of every class looked up so far (``None``: no function);
            a miss is for :meth:`resolve`.
    """

    __slots__ = ("handlers", "types")

    def __init__(self, *rows: tuple[type[Event], Callable[[S, Any], R]]) -> None:
        self.types: frozenset[type[Event]] = frozenset(cls for cls, _ in rows)
        self.handlers: dict[type[Event], Callable[[S, Any], R] | None] = dict(rows)

    def resolve(self, cls: type[Event]) -> Callable[[S, Any], R] | None:
        """The function for ``cls`` (that of its nearest base in the table, or ``None``), cached."""
        fn = next(
            (self.handlers[base] for base in cls.__mro__ if base in self.types),
            None,
        )
        self.handlers[cls] = fn
        return fn
