"""Retention of the event log against a real nats-server (orra_gateway.retention).

The rule under test: a pass removes the events of orchestrations that ended long enough
ago, keeps a summary of each, and never removes an event that something may still need:
an orchestration that has not ended (or is being compensated, or waits for an operator),
an event a durable consumer has not acknowledged, or one the saved list index does not
cover.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import msgspec
import pytest
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError

from orra_events import (
    ActionSubmitted,
    Bus,
    CompensationSummary,
    DataField,
    Event,
    OrchestrationAborted,
    OrchestrationCompensated,
    OrchestrationCompensating,
    OrchestrationDone,
    OrchestrationFailed,
    PlanCreated,
    TaskCompensationAbandoned,
    TaskCompensationResolved,
    encode,
)
from orra_events.health import METRICS
from orra_gateway import GatewaySettings
from orra_gateway.index import HEAD_KEY, INDEX_BUCKET, HeadRecord
from orra_gateway.readmodel import ReadModel
from orra_gateway.retention import PassOutcome, Retention
from tests.gateway.conftest import SEED_PLAN, gateway_settings

pytestmark = pytest.mark.timeout(120)

LATER = 3600.0
"""Passes run this far in the future see every event as older than their max age."""


def model_settings(**overrides: Any) -> GatewaySettings:
    fields: dict[str, Any] = {
        "snapshot_interval_s": 3600.0,
        "index_wait_s": 20.0,
        "retention_max_age_s": 60.0,
        "retention_max_bytes": 0,
        "retention_interval_s": 3600.0,  # passes are run by the tests
    }
    fields.update(overrides)
    return GatewaySettings(**fields)


def submitted(oid: str, project: str = "acme", action: str = "ship the order") -> ActionSubmitted:
    return ActionSubmitted(
        event_id=f"a:{oid}",
        orchestration_id=oid,
        action=action,
        data=[DataField("orderId", "ORD1")],
        project=project,
        at=time.time(),
    )


def planned(oid: str, project: str = "acme") -> PlanCreated:
    return PlanCreated(
        event_id=f"p:{oid}",
        orchestration_id=oid,
        plan=SEED_PLAN,
        planner="offline",
        project=project,
        at=time.time(),
    )


def done(oid: str) -> OrchestrationDone:
    return OrchestrationDone(
        event_id=f"end:{oid}",
        orchestration_id=oid,
        results={"ok": True},
        outputs={},
        at=time.time(),
    )


def completed(oid: str, project: str = "acme") -> list[Event]:
    return [submitted(oid, project), planned(oid, project), done(oid)]


async def append(bus: Bus, events: list[Event]) -> list[int]:
    acks = [
        await bus.js.publish(
            bus.topology.subject_for(e), encode(e), headers={"Nats-Msg-Id": e.event_id}
        )
        for e in events
    ]
    return [ack.seq for ack in acks]


async def started(bus: Bus, **overrides: Any) -> ReadModel:
    model = ReadModel(bus, model_settings(**overrides))
    await model.start()
    return model


async def settled(model: ReadModel) -> Retention:
    """Wait until the index folded the whole log and saved it; the model's retention."""
    info = await model._bus.js.stream_info(model._bus.topology.events_stream)
    assert await model.index.wait_applied(info.state.last_seq, 20)
    await model.index.checkpoint()
    assert model.retention is not None
    return model.retention


async def run(model: ReadModel, *, at: float | None = None) -> PassOutcome:
    retention = await settled(model)
    outcome = await retention.run_once(now=time.time() + LATER if at is None else at)
    assert outcome is not None
    return outcome


async def history(bus: Bus, oid: str) -> list[str]:
    """Types of the events of ``oid`` still in the log, sorted."""
    topo = bus.topology
    info = await bus.js.stream_info(topo.events_stream, subjects_filter=topo.history_of(oid))
    subjects = info.state.subjects or {}
    return sorted(topo.strip(subject).rsplit(".", 1)[0] for subject in subjects)


async def listed(model: ReadModel, project: str = "acme") -> dict[str, dict[str, Any]]:
    items, _ = await model.page(project, limit=100)
    return {i.id: msgspec.to_builtins(i) for i in items}


async def test_ended_orchestrations_expire_to_a_summary_and_running_ones_keep_every_event(
    bus: Bus,
) -> None:
    await append(bus, completed("o_old1"))
    failing = [
        submitted("o_old2"),
        planned("o_old2"),
        OrchestrationFailed(
            event_id="end:o_old2",
            orchestration_id="o_old2",
            error="PaymentService failed: card declined",
            at=time.time(),
        ),
    ]
    await append(bus, failing)
    running_seqs = await append(bus, [submitted("o_live"), planned("o_live")])
    await append(bus, completed("o_after"))
    model = await started(bus)
    try:
        outcome = await run(model)
        # Everything before the running orchestration went; it and what follows stayed.
        assert outcome.cut_seq == running_seqs[0]
        assert outcome.removed == 6
        assert outcome.expired == 2
        assert outcome.held_by is not None
        assert "o_live is running" in outcome.held_by
        assert await history(bus, "o_old1") == []
        assert await history(bus, "o_live") == ["action.submitted", "plan.created"]
        assert await history(bus, "o_after") == [
            "action.submitted",
            "orchestration.done",
            "plan.created",
        ]

        expired = await model.find("o_old2")
        assert expired is not None
        assert expired.expired
        assert expired.expired_at is not None
        assert (expired.status, expired.project, expired.action) == (
            "failed",
            "acme",
            "ship the order",
        )
        assert expired.error == "PaymentService failed: card declined"
        assert expired.task_count == 4
        assert expired.tasks == []
        live = await model.find("o_live")
        assert live is not None
        assert not live.expired
        assert [t.id for t in live.tasks] == ["payment", "inventory", "delivery", "notify"]

        lines = await listed(model)
        assert list(lines) == ["o_after", "o_live", "o_old2", "o_old1"]
        assert [lines[o]["expired"] for o in lines] == [False, False, True, True]
        assert lines["o_old1"]["status"] == "completed"

        # Once it ends, it and the one after it go too.
        await append(bus, [done("o_live")])
        outcome = await run(model)
        assert outcome.held_by is None
        assert outcome.expired == 2
        assert await history(bus, "o_live") == []
        again = await model.find("o_live")
        assert again is not None
        assert (again.expired, again.status) == (True, "completed")
    finally:
        await model.stop()

    # A restarted gateway lists and finds them the same way.
    restarted = await started(bus)
    try:
        await settled(restarted)
        lines = await listed(restarted)
        assert [lines[o]["expired"] for o in lines] == [True, True, True, True]
        view = await restarted.find("o_old1")
        assert view is not None
        assert view.expired
    finally:
        await restarted.stop()


async def test_the_age_counts_from_the_end_of_an_orchestration(bus: Bus) -> None:
    await append(bus, [submitted("o_long"), planned("o_long")])
    await asyncio.sleep(1.5)
    await append(bus, [done("o_long")])
    ended = time.time()
    model = await started(bus, retention_max_age_s=1.0)
    try:
        # Its first events are older than the max age, but it ended just now.
        outcome = await run(model, at=ended + 0.2)
        assert outcome.target_seq > outcome.first_seq
        assert outcome.removed == 0
        assert outcome.held_by is not None
        assert "ended less than the maximum age ago" in outcome.held_by
        assert len(await history(bus, "o_long")) == 3
        outcome = await run(model, at=ended + 1.5)
        assert outcome.removed == 3
    finally:
        await model.stop()


async def test_a_consumer_backlog_is_never_removed(bus: Bus) -> None:
    topo = bus.topology
    await bus.js.add_consumer(
        topo.events_stream,
        ConsumerConfig(
            durable_name="notifier_like",
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            filter_subject=topo.all_of("orchestration.done"),
        ),
    )
    await append(bus, completed("o_1") + completed("o_2"))
    model = await started(bus)
    try:
        outcome = await run(model)
        assert outcome.removed == 0
        assert outcome.held_by is not None
        assert "consumer notifier_like" in outcome.held_by
        # It processes the first end: o_1 may go, o_2's end is still unprocessed.
        sub = await bus.js.pull_subscribe_bind("notifier_like", stream=topo.events_stream)
        (msg,) = await sub.fetch(1, timeout=5)
        await msg.ack_sync()
        outcome = await run(model)
        assert outcome.expired == 1
        assert await history(bus, "o_1") == []
        assert len(await history(bus, "o_2")) == 3
        (msg,) = await sub.fetch(1, timeout=5)
        await msg.ack_sync()
        outcome = await run(model)
        assert outcome.expired == 1
        assert await history(bus, "o_2") == []
    finally:
        await model.stop()


async def test_an_aborted_orchestration_stays_while_it_is_compensated(bus: Bus) -> None:
    oid = "o_abort"
    await append(
        bus,
        [
            submitted(oid),
            planned(oid),
            OrchestrationAborted(event_id=f"end:{oid}", orchestration_id=oid, reason="user"),
            OrchestrationCompensating(
                event_id=f"cs:{oid}",
                orchestration_id=oid,
                cause="aborted",
                reason="user",
                tasks=["payment"],
            ),
        ],
    )
    model = await started(bus)
    try:
        outcome = await run(model)
        assert outcome.removed == 0
        assert outcome.held_by is not None
        assert "is being compensated" in outcome.held_by
        await append(
            bus,
            [
                OrchestrationCompensated(
                    event_id=f"ce:{oid}",
                    orchestration_id=oid,
                    compensation=CompensationSummary(compensated=["payment"]),
                )
            ],
        )
        outcome = await run(model)
        assert outcome.removed == 5
        view = await model.find(oid)
        assert view is not None
        assert (view.expired, view.status, view.error) == (True, "aborted", "user")
    finally:
        await model.stop()


async def test_a_compensation_waiting_for_an_operator_keeps_its_events(bus: Bus) -> None:
    oid = "o_stuck"
    await append(
        bus,
        [
            submitted(oid),
            planned(oid),
            OrchestrationCompensating(
                event_id=f"cs:{oid}",
                orchestration_id=oid,
                cause="failed",
                reason="delivery failed",
                tasks=["payment"],
            ),
            TaskCompensationAbandoned(
                event_id=f"cf:{oid}:payment",
                orchestration_id=oid,
                task_id="payment",
                service="PaymentService",
                input={},
                output={},
                reason="delivery failed",
                error="refund refused",
                attempts=5,
                project="acme",
            ),
            OrchestrationCompensated(
                event_id=f"ce:{oid}",
                orchestration_id=oid,
                compensation=CompensationSummary(failed=["payment"]),
            ),
            OrchestrationFailed(event_id=f"end:{oid}", orchestration_id=oid, error="delivery"),
        ],
    )
    model = await started(bus)
    try:
        outcome = await run(model)
        assert outcome.removed == 0
        assert outcome.held_by is not None
        assert "waiting for an operator" in outcome.held_by
        await append(
            bus,
            [
                TaskCompensationResolved(
                    event_id=f"cres:{oid}:payment",
                    orchestration_id=oid,
                    task_id="payment",
                    resolution="resolved",
                    note="refunded by hand",
                )
            ],
        )
        outcome = await run(model)
        assert outcome.removed == 7
    finally:
        await model.stop()


async def test_the_size_cap_removes_the_oldest_ended_orchestrations_sooner(bus: Bus) -> None:
    for n in range(10):
        await append(bus, completed(f"o_{n:02d}"))
    await append(bus, [submitted("o_live"), planned("o_live")])
    for n in range(10, 20):
        await append(bus, completed(f"o_{n:02d}"))
    info = await bus.js.stream_info(bus.topology.events_stream)
    cap = info.state.bytes // 2
    # No age limit: only the size cap removes, and never past the running one.
    model = await started(bus, retention_max_age_s=0.0, retention_max_bytes=cap)
    try:
        outcome = await run(model, at=time.time())
        assert outcome.expired == 10
        assert outcome.held_by is not None
        assert "o_live is running" in outcome.held_by
        assert len(await history(bus, "o_live")) == 2
        await append(bus, [done("o_live")])
        outcome = await run(model, at=time.time())
        after = await bus.js.stream_info(bus.topology.events_stream)
        assert after.state.bytes <= cap
        assert outcome.expired >= 1
        assert await history(bus, "o_19") != []  # the newest stay
    finally:
        await model.stop()


async def test_events_the_saved_index_does_not_cover_stay(bus: Bus) -> None:
    await append(bus, completed("o_1"))
    model = await started(bus)
    try:
        retention = await settled(model)
        await append(bus, completed("o_2"))
        info = await bus.js.stream_info(bus.topology.events_stream)
        assert await model.index.wait_applied(info.state.last_seq, 20)
        # Folded, not saved yet: o_2's events stay.
        outcome = await retention.run_once(now=time.time() + LATER)
        assert outcome is not None
        assert outcome.expired == 1
        assert outcome.held_by is not None
        assert "saved list index" in outcome.held_by
        assert len(await history(bus, "o_2")) == 3
    finally:
        await model.stop()


async def test_a_lagging_replica_reloads_the_saved_index_after_a_removal(bus: Bus) -> None:
    await append(bus, completed("o_1"))
    leader = await started(bus)
    await settled(leader)
    lagging = await started(bus)  # the same generation: it loads the leader's head
    try:
        await settled(lagging)
        # The lagging replica stops reading; meanwhile the leader folds, saves, removes.
        assert lagging.index._follower is not None
        await lagging.index._follower.stop()
        await append(bus, [*completed("o_2"), submitted("o_3"), planned("o_3")])
        outcome = await run(leader)
        assert outcome.expired == 2
        # It reads on from where it was: the events it missed are gone.
        await lagging.index._subscribe(lagging.index.applied_seq)
        await append(bus, [done("o_3")])
        info = await bus.js.stream_info(bus.topology.events_stream)
        assert await lagging.index.wait_applied(info.state.last_seq, 20)
        got = await listed(lagging)
        assert list(got) == ["o_3", "o_2", "o_1"]
        assert got["o_3"]["status"] == "completed"
        assert got["o_2"]["expired"]
    finally:
        await leader.stop()
        await lagging.stop()


async def test_the_first_index_built_on_a_trimmed_log_lists_what_is_left(bus: Bus) -> None:
    await append(bus, completed("o_1") + completed("o_2"))
    await bus.js.purge_stream(bus.topology.events_stream, seq=4)
    model = await started(bus)
    try:
        await settled(model)
        assert list(await listed(model)) == ["o_2"]
    finally:
        await model.stop()


async def test_a_truncated_action_of_an_expired_line_is_listed_from_the_line(bus: Bus) -> None:
    long = "ship " + "x" * 400
    events: list[Event] = [submitted("o_long", action=long), planned("o_long"), done("o_long")]
    await append(bus, events)
    model = await started(bus)
    try:
        assert (await listed(model))["o_long"]["action"] == long
        await run(model)
        line = (await listed(model))["o_long"]
        assert line["expired"]
        assert line["action"] == long[:200]
        with pytest.raises(NotFoundError):
            await bus.js.get_msg(bus.topology.events_stream, seq=1)
    finally:
        await model.stop()


@pytest.fixture
def settings(nats_url: str, namespace: str) -> GatewaySettings:
    """The HTTP tests' gateway, with a retention of one second checked every 0.2 s."""
    return gateway_settings(
        nats_url,
        namespace,
        retention_max_age_s=1.0,
        retention_interval_s=0.2,
        snapshot_interval_s=0.2,
    )


@pytest.mark.usefixtures("planner")
async def test_over_http_an_expired_orchestration_is_its_summary_and_is_never_run_again(
    bus: Bus, client: httpx.AsyncClient
) -> None:
    headers = {"Idempotency-Key": "order-ORD1"}
    body = {"action": {"content": "ship the order"}, "data": [{"field": "orderId", "value": "1"}]}
    first = await client.post("/orchestrations", json=body, headers=headers)
    assert first.status_code == 201, first.text
    oid = first.json()["id"]
    await append(bus, [done(oid)])
    deadline = time.monotonic() + 20
    view: dict[str, Any] = {}
    while time.monotonic() < deadline:
        view = (await client.get(f"/orchestrations/{oid}")).json()
        if view.get("expired"):
            break
        await asyncio.sleep(0.2)
    assert view.get("expired"), view
    assert view["status"] == "completed"
    assert view["taskCount"] == 4
    assert view["tasks"] == []
    assert view["expiredAt"] >= view["finishedAt"] + 1.0
    assert await history(bus, oid) == []
    listing = (await client.get("/orchestrations")).json()
    assert [(i["id"], i["expired"]) for i in listing["items"]] == [(oid, True)]

    # The same request again: answered from the summary, not submitted a second time.
    again = await client.post("/orchestrations", json=body, headers=headers)
    assert again.status_code == 201, again.text
    assert again.headers["Idempotent-Replayed"] == "true"
    assert (again.json()["id"], again.json()["status"]) == (oid, "completed")
    await asyncio.sleep(0.5)
    assert await history(bus, oid) == []
    info = await bus.js.stream_info(bus.topology.events_stream)
    assert info.state.messages == 0

    # An expired orchestration has ended: it cannot be aborted.
    abort = await client.post(f"/orchestrations/{oid}/abort", json={})
    assert abort.status_code == 409, abort.text
    # The gateway's gauges count it (the registry its /metrics renders).
    assert "orra_gateway_retention_expired 1.0" in METRICS.render()


async def test_an_index_rebuilt_on_a_trimmed_log_does_not_go_back_to_the_head_it_replaces(
    bus: Bus,
) -> None:
    await append(bus, [*completed("o_1"), *completed("o_2"), submitted("o_3"), planned("o_3")])
    model = await started(bus)
    await settled(model)
    await model.stop()
    kv = await bus.kv(INDEX_BUCKET)
    head = msgspec.json.decode((await kv.get(HEAD_KEY)).value or b"", type=HeadRecord)
    # o_1 expired; then a page of the saved index turns out unreadable.
    await bus.js.purge_stream(bus.topology.events_stream, seq=4)
    (victim,) = head.active["acme"]
    await kv.put(f"{head.generation}.acme.{victim}", b"{not json")

    again = await started(bus)
    try:
        lines = await listed(again)
        assert list(lines) == ["o_3", "o_2"]
        assert again.index._generation != head.generation
        assert not again.index.rebuilding
    finally:
        await again.stop()
