"""One compare-and-set predicate for both ways a write is refused, and one dead-letter copy.

The planner and the gateway publish through nats-py (a refusal is an ``APIError``); the
dispatcher's snapshot store and the SDK's result store through the connection's pipelined
publisher (a refusal is a ``PublishError``). Both must see the same stale write as a
conflict, and nothing else as one.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from nats.aio.msg import Msg
from nats.js.errors import APIError

from orra_events import Bus
from orra_events.deadletter import (
    HDR_ORIGINAL_SEQUENCE,
    HDR_ORIGINAL_STREAM,
    HDR_REASON,
    dead_letter_headers,
)
from orra_events.publishing import PublishError, is_cas_conflict
from orra_events.registry import park_registry_message
from tests.factories import task_completed

STALE = {"Nats-Expected-Last-Subject-Sequence": "0"}


@given(st.none() | st.sampled_from([0, 10060, 10071, 10077, 10164]) | st.integers(0, 20_000))
def test_only_the_wrong_last_sequence_codes_are_conflicts(err_code: int | None) -> None:
    assert is_cas_conflict(err_code) == (err_code in {10071, 10164})
    if err_code is not None:
        assert PublishError(400, err_code, "refused").conflict == is_cas_conflict(err_code)


async def test_a_stale_write_is_a_conflict_through_either_publisher(bus: Bus) -> None:
    event = task_completed(orchestration_id="o_cas")
    subject = bus.topology.subject_for(event)
    await bus.publish(event, expected_last_subject_seq=0)
    with pytest.raises(APIError) as refused:
        await bus.js.publish(subject, b"late", headers=STALE)
    assert is_cas_conflict(refused.value.err_code)
    await bus.publisher.start()
    (result,) = await bus.publisher.publish(subject, b"late", STALE)
    assert isinstance(result, PublishError)
    assert result.err_code == refused.value.err_code
    assert result.conflict


async def test_a_stale_key_value_revision_is_a_conflict_through_either_publisher(
    bus: Bus,
) -> None:
    kv = await bus.kv("cas_predicate")
    await kv.put("k", b"1")
    revision = await kv.put("k", b"2")
    subject = f"$KV.{bus.topology.bucket('cas_predicate')}.k"
    stale = {"Nats-Expected-Last-Subject-Sequence": str(revision - 1)}
    with pytest.raises(APIError) as refused:
        await bus.js.publish(subject, b"3", headers=stale)
    assert is_cas_conflict(refused.value.err_code)
    await bus.publisher.start()
    (result,) = await bus.publisher.publish(subject, b"3", stale)
    assert isinstance(result, PublishError)
    assert result.conflict


async def test_another_refusal_is_no_conflict_through_either_publisher(bus: Bus) -> None:
    event = task_completed(orchestration_id="o_other")
    subject = bus.topology.subject_for(event)
    wrong_stream = {"Nats-Expected-Stream": "NOT_THIS_ONE"}
    with pytest.raises(APIError) as refused:
        await bus.js.publish(subject, b"x", headers=wrong_stream)
    assert not is_cas_conflict(refused.value.err_code)
    await bus.publisher.start()
    (result,) = await bus.publisher.publish(subject, b"x", wrong_stream)
    assert isinstance(result, PublishError)
    assert not result.conflict


async def _stored(bus: Bus, subject: str, data: bytes) -> Msg:
    t = bus.topology
    await bus.js.publish(subject, data, headers={"Orra-Trace": "x"})
    sub = await bus.js.subscribe(subject, stream=t.services_stream, ordered_consumer=True)
    try:
        msgs = [await sub.next_msg(timeout=5)]
        while msgs[-1].data != data:
            msgs.append(await sub.next_msg(timeout=5))
    finally:
        await sub.unsubscribe()
    return msgs[-1]


async def test_a_consumer_and_a_registry_follower_park_the_same_copy(bus: Bus) -> None:
    """``Bus.park`` and the registry followers build the parked copy's headers in one place:
    whichever parks a message first, the other's copy is recognised or deduplicated."""
    t = bus.topology
    subject = t.subject("service.registered", "Broken")
    reason = "MalformedEvent: not JSON"

    first = await _stored(bus, subject, b"{not json 1")
    await bus.park(first, reason)
    assert not await park_registry_message(bus, first, reason)  # already parked
    parked = await bus.js.get_last_msg(t.dlq_stream, t.dead_letter(subject))
    assert parked.headers == dead_letter_headers(first, reason)
    headers = parked.headers or {}
    assert headers[HDR_REASON] == reason
    assert headers[HDR_ORIGINAL_STREAM] == t.services_stream
    assert headers[HDR_ORIGINAL_SEQUENCE] == str(first.metadata.sequence.stream)
    assert headers["Orra-Trace"] == "x"

    subject = t.subject("service.registered", "AlsoBroken")  # one message per subject
    second = await _stored(bus, subject, b"{not json 2")
    assert await park_registry_message(bus, second, reason)
    await bus.park(second, reason)  # the same Nats-Msg-Id: stored once
    parked = await bus.js.get_last_msg(t.dlq_stream, t.dead_letter(subject))
    assert parked.headers == dead_letter_headers(second, reason)
    assert (await bus.js.stream_info(t.dlq_stream)).state.messages == 2
