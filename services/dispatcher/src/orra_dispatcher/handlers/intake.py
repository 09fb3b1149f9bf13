"""The dispatcher's intake: decode, check, and hand each input to its orchestration.

The consumer's callback checks an input (parked if it is not for the dispatcher, or on the
wrong subject), applies it in memory when it can (:mod:`~orra_dispatcher.handlers.writer`)
or puts it in its orchestration's mailbox; each mailbox is drained by a task of its own, at
most ``concurrency`` at once, which routes each item to the engine or the timers' handler.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
from collections import deque
from typing import TYPE_CHECKING, Any

import structlog

from orra_dispatcher.domain import ORCHESTRATION_TIMER, Timer
from orra_dispatcher.handlers.core import (
    HANDLED,
    MAX_BATCH,
    RESULTS,
    Again,
    Core,
    Item,
    Received,
    is_result,
)
from orra_events.topology import NAME_PATTERN

if TYPE_CHECKING:
    from collections.abc import Iterator

    from nats.aio.msg import Msg

    from orra_events import Event


__all__ = ["Intake"]

log = structlog.get_logger("orra.dispatcher")


class Intake(Core):
    """The consumer's callback and the per-orchestration mailboxes."""

    async def _on_event(self, event: Event, msg: Msg) -> None:
        # Called in one long-lived task: the ids are reset after each message.
        tokens = structlog.contextvars.bind_contextvars(**_log_ids(event))
        try:
            await self._intake(event, msg)
        finally:
            structlog.contextvars.reset_contextvars(**tokens)

    async def _intake(self, event: Event, msg: Msg) -> None:
        if not isinstance(event, HANDLED):
            await self._park(msg, f"the dispatcher does not handle {event.TYPE} events")
            return
        orchestration_id = event.orchestration_id
        if not NAME_PATTERN.fullmatch(orchestration_id):
            await self._park(msg, f"invalid orchestration id {orchestration_id!r}")
            return
        if msg.subject != self._topology.subject_for(event):
            await self._park(
                msg, f"{event.TYPE} event for {orchestration_id} on subject {msg.subject}"
            )
            return
        if orchestration_id not in self._boxes and self._try_fast(orchestration_id, (event, msg)):
            return  # applied in memory, right here: no task needed
        self._enqueue(orchestration_id, (event, msg))

    def _enqueue(self, orchestration_id: str, item: Item) -> None:
        box = self._boxes.get(orchestration_id)
        if box is not None:
            box.append(item)
            return
        box = self._boxes[orchestration_id] = deque((item,))
        self._spawn(self._drain(orchestration_id, box), orchestration_id)

    def _requeue(self, orchestration_id: str, items: list[Item]) -> None:
        """Put inputs back at the front of an orchestration's mailbox, in their order."""
        box = self._boxes.get(orchestration_id)
        if box is not None:
            box.extendleft(reversed(items))
            return
        box = self._boxes[orchestration_id] = deque(items)
        self._spawn(self._drain(orchestration_id, box), orchestration_id)

    def _spawn(self, work: Any, orchestration_id: str) -> asyncio.Task[None]:
        """Run ``work`` for an orchestration in a task whose log context names it only.

        Not the caller's context: it may be bound to another input's task, or be a timer's.
        """
        context = contextvars.copy_context()
        context.run(_bind_orchestration, orchestration_id)
        task: asyncio.Task[None] = asyncio.create_task(work, context=context)
        self._workers.add(task)
        task.add_done_callback(self._workers.discard)
        return task

    async def _drain(self, orchestration_id: str, box: deque[Item]) -> None:
        try:
            async with self._slots:
                while box:
                    item = box.popleft()
                    if isinstance(item, tuple) and self._try_fast(orchestration_id, item, box):
                        continue
                    line = self._lines.get(orchestration_id)
                    if line is not None:
                        # Against the stored state: let the writer finish first (inputs
                        # whose write conflicted come back to the front of the box).
                        box.appendleft(item)
                        await self._settle(line)
                        continue
                    if isinstance(item, Timer):
                        with _task_logged(item.task_id):
                            await self._handle_timer(item)
                        continue
                    event, msg = (item.event, item.msg) if isinstance(item, Again) else item
                    if isinstance(event, RESULTS):
                        # Results queued for one orchestration are applied together.
                        batch: list[Received] = [(event, msg)]
                        while box and len(batch) < MAX_BATCH and is_result(box[0]):
                            batch.append(box.popleft())  # type: ignore[arg-type]
                        with _task_logged(event.task_id if len(batch) == 1 else None):
                            await self._handle_results(orchestration_id, batch)
                    else:
                        with _task_logged(getattr(event, "task_id", None)):
                            await self._handle_message(event, msg, again=isinstance(item, Again))
        finally:
            if self._boxes.get(orchestration_id) is box:
                del self._boxes[orchestration_id]


def _log_ids(event: Event) -> dict[str, str]:
    """The log context of an input: its orchestration and, if it is about one, its task."""
    ids: dict[str, str] = {}
    orchestration_id = getattr(event, "orchestration_id", None)
    if isinstance(orchestration_id, str):
        ids["orchestration_id"] = orchestration_id
    task_id = getattr(event, "task_id", None)
    if isinstance(task_id, str):
        ids["task_id"] = task_id
    return ids


def _bind_orchestration(orchestration_id: str) -> None:
    """Bind the log context of an orchestration's own task (run inside its new context)."""
    structlog.contextvars.unbind_contextvars("task_id")
    structlog.contextvars.bind_contextvars(orchestration_id=orchestration_id)


@contextlib.contextmanager
def _task_logged(task_id: str | None) -> Iterator[None]:
    """Bind ``task_id`` to the log context while an input about that task is handled."""
    if task_id is None or task_id == ORCHESTRATION_TIMER:
        yield
        return
    tokens = structlog.contextvars.bind_contextvars(task_id=task_id)
    try:
        yield
    finally:
        structlog.contextvars.reset_contextvars(**tokens)
