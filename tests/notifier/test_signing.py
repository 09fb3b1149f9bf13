"""Standard Webhooks signing: the specification's reference vector, verify, rotation."""

from __future__ import annotations

import pytest

from orra_notifier import InvalidSecret, SignatureError
from orra_notifier.signing import (
    decode_secret,
    generate_secret,
    sign,
    signature_header,
    verify,
    webhook_headers,
)

# The reference example of the Standard Webhooks libraries.
SPEC_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SPEC_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SPEC_TS = 1614265330
SPEC_BODY = b'{"test": 2432232314}'
SPEC_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_sign_matches_the_reference_vector() -> None:
    assert sign(SPEC_SECRET, SPEC_ID, SPEC_TS, SPEC_BODY) == SPEC_SIGNATURE


def test_verify_accepts_the_reference_vector_among_other_signatures() -> None:
    headers = {
        "Webhook-Id": SPEC_ID,
        "Webhook-Timestamp": str(SPEC_TS),
        "Webhook-Signature": f"v1,bm90IGl0 v2,whatever {SPEC_SIGNATURE}",
    }
    verify(SPEC_SECRET, headers, SPEC_BODY, now=SPEC_TS + 10)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"webhook-signature": "v1,AAAA"}, "no signature matches"),
        ({"webhook-timestamp": str(SPEC_TS - 301)}, "tolerance"),
        ({"webhook-timestamp": "soon"}, "not an integer"),
        ({"webhook-id": "msg_other"}, "no signature matches"),
    ],
)
def test_verify_refuses_tampering(change: dict[str, str], message: str) -> None:
    headers = {
        "webhook-id": SPEC_ID,
        "webhook-timestamp": str(SPEC_TS),
        "webhook-signature": SPEC_SIGNATURE,
    } | change
    with pytest.raises(SignatureError, match=message):
        verify(SPEC_SECRET, headers, SPEC_BODY, now=SPEC_TS)


def test_verify_refuses_a_changed_body_and_a_missing_header() -> None:
    headers = webhook_headers([SPEC_SECRET], SPEC_ID, SPEC_TS, SPEC_BODY)
    with pytest.raises(SignatureError):
        verify(SPEC_SECRET, headers, SPEC_BODY + b" ", now=SPEC_TS)
    del headers["webhook-signature"]
    with pytest.raises(SignatureError, match="missing header webhook-signature"):
        verify(SPEC_SECRET, headers, SPEC_BODY, now=SPEC_TS)


def test_two_secrets_sign_twice_so_either_verifies() -> None:
    old, new = generate_secret(), generate_secret()
    header = signature_header([new, old], "msg_1", 100, b"{}")
    assert len(header.split()) == 2
    for secret in (old, new):
        verify(
            secret,
            {"webhook-id": "msg_1", "webhook-timestamp": "100", "webhook-signature": header},
            b"{}",
            now=100,
        )


def test_secrets_are_prefixed_base64_of_32_bytes() -> None:
    secret = generate_secret()
    assert secret.startswith("whsec_")
    assert len(decode_secret(secret)) == 32
    assert generate_secret() != secret


@pytest.mark.parametrize("bad", ["whsec_!!!", "whsec_", ""])
def test_bad_secrets_are_refused(bad: str) -> None:
    with pytest.raises(InvalidSecret):
        sign(bad, "msg", 1, b"")
    with pytest.raises(InvalidSecret):
        signature_header([], "msg", 1, b"")
