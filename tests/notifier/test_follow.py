"""The notifier's in-memory copies of the webhooks and secrets buckets stay current."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from orra_events import Bus, WebhookDelivered
from orra_events.records import (
    ProjectWebhooks,
    WebhookRecord,
    decode_signing_secret,
    encode_record,
    rotate_signing_secret,
)
from orra_notifier.follow import BucketFollower
from orra_notifier.signing import generate_secret, verify
from orra_notifier.stores import SECRETS_BUCKET, WEBHOOKS_BUCKET

from .helpers import done, outcomes
from .receiver import Receiver

if TYPE_CHECKING:
    from .conftest import StartNotifier


async def _until(check: object, timeout_s: float = 5.0) -> None:
    assert callable(check)
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "not seen in time"
        await asyncio.sleep(0.01)


async def test_a_follower_sees_puts_and_deletes_and_is_unsure_before_loading(bus: Bus) -> None:
    kv = await bus.kv(WEBHOOKS_BUCKET)
    await kv.put("before", b"1")
    follower = BucketFollower(bus, bus.topology.bucket(WEBHOOKS_BUCKET))
    assert follower.lookup("before") == (False, None)  # not loaded: read the bucket
    await follower.start()
    try:
        assert follower.lookup("before") == (True, b"1")
        assert follower.lookup("missing") == (True, None)
        await kv.put("later", b"2")
        await _until(lambda: follower.lookup("later") == (True, b"2"))
        await kv.delete("before")
        await _until(lambda: follower.lookup("before") == (True, None))
        await kv.put("before", b"3")
        await _until(lambda: follower.lookup("before") == (True, b"3"))
    finally:
        await follower.stop()


async def test_a_rotation_and_a_webhook_added_while_the_notifier_runs_are_used(
    bus: Bus, start_notifier: StartNotifier
) -> None:
    async with Receiver() as receiver:
        await start_notifier()
        await bus.publish(done("o_follow1", receiver.url("/action"), project="live"))
        await outcomes(bus, "o_follow1")  # the notifier made the project's first secret
        secrets, webhooks = await bus.kv(SECRETS_BUCKET), await bus.kv(WEBHOOKS_BUCKET)
        entry = await secrets.get("live")
        old = decode_signing_secret(entry.value or b"")
        new = generate_secret()
        # what the gateway does on a rotation and on POST /webhooks
        await secrets.update(
            "live", encode_record(rotate_signing_secret(old, new, time.time())), entry.revision
        )
        hook = WebhookRecord(id="wh_0123456789abcdef", url=receiver.url("/project"), created_at=0)
        await webhooks.put("live", encode_record(ProjectWebhooks(webhooks=[hook])))
        await asyncio.sleep(0.2)  # the copies follow the broker's push, not a poll

        await bus.publish(done("o_follow2", receiver.url("/action"), project="live"))
        found = await outcomes(bus, "o_follow2", count=2)
        later = receiver.requests[1:]

    assert all(isinstance(o, WebhookDelivered) for o in found)
    assert sorted(r.path for r in later) == ["/action", "/project"]
    for request in later:  # both secrets sign during the rotation's grace
        verify(new, request.headers, request.body, now=time.time())
        verify(old.secret, request.headers, request.body, now=time.time())
