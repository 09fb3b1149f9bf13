"""App factory of the planner: wires its handlers to the bus."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from orra_events import Bus
    from orra_events.runtime import Stop


async def setup(bus: Bus) -> Stop:
    """Start the planner's consumers on ``bus``; return how to stop them."""
    del bus

    async def stop() -> None:
        return None

    return stop
