"""The gateway's read model against a real nats-server: the saved list index, bounded caches.

What it must do whatever happens to the process: answer exactly what a fold of the whole
log answers (the reference here), keep memory bounded by its settings, and never apply an
event twice or lose one across restarts, kills between two writes, and replicas.
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

import msgspec
import pytest

from orra_events import (
    ActionSubmitted,
    Bus,
    DataField,
    Event,
    OrchestrationAborted,
    OrchestrationDone,
    OrchestrationPaused,
    PlanCreated,
    PlanFailed,
    TaskCompensationAbandoned,
    encode,
)
from orra_events.projection import fold, summarize
from orra_gateway import GatewaySettings
from orra_gateway.errors import BrokerDown
from orra_gateway.index import HEAD_KEY, INDEX_BUCKET, PAGE_SIZE, HeadRecord, ListingIndex
from orra_gateway.logread import LogFollower, position
from orra_gateway.readmodel import ReadModel
from tests.gateway.conftest import SEED_PLAN

pytestmark = pytest.mark.timeout(120)


def settings(**overrides: Any) -> GatewaySettings:
    fields: dict[str, Any] = {"snapshot_interval_s": 3600.0, "index_wait_s": 20.0}
    fields.update(overrides)
    return GatewaySettings(**fields)


def story(oid: str, project: str, n: int, rng: random.Random) -> list[Event]:
    """The events of one orchestration: submitted, then (maybe) planned and ended."""
    at = 1000.0 + n
    events: list[Event] = [
        ActionSubmitted(
            event_id=f"a:{oid}",
            orchestration_id=oid,
            action=f"action {n} " + ("x" * 300 if n % 97 == 0 else ""),
            data=[DataField("n", n)],
            project=project,
            at=at,
        )
    ]
    fate = rng.random()
    if fate < 0.1:
        events.append(
            PlanFailed(
                event_id=f"p:{oid}",
                orchestration_id=oid,
                status="not_actionable",
                reasons=["no"],
                planner="offline",
                project=project,
                at=at + 1,
            )
        )
        return events
    if fate < 0.2:
        return events  # still planning
    events.append(
        PlanCreated(
            event_id=f"p:{oid}",
            orchestration_id=oid,
            plan=SEED_PLAN,
            planner="offline",
            project=project,
            at=at + 1,
        )
    )
    if fate < 0.35:
        return events  # running
    if fate < 0.45:
        events.append(
            OrchestrationPaused(
                event_id=f"pz:{oid}",
                orchestration_id=oid,
                services=["S"],
                tasks=["payment"],
                grace_s=60,
                fail_at=at + 60,
                at=at + 2,
            )
        )
        return events
    if fate < 0.6:
        events.append(
            OrchestrationAborted(event_id=f"end:{oid}", orchestration_id=oid, reason="r", at=at + 3)
        )
        return events
    events.append(
        OrchestrationDone(
            event_id=f"end:{oid}", orchestration_id=oid, results={}, outputs={}, at=at + 3
        )
    )
    return events


async def append(bus: Bus, events: list[Event]) -> None:
    futures = [
        await bus.js.publish_async(
            bus.topology.subject_for(e), encode(e), headers={"Nats-Msg-Id": e.event_id}
        )
        for e in events
    ]
    await asyncio.gather(*futures)


def interleave(stories: list[list[Event]], rng: random.Random) -> list[Event]:
    """Events of many orchestrations, interleaved, each orchestration's in order."""
    queues = [list(s) for s in stories]
    out: list[Event] = []
    # Submissions keep their order (so the expected list order is known); the rest mixes.
    pending: list[list[Event]] = []
    for queue in queues:
        out.append(queue.pop(0))
        pending.append(queue)
        while pending and rng.random() < 0.6:
            victim = rng.choice(pending)
            if victim:
                out.append(victim.pop(0))
            pending = [q for q in pending if q]
    for queue in pending:
        out.extend(queue)
    return out


def expected(events: list[Event], project: str) -> list[dict[str, Any]]:
    """The list of a project, newest first, from a fold of the whole log."""
    views = fold(events)
    order = [
        e.orchestration_id
        for e in events
        if isinstance(e, ActionSubmitted) and e.project == project
    ]
    return [msgspec.to_builtins(summarize(views[oid])) for oid in reversed(order)]


async def listed(model: ReadModel, project: str, *, limit: int = 97, **kw: Any) -> list[Any]:
    items: list[Any] = []
    cursor = None
    while True:
        page, cursor = await model.page(project, limit=limit, cursor=cursor, **kw)
        items.extend(msgspec.to_builtins(page))
        if cursor is None:
            return items


async def started(bus: Bus, **overrides: Any) -> ReadModel:
    model = ReadModel(bus, settings(**overrides))
    await model.start()
    return model


def same_lines(got: list[Any], want: list[Any]) -> None:
    # The list counts the plan's tasks; these plans name no other tasks, so they agree.
    assert [i["id"] for i in got] == [i["id"] for i in want]
    assert got == want


async def test_the_index_answers_like_a_fold_of_the_whole_log_and_restarts_from_its_head(
    bus: Bus,
) -> None:
    rng = random.Random(7)
    stories = [
        story(f"o_{n:05d}", "acme" if n % 3 else "beta", n, rng) for n in range(2 * PAGE_SIZE + 40)
    ]
    events = interleave(stories, rng)
    half = len(events) // 2
    await append(bus, events[:half])

    first = await started(bus, index_cache_pages=1)
    try:
        assert await first.index.wait_applied(first.views.applied_seq, 30)
        same_lines(await listed(first, "acme"), expected(events[:half], "acme"))
        await append(bus, events[half:])
        for project in ("acme", "beta"):
            same_lines(await listed(first, project), expected(events, project))
            for status in ("running", "paused", "planning", "completed", "aborted"):
                want = [i for i in expected(events, project) if i["status"] == status]
                same_lines(await listed(first, project, status=status, limit=13), want)
        # memory: pages with unfinished orchestrations, unsaved ones, one per project being
        # filled, and the cache of one
        assert await first.index.checkpoint()
        resident = len(first.index._pages)
        live_pages = {(p, o // PAGE_SIZE) for p, o in first.index._live.values()}
        assert resident <= len(live_pages) + 2 + 1
    finally:
        await first.stop()

    kv = await bus.kv(INDEX_BUCKET)
    head = msgspec.json.decode((await kv.get(HEAD_KEY)).value or b"", type=HeadRecord)
    info = await bus.js.stream_info(bus.topology.events_stream)
    assert head.covers_seq == info.state.last_seq
    projects = [s[0].project for s in stories if isinstance(s[0], ActionSubmitted)]
    assert head.projects == {p: projects.count(p) for p in ("acme", "beta")}

    # A restart replays nothing; new events after it are folded on top.
    rng2 = random.Random(8)
    more = [story(f"o_{n:05d}", "acme", n, rng2) for n in range(900, 960)]
    tail = interleave(more, rng2)
    second = await started(bus)
    try:
        assert second.index.caught_up.is_set()
        await append(bus, tail)
        same_lines(await listed(second, "acme"), expected(events + tail, "acme"))
    finally:
        await second.stop()


async def test_pages_saved_after_the_head_are_not_applied_twice(bus: Bus) -> None:
    """A process killed between its page writes and its head write: pages are ahead."""
    rng = random.Random(3)
    stories = [story(f"o_{n:04d}", "acme", n, rng) for n in range(300)]
    events = interleave(stories, rng)
    await append(bus, events[:400])
    model = await started(bus)
    assert await model.index.wait_applied(model.views.applied_seq, 30)
    assert await model.index.checkpoint()
    await append(bus, events[400:])
    assert await model.index.wait_applied(
        (await bus.js.stream_info(bus.topology.events_stream)).state.last_seq, 30
    )
    # Save the pages, not the head (what a kill -9 between the two leaves behind).
    index = model.index
    for key in list(index._dirty):
        page = index._pages[key]
        data = msgspec.json.encode(index._page_record(page))
        await index._store_page(page, data, page.version)
    index._dirty.clear()
    await model.views.stop()
    if index._checkpointer is not None:
        index._checkpointer.cancel()
    assert index._follower is not None
    await index._follower.stop()

    again = await started(bus)
    try:
        same_lines(await listed(again, "acme"), expected(events, "acme"))
        assert again.index.count("acme") == 300
        assert again.index._generation == index._generation  # no rebuild was needed
    finally:
        await again.stop()


async def test_replicas_save_one_consistent_index(bus: Bus) -> None:
    rng = random.Random(5)
    stories = [story(f"o_{n:04d}", "acme", n, rng) for n in range(400)]
    events = interleave(stories, rng)
    a = await started(bus, snapshot_interval_s=0.2, snapshot_events=50)
    b = await started(bus, snapshot_interval_s=0.2, snapshot_events=50)
    try:
        for chunk in range(0, len(events), 150):
            await append(bus, events[chunk : chunk + 150])
            await asyncio.sleep(0.3)
        last = (await bus.js.stream_info(bus.topology.events_stream)).state.last_seq
        for model in (a, b):
            assert await model.index.wait_applied(last, 30)
        await asyncio.gather(a.index.checkpoint(), b.index.checkpoint())
    finally:
        await asyncio.gather(a.stop(), b.stop())
    third = await started(bus)
    try:
        assert third.index.caught_up.is_set()
        same_lines(await listed(third, "acme"), expected(events, "acme"))
    finally:
        await third.stop()


async def test_an_unreadable_page_makes_a_new_generation(bus: Bus) -> None:
    rng = random.Random(11)
    events = interleave([story(f"o_{n:04d}", "acme", n, rng) for n in range(300)], rng)
    await append(bus, events)
    model = await started(bus)
    assert await model.index.wait_applied(model.views.applied_seq, 30)
    await model.stop()
    kv = await bus.kv(INDEX_BUCKET)
    head = msgspec.json.decode((await kv.get(HEAD_KEY)).value or b"", type=HeadRecord)
    victim = next(iter(head.active["acme"]))
    await kv.put(f"{head.generation}.acme.{victim}", b"{not json")

    again = await started(bus)
    try:
        same_lines(await listed(again, "acme"), expected(events, "acme"))
        assert again.index._generation != head.generation
        assert await again.index.checkpoint()
    finally:
        await again.stop()
    new_head = msgspec.json.decode((await kv.get(HEAD_KEY)).value or b"", type=HeadRecord)
    assert new_head.generation != head.generation
    assert new_head.replaces == head.generation


async def test_a_head_ahead_of_the_log_is_not_trusted(bus: Bus) -> None:
    kv = await bus.kv(INDEX_BUCKET)
    fake = HeadRecord(
        format=1, generation="gone", covers_seq=10_000, saved_at=0.0, projects={"acme": 5000}
    )
    await kv.put(HEAD_KEY, msgspec.json.encode(fake))
    rng = random.Random(2)
    events = interleave([story(f"o_{n:04d}", "acme", n, rng) for n in range(20)], rng)
    await append(bus, events)
    model = await started(bus)
    try:
        same_lines(await listed(model, "acme"), expected(events, "acme"))
        assert model.index.count("acme") == 20
    finally:
        await model.stop()


async def test_compensation_failures_survive_a_restart(bus: Bus) -> None:
    rng = random.Random(4)
    events = interleave([story(f"o_{n:04d}", "acme", n, rng) for n in range(5)], rng)
    abandoned = TaskCompensationAbandoned(
        event_id="cab:o_0001:payment",
        orchestration_id="o_0001",
        task_id="payment",
        service="PaymentService",
        input={},
        output={},
        reason="r",
        error="no",
        attempts=3,
        project="acme",
    )
    await append(bus, [*events, abandoned])
    model = await started(bus)
    try:
        assert [v.id for v in await model.compensation_failed("acme")] == ["o_0001"]
        assert await model.compensation_failed("other") == []
    finally:
        await model.stop()
    again = await started(bus)
    try:
        assert again.index.compensation_failed == [("o_0001", "acme")]
    finally:
        await again.stop()


async def test_views_are_bounded_and_follow_the_log(bus: Bus) -> None:
    rng = random.Random(9)
    stories = [story(f"o_{n:04d}", "acme", n, rng) for n in range(12)]
    events = interleave(stories, rng)
    await append(bus, events)
    model = await started(bus, view_cache=3)
    try:
        views = fold(events)
        for oid, view in views.items():
            got = await model.get("acme", oid)
            assert msgspec.json.encode(got) == msgspec.json.encode(view)
            assert len(model.views) <= 3
        # an evicted view is read again, with what happened since
        oid = "o_0000"
        assert oid not in model.views._slots
        done = OrchestrationDone(
            event_id=f"end2:{oid}", orchestration_id=oid, results={"late": True}, outputs={}
        )
        await bus.publish(done)
        want = fold([*events, done])[oid]
        got = await model.wait_for(
            oid, lambda v: v is not None and v.event_count == want.event_count, 5
        )
        assert msgspec.json.encode(got) == msgspec.json.encode(want)
        assert await model.find("o_missing") is None
        assert await model.find("not a subject token") is None
    finally:
        await model.stop()


async def test_the_log_follower_hands_over_each_event_once_in_order_with_bounded_buffering(
    bus: Bus,
) -> None:
    rng = random.Random(1)
    events = interleave([story(f"o_{n:04d}", "acme", n, rng) for n in range(1500)], rng)
    await append(bus, events)
    last = (await bus.js.stream_info(bus.topology.events_stream)).state.last_seq
    seen: list[int] = []
    queued: list[int] = []
    done = asyncio.Event()
    follower: LogFollower

    async def handle(msg: Any) -> None:
        seen.append(position(msg)[0])
        queued.append(follower._sub._pending_queue.qsize())
        if len(seen) in (500, 1500):  # a lost delivery, then a consumer the server dropped
            if len(seen) == 500:
                follower._want_restart("test")
            else:
                assert follower._consumer is not None
                await bus.js.delete_consumer(bus.topology.events_stream, follower._consumer)
        if seen[-1] >= last + 5:
            done.set()

    follower = LogFollower(bus, handle, batch=100, heartbeat_s=0.5)
    await follower.start(1)
    try:
        await asyncio.sleep(0.5)
        more = interleave([story(f"o_{n:04d}", "acme", n, rng) for n in range(2000, 2010)], rng)
        await append(bus, more)  # live, after the replay
        await asyncio.wait_for(done.wait(), 30)
    finally:
        await follower.stop()
    assert seen == list(range(1, len(seen) + 1))
    assert follower.restarts >= 2
    assert max(queued) <= 150


async def test_lists_wait_for_an_index_that_is_catching_up(
    bus: Bus, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = random.Random(6)
    events = interleave([story(f"o_{n:04d}", "acme", n, rng) for n in range(30)], rng)
    await append(bus, events)
    gate = asyncio.Event()
    fold_event = ListingIndex._on_event

    async def slow(self: ListingIndex, msg: Any) -> None:
        await gate.wait()
        await fold_event(self, msg)

    monkeypatch.setattr(ListingIndex, "_on_event", slow)
    model = await started(bus, index_wait_s=0.3)
    try:
        assert model.caught_up.is_set()  # the gateway answers...
        assert not model.index.caught_up.is_set()
        # ...details at once (from the log), lists once the index has caught up.
        assert (await model.get("acme", "o_0003")).id == "o_0003"
        with pytest.raises(BrokerDown):
            await model.page("acme")
        gate.set()
        same_lines(await listed(model, "acme"), expected(events, "acme"))
    finally:
        gate.set()
        await model.stop()
