from __future__ import annotations

import msgspec
import pytest

from orra_events.errors import MalformedEvent, UnsupportedVersion
from orra_events.jobs import DeliveryJob, decode_delivery_job, encode_job


def job(**overrides: object) -> DeliveryJob:
    fields: dict[str, object] = {
        "orchestration_id": "o_1",
        "project": "default",
        "url": "https://example.com/hook",
        "body": '{"orchestrationId":"o_1"}',
        "created_at": 1.5,
    }
    fields.update(overrides)
    return DeliveryJob(**fields)  # type: ignore[arg-type]


def test_round_trip_keeps_the_body_bytes_exactly() -> None:
    original = job()
    assert decode_delivery_job(encode_job(original)) == original


def test_a_job_written_before_versions_decodes_as_version_1() -> None:
    legacy = msgspec.json.encode(
        {k: v for k, v in msgspec.structs.asdict(job()).items() if k != "v"}
    )
    assert decode_delivery_job(legacy).v == 1


def test_a_missing_field_is_named() -> None:
    with pytest.raises(MalformedEvent, match="project"):
        decode_delivery_job(b'{"orchestration_id": "o_1"}')


def test_garbage_is_malformed() -> None:
    with pytest.raises(MalformedEvent, match="invalid delivery job"):
        decode_delivery_job(b"\x00not json")


def test_a_newer_version_says_to_upgrade() -> None:
    with pytest.raises(UnsupportedVersion, match="upgrade the notifier"):
        decode_delivery_job(encode_job(job(v=2)))
