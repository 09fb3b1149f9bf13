"""Parking a malformed message of the services stream, read without acknowledgements."""

from __future__ import annotations

from orra_events import Bus
from orra_events.bus import HDR_ORIGINAL_SEQUENCE, HDR_ORIGINAL_STREAM, HDR_REASON
from orra_events.registry import park_registry_message


async def test_a_message_is_parked_once_even_past_the_duplicate_window(bus: Bus) -> None:
    t = bus.topology
    subject = t.subject("service.registered", "Broken")
    await bus.js.publish(subject, b"{not json")
    sub = await bus.js.subscribe(subject, stream=t.services_stream, ordered_consumer=True)
    try:
        original = await sub.next_msg(timeout=5)
    finally:
        await sub.unsubscribe()
    assert await park_registry_message(bus, original, "MalformedEvent: not JSON")
    parked = await bus.js.get_last_msg(t.dlq_stream, t.dead_letter(subject))
    headers = parked.headers or {}
    assert parked.data == b"{not json"
    assert headers[HDR_ORIGINAL_STREAM] == t.services_stream
    assert headers[HDR_ORIGINAL_SEQUENCE] == str(original.metadata.sequence.stream)
    assert headers[HDR_REASON] == "MalformedEvent: not JSON"
    # A replica or a restart finds the last parked copy and does not park it again.
    assert not await park_registry_message(bus, original, "again")
    info = await bus.js.stream_info(t.dlq_stream)
    assert info.state.messages == 1
