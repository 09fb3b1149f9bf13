"""The front door's client: submit the seed action over HTTP, pair it with its webhook.

:class:`FrontDoor` posts ``POST /orchestrations`` on a :class:`~bench.httpclient.HttpConnection`
and waits for the orchestration's delivery at a :class:`~bench.receiver.Receiver`; a
:class:`Sample` holds the instants the driver and the receiver stamp (``time.time()``, the
clock every Orra process stamps its events with).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import msgspec

from bench.httpclient import HttpConnection
from bench.workload import SEED_ACTION, SEED_DATA

if TYPE_CHECKING:
    from bench.receiver import Arrival, Receiver

__all__ = ["FrontDoor", "FrontDoorError", "Sample"]


class FrontDoorError(RuntimeError):
    """A request was refused, or its webhook did not come in time."""


@dataclass
class Sample:
    """One orchestration submitted through the front door.

    Attributes:
        orchestration_id: From the answer's ``Location``.
        posted: When the request was written (epoch seconds).
        answered: When the whole answer had been read.
        arrival: The delivery, once verified.
    """

    orchestration_id: str
    posted: float
    answered: float
    arrival: Arrival | None = None

    @property
    def answer_ms(self) -> float:
        """POST → ``201`` read."""
        return (self.answered - self.posted) * 1000.0

    @property
    def webhook_ms(self) -> float:
        """POST → webhook verified."""
        assert self.arrival is not None
        return (self.arrival.verified_at - self.posted) * 1000.0


class FrontDoor:
    """Submits the seed action over HTTP and pairs each orchestration with its webhook.

    Args:
        host: The gateway's address.
        port: The gateway's port.
        api_key: A key of the ``default`` project.
        receiver: Where webhooks arrive; its :attr:`Receiver.on_arrival` is set here.
    """

    def __init__(self, host: str, port: int, api_key: str, receiver: Receiver) -> None:
        self.host = host
        self.port = port
        self.receiver = receiver
        receiver.on_arrival = self._on_arrival
        self._headers = {
            "Authorization": f"Bearer {api_key}",
            "Content-Type": "application/json",
        }
        self._body = msgspec.json.encode(
            {
                "action": {"content": SEED_ACTION},
                "data": [{"field": k, "value": v} for k, v in SEED_DATA],
                "webhook": receiver.url,
            }
        )
        self._early: dict[str, Arrival] = {}
        self._waiting: dict[str, asyncio.Future[Arrival]] = {}

    def _on_arrival(self, orchestration_id: str, arrival: Arrival) -> None:
        fut = self._waiting.pop(orchestration_id, None)
        if fut is None:
            self._early[orchestration_id] = arrival  # before the 201 was read
        elif not fut.done():
            fut.set_result(arrival)

    def connection(self) -> HttpConnection:
        """A new keep-alive connection to the gateway."""
        return HttpConnection(self.host, self.port)

    async def get(self, conn: HttpConnection, path: str) -> Any:
        """GET ``path`` and decode its JSON.

        Raises:
            FrontDoorError: the answer is not 200.
        """
        response = await conn.request("GET", path, self._headers)
        if response.status != 200:
            raise FrontDoorError(f"GET {path}: {response.status} {response.body[:300]!r}")
        return msgspec.json.decode(response.body)

    async def submit(self, conn: HttpConnection) -> tuple[Sample, bytes]:
        """POST the seed action; return the sample (not yet delivered) and the body.

        Raises:
            FrontDoorError: the answer is neither 201 nor 202.
        """
        posted = time.time()
        response = await conn.request("POST", "/orchestrations", self._headers, self._body)
        answered = time.time()
        if response.status not in (201, 202):
            raise FrontDoorError(f"POST /orchestrations: {response.status} {response.body[:300]!r}")
        orchestration_id = response.headers.get("location", "").rsplit("/", 1)[-1]
        return Sample(orchestration_id, posted, answered), response.body

    async def run_one(self, conn: HttpConnection, timeout_s: float = 30.0) -> Sample:
        """Submit, then wait for the orchestration's verified webhook.

        Raises:
            FrontDoorError: refused, or no webhook within ``timeout_s``.
        """
        sample, _ = await self.submit(conn)
        sample.arrival = await self.wait(sample.orchestration_id, timeout_s)
        return sample

    async def wait(self, orchestration_id: str, timeout_s: float) -> Arrival:
        """The orchestration's delivery (it may already have come).

        Raises:
            FrontDoorError: none within ``timeout_s``, or not ``completed``.
        """
        arrival = self._early.pop(orchestration_id, None)
        if arrival is None:
            fut: asyncio.Future[Arrival] = asyncio.get_running_loop().create_future()
            self._waiting[orchestration_id] = fut
            try:
                arrival = await asyncio.wait_for(fut, timeout_s)
            except TimeoutError:
                raise FrontDoorError(
                    f"no webhook for {orchestration_id} within {timeout_s:.0f}s"
                ) from None
            finally:
                self._waiting.pop(orchestration_id, None)
        if arrival.status != "completed":
            raise FrontDoorError(f"{orchestration_id} ended {arrival.status!r}")
        return arrival
