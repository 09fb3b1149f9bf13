"""The registry's rules, written once: versions, examples, the definition hash, first wins.

The SDK (``orra_sdk.Service`` and ``OrraClient.register``) and the followers (planner,
dispatcher, gateway) must agree on every one of them: the property tests below check it.
"""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nats.js.api import StorageType, StreamConfig
from pydantic import BaseModel

from orra_events import Bus, ServiceHeartbeat, ServiceRegistered, Topology, decode_as, encode
from orra_events.errors import InvalidSetting, InvalidVersion
from orra_events.liveness import (
    Liveness,
    LivenessSettings,
    down_reason,
    format_duration,
    health_of,
)
from orra_events.registrations import (
    MAX_EXAMPLES,
    RegistrationBook,
    conflict_message,
    example_problems,
    registration_hash,
    registration_problem,
)
from orra_events.registry import registry_problem
from orra_events.versions import (
    canonical_version,
    parse_version,
    version_from_token,
    version_token,
)
from orra_sdk import Service, ServiceDefinitionError
from orra_sdk.client import _registration

# --- versions ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "canonical"),
    [("1", "1"), ("v2", "2"), ("1.0", "1"), ("V1.0.0", "1"), ("01.20", "1.20"), ("0", "0")],
)
def test_canonical_versions(text: str, canonical: str) -> None:
    assert canonical_version(text) == canonical


@pytest.mark.parametrize("text", ["", "beta", "1.0-rc1", "1..2", ".1", "1.", "1.2.3.4.5", "x1"])
def test_what_is_not_a_version_is_refused_saying_what_is(text: str) -> None:
    with pytest.raises(InvalidVersion, match=r"use dotted numbers such as 1, 2 or 1\.4\.2"):
        parse_version(text)


def test_versions_compare_number_by_number() -> None:
    ordered = ["0.9", "1", "1.2", "1.9", "1.10", "2", "10"]
    assert sorted(ordered, key=parse_version) == ordered
    assert parse_version("1.0") == parse_version("1")


_versions = st.lists(st.integers(0, 10**9 - 1), min_size=1, max_size=4).map(
    lambda parts: ".".join(str(p) for p in parts)
)


@given(_versions)
def test_a_version_survives_its_subject_token(version: str) -> None:
    assert version_from_token(version_token(version)) == canonical_version(version)
    assert parse_version(canonical_version(version)) == parse_version(version)
    assert (
        Topology()
        .service_subject("service.registered", "S", version)
        .endswith("." + version_token(version))
    )


# --- examples ------------------------------------------------------------------------------


def test_every_problem_of_an_examples_list_is_named() -> None:
    assert example_problems(["charge the card", "bill the card"]) == []
    assert example_problems(("a tuple", "works")) == []
    assert example_problems("charge") == [
        "examples must be a list of phrases (strings), got str: wrap the phrase in a list"
    ]
    assert example_problems({"a": 1}) == ["examples must be a list of phrases (strings), got dict"]
    assert example_problems(["ok", "", None, "é" * 201, "tab\there", "--", "OK"]) == [
        "examples[1] is empty",
        "examples[2] is NoneType, not a phrase (a string)",
        "examples[3] has 201 characters; at most 200 (one short phrase per example)",
        "examples[4] contains a line break or another control character",
        "examples[5] has no letter or digit: '--'",
        "examples[6] repeats examples[0] ('OK')",
    ]
    assert example_problems(["p"] * 0 + [f"p{i}" for i in range(MAX_EXAMPLES + 1)]) == [
        f"examples has {MAX_EXAMPLES + 1} phrases; at most {MAX_EXAMPLES}"
    ]


class _In(BaseModel):
    orderId: str  # noqa: N815 - a wire name


class _Out(BaseModel):
    ok: bool


_phrases = st.lists(
    st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=12), max_size=4
)


@settings(max_examples=200, deadline=None)
@given(examples=_phrases, version=st.sampled_from(["1", "v2", "1.0", "beta", "2.x", "3.1.4"]))
def test_the_sdk_and_the_followers_agree_on_what_a_registration_may_hold(
    examples: list[str], version: str
) -> None:
    """A definition the SDK accepts, every follower accepts, with the same hash; and back."""
    raw = ServiceRegistered(
        event_id="reg:raw",
        service="Svc",
        description="d",
        input_schema={},
        output_schema={},
        version=version,
        examples=examples,
    )
    followers_refuse = registration_problem(raw) is not None
    try:
        svc: Service[Any, Any] = Service(
            name="Svc",
            description="d",
            input=_In,
            output=_Out,
            version=version,
            examples=examples,
        )
    except ServiceDefinitionError:
        assert followers_refuse  # the SDK refuses exactly what every follower refuses
        return
    assert not followers_refuse
    event = _registration(svc, "default", f"reg:Svc:{svc.schema_hash}")
    topology = Topology()
    assert registry_problem(topology, event, topology.subject_for(event)) is None
    assert registration_hash(event) == svc.schema_hash
    book = RegistrationBook()
    assert book.apply(event).accepted
    # a replica of the same definition is the same registration
    assert not book.apply(msgspec.structs.replace(event, event_id="reg:again")).refused


# --- the rule ------------------------------------------------------------------------------


def _definition(name: str, version: str, variant: int, project: str = "default") -> Any:
    return ServiceRegistered(
        event_id=f"reg:{name}:{version}:{variant}",
        service=name,
        project=project,
        description=f"variant {variant}",
        input_schema={"type": "object", "title": f"v{variant}"},
        output_schema={},
        version=version,
    )


_registrations = st.lists(
    st.tuples(
        st.sampled_from(["A", "B"]),
        st.sampled_from(["1", "1.0", "2"]),
        st.integers(0, 2),
        st.sampled_from(["default", "acme"]),
    ),
    max_size=12,
)


@given(_registrations)
def test_the_first_definition_of_each_name_and_version_counts(
    sequence: list[tuple[str, str, int, str]],
) -> None:
    book = RegistrationBook()
    first: dict[tuple[str, str], tuple[int, str]] = {}
    for name, version, variant, project in sequence:
        key = (name, canonical_version(version))
        verdict = book.apply(_definition(name, version, variant, project))
        kept = first.setdefault(key, (variant, project))
        assert verdict.accepted == ((variant, project) == kept and verdict.accepted)
        assert verdict.refused == ((variant, project) != kept)
    for (name, version), (variant, project) in first.items():
        registration = book.get(name, version)
        assert registration is not None
        assert registration.event.description == f"variant {variant}"
        assert registration.event.project == project
    # folding the same stream again (a restart) keeps the same registrations
    again = RegistrationBook()
    for name, version, variant, project in sequence:
        again.apply(_definition(name, version, variant, project))
    assert {(n, r.version, r.digest) for n in book.names for r in book.versions(n)} == {
        (n, r.version, r.digest) for n in again.names for r in again.versions(n)
    }


def test_the_conflict_message_names_the_conflict_and_both_ways_out() -> None:
    registered = _definition("PaymentService", "2", 0)
    refused = msgspec.structs.replace(
        _definition("PaymentService", "2", 1), revertible=True, examples=["bill"]
    )
    message = conflict_message(registered, refused, versions=["1", "2"])
    assert message == (
        "service PaymentService version 2 is already registered with another definition "
        "(description, input schema, revertible and examples differ); one name and version "
        "has one definition, so this registration is refused and the registered one stays. "
        "Fix: give this service another name, or raise its version above every registered "
        'one (version="3" (registered: 1, 2)) to replace it for new plans.'
    )


def test_a_registration_with_a_bad_version_or_examples_is_malformed() -> None:
    event = _definition("A", "1", 0)
    assert registration_problem(event) is None
    bad = msgspec.structs.replace(event, version="beta", examples=["", "x"])
    problem = registration_problem(bad)
    assert problem is not None
    assert problem.startswith("registration of A refused: version 'beta' is not a version")
    assert problem.endswith("; examples[0] is empty")
    assert RegistrationBook().apply(bad).reason == problem


def test_registrations_and_heartbeats_live_on_versioned_subjects() -> None:
    t = Topology(namespace="t1")
    event = _definition("A", "1.4.0", 0)
    assert t.subject_for(event) == "t1.service.registered.A.1_4"
    assert registry_problem(t, event, "t1.service.registered.A.1_4") is None
    assert registry_problem(t, event, "t1.service.registered.A") is None  # older subject
    assert registry_problem(t, event, "t1.service.registered.A.2") == (
        "service.registered event for A on subject t1.service.registered.A.2"
    )
    beat = ServiceHeartbeat(event_id="hb", service="A", instance_id="i", interval_s=1, version="2")
    assert t.subject_for(beat) == "t1.service.heartbeat.A.2"
    unversioned = msgspec.structs.replace(beat, version=None)
    assert t.subject_for(unversioned) == "t1.service.heartbeat.A"
    broken = msgspec.structs.replace(beat, version="two")
    problem = registry_problem(t, broken, "t1.service.heartbeat.A")
    assert problem is not None
    assert "version 'two' is not a version" in problem


# --- liveness ------------------------------------------------------------------------------

LIVE = LivenessSettings(factor=3.0, down_after_s=300.0)


@pytest.mark.parametrize(
    ("beat_age", "registered_age", "health"),
    [
        (1.0, 999.0, "healthy"),
        (15.0, 999.0, "healthy"),
        (16.0, 999.0, "unhealthy"),
        (299.0, 999.0, "unhealthy"),
        (300.0, 999.0, "down"),
        (None, 10.0, "unknown"),
        (None, 300.0, "down"),
    ],
)
def test_health_of(beat_age: float | None, registered_age: float, health: str) -> None:
    now = 10_000.0
    assert (
        health_of(
            last_beat_at=None if beat_age is None else now - beat_age,
            interval_s=None if beat_age is None else 5.0,
            registered_at=now - registered_age,
            now=now,
            settings=LIVE,
        )
        == health
    )


def test_down_reasons_read_well() -> None:
    assert format_duration(45) == "45 s"
    assert format_duration(300) == "5 min"
    assert format_duration(7800) == "2 h 10 min"
    assert format_duration(3 * 86400) == "3 days"
    assert down_reason("PaymentService", 0.0, 300.0) == (
        "PaymentService has had no live instance for 5 min"
    )


def test_heartbeats_by_version_and_unversioned_ones() -> None:
    liveness = Liveness()

    def beat(at: float, version: str | None) -> ServiceHeartbeat:
        return ServiceHeartbeat(
            event_id=f"hb{at}", service="A", instance_id="i", interval_s=5, at=at, version=version
        )

    liveness.observe(beat(10.0, "1"))
    liveness.observe(beat(20.0, "2"))
    liveness.observe(beat(5.0, "2"))  # late: ignored
    b2, b1 = liveness.last_beat("A", "2"), liveness.last_beat("A", "1")
    assert b2 is not None
    assert b1 is not None
    assert (b2.at, b1.at) == (20.0, 10.0)
    assert liveness.last_beat("A") == b2
    liveness.observe(beat(30.0, None))  # an older SDK: counts for every version
    b1 = liveness.last_beat("A", "1")
    assert b1 is not None
    assert b1.at == 30.0


def test_liveness_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ORRA_HEALTH_FACTOR", raising=False)
    monkeypatch.delenv("ORRA_DISPATCHER_HEALTH_FACTOR", raising=False)
    monkeypatch.delenv("ORRA_SERVICE_DOWN_AFTER_S", raising=False)
    assert LivenessSettings.from_env() == LivenessSettings(factor=3.0, down_after_s=300.0)
    monkeypatch.setenv("ORRA_DISPATCHER_HEALTH_FACTOR", "4")
    assert LivenessSettings.from_env().factor == 4.0
    monkeypatch.setenv("ORRA_HEALTH_FACTOR", "5")
    monkeypatch.setenv("ORRA_SERVICE_DOWN_AFTER_S", "60")
    assert LivenessSettings.from_env() == LivenessSettings(factor=5.0, down_after_s=60.0)
    monkeypatch.setenv("ORRA_SERVICE_DOWN_AFTER_S", "0")
    with pytest.raises(InvalidSetting, match=r"ORRA_SERVICE_DOWN_AFTER_S=0\.0 must be positive"):
        LivenessSettings.from_env()
    monkeypatch.setenv("ORRA_SERVICE_DOWN_AFTER_S", "soon")
    with pytest.raises(InvalidSetting, match="ORRA_SERVICE_DOWN_AFTER_S='soon' is not a number"):
        LivenessSettings.from_env()


# --- upgrading an installation -------------------------------------------------------------


async def test_a_services_stream_of_the_older_layout_keeps_its_registrations(bus: Bus) -> None:
    """``service.>`` held registrations and heartbeats; the registrations must not be lost."""
    t = bus.topology
    for stream in (t.services_stream, t.heartbeats_stream):
        await bus.js.delete_stream(stream)
    await bus.js.add_stream(
        StreamConfig(
            name=t.services_stream,
            subjects=[t.subject("service", ">")],
            max_msgs_per_subject=1,
            storage=StorageType.FILE,
        )
    )
    old = _definition("PaymentService", "1", 0)
    legacy = t.service_subject("service.registered", "PaymentService", None)
    await bus.publish(old, subject=legacy)
    await bus.js.publish(t.service_subject("service.heartbeat", "PaymentService", None), b"{}")

    await bus.ensure_streams()
    await bus.ensure_streams()  # and again, as every process does at start

    info = await bus.js.stream_info(t.services_stream)
    assert info.config.subjects == [t.registrations_filter()]
    assert info.config.discard_new_per_subject is True
    assert info.state.messages == 1  # the registration stayed, the old heartbeat went
    assert (await bus.js.stream_info(t.heartbeats_stream)).state.messages == 0
    kept = await bus.js.get_last_msg(t.services_stream, legacy)
    assert kept.data == encode(old)
    # it still counts: another definition of PaymentService 1 cannot take its place
    book = RegistrationBook()
    assert book.apply(decode_as(kept.data, ServiceRegistered)).accepted
    assert book.apply(_definition("PaymentService", "1", 1)).refused
