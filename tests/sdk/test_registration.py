# ruff: noqa: N815 - camelCase wire field names, as in the seed
"""One definition per name and version: the SDK's side (real nats-server)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from orra_events import Bus, ServiceRegistered, TaskCompleted, decode
from orra_events.registrations import definition_hash
from orra_sdk import OrraClient, RegistrationConflict, Service, ServiceDefinitionError, Task
from tests.sdk.conftest import Dispatch, EventLog, work_left


class Order(BaseModel):
    orderId: str
    amount: float


class Charge(BaseModel):
    transactionId: str


class OtherOrder(BaseModel):
    orderId: str
    amount: float
    currency: str


def payments(
    *,
    input: type[BaseModel] = Order,  # noqa: A002 - as Service's keyword
    calls: list[str] | None = None,
    **kw: Any,
) -> Service[Any, Charge]:
    svc: Service[Any, Charge] = Service(
        name=kw.pop("name", "PaymentService"),
        description=kw.pop("description", "Charge a customer for an order."),
        input=input,
        output=Charge,
        **kw,
    )

    @svc.handler
    async def charge(task: Task[Any]) -> Charge:
        if calls is not None:
            calls.append(f"{svc.version}:{task.task_id}")
        return Charge(transactionId=f"TXN-{task.input.orderId}")

    return svc


async def stored(bus: Bus, name: str, version: str) -> ServiceRegistered:
    raw = await bus.js.get_last_msg(
        bus.topology.services_stream,
        bus.topology.service_subject("service.registered", name, version),
    )
    event = decode(raw.data or b"")
    assert isinstance(event, ServiceRegistered)
    return event


# --- declaring -----------------------------------------------------------------------------


def test_examples_are_declared_with_the_service_and_normalised() -> None:
    svc = payments(examples=["charge  the card ", "take the money"])
    assert svc.examples == ("charge the card", "take the money")
    without = payments()
    assert without.examples == ()
    assert svc.schema_hash != without.schema_hash  # examples are part of the definition


@pytest.mark.parametrize(
    ("examples", "message"),
    [
        ("charge the card", r"examples must be a list of phrases \(strings\), got str"),
        (["charge", ""], r"examples\[1\] is empty"),
        (["charge", 3], r"examples\[1\] is int, not a phrase"),
        (["x" * 201], r"examples\[0\] has 201 characters; at most 200"),
        (["charge\nthe card"], r"examples\[0\] contains a line break"),
        (["Charge the card", "charge the  card"], r"examples\[1\] repeats examples\[0\]"),
        (["..."], r"examples\[0\] has no letter or digit"),
        ([f"phrase {i}" for i in range(21)], r"examples has 21 phrases; at most 20"),
    ],
)
def test_a_malformed_examples_list_is_refused_with_a_specific_error(
    examples: Any, message: str
) -> None:
    with pytest.raises(ServiceDefinitionError, match=f"^PaymentService: .*{message}"):
        payments(examples=examples)


def test_every_problem_of_an_examples_list_is_named_at_once() -> None:
    with pytest.raises(ServiceDefinitionError) as caught:
        payments(examples=["", "ok", "OK"])
    assert "examples[0] is empty" in str(caught.value)
    assert "examples[2] repeats examples[1]" in str(caught.value)


@pytest.mark.parametrize("version", ["beta", "1.0-rc1", "", "1..2", "1.2.3.4.5", "-1"])
def test_a_version_that_is_not_dotted_numbers_is_refused(version: str) -> None:
    with pytest.raises(ServiceDefinitionError, match="is not a version: use dotted numbers"):
        payments(version=version)


def test_versions_are_canonical() -> None:
    assert payments(version="v1.0").version == "1"
    assert payments(version="2.10.0").version == "2.10"
    assert payments(version="v1.0").schema_hash == payments(version="1").schema_hash


def test_the_sdk_hash_is_the_registry_rule_s_hash() -> None:
    svc = payments(examples=["bill the card"], version="3")
    assert svc.schema_hash == definition_hash(
        name="PaymentService",
        description="Charge a customer for an order.",
        input_schema=Order.model_json_schema(),
        output_schema=Charge.model_json_schema(),
        revertible=False,
        version="3",
        kind="service",
        examples=["bill the card"],
    )


# --- registering ---------------------------------------------------------------------------


async def test_the_registration_carries_the_examples(bus: Bus, make_client: Any) -> None:
    client = make_client()
    await client.connect()
    await client.start(payments(examples=["bill the card"], version="2"))
    event = await stored(bus, "PaymentService", "2")
    assert event.examples == ["bill the card"]
    assert event.version == "2"


async def test_another_definition_of_a_registered_name_and_version_is_refused(
    bus: Bus, make_client: Any
) -> None:
    first = make_client()
    await first.connect()
    await first.start(payments())

    second = make_client()
    await second.connect()
    with pytest.raises(RegistrationConflict) as caught:
        await second.start(payments(input=OtherOrder, description="Take a payment."))
    message = str(caught.value)
    assert message.startswith("service PaymentService version 1 is already registered")
    assert "description and input schema differ" in message
    assert "give this service another name" in message
    assert 'raise its version above every registered one (version="2")' in message
    assert not second.ready
    # the registered definition stays, and only it
    kept = await stored(bus, "PaymentService", "1")
    assert kept.input_schema == Order.model_json_schema()
    assert (await bus.js.stream_info(bus.topology.services_stream)).state.messages == 1


async def test_the_suggested_version_is_above_every_registered_one(
    bus: Bus, make_client: Any
) -> None:
    for version in ("1", "3"):
        client = make_client()
        await client.connect()
        await client.start(payments(version=version))
    late = make_client()
    await late.connect()
    with pytest.raises(RegistrationConflict, match=r'version="4" \(registered: 1, 3\)'):
        await late.start(payments(input=OtherOrder, version="1"))


async def test_replicas_of_one_definition_share_the_name(bus: Bus, make_client: Any) -> None:
    clients = [make_client() for _ in range(3)]
    for client in clients:
        await client.connect()
    await asyncio.gather(*(c.start(payments(examples=["bill the card"])) for c in clients))
    assert all(c.ready for c in clients)
    assert (await bus.js.stream_info(bus.topology.services_stream)).state.messages == 1


@pytest.mark.parametrize("attempt", range(5))
async def test_of_two_conflicting_registrations_at_once_exactly_one_wins(
    bus: Bus, make_client: Any, attempt: int
) -> None:
    name = f"Race{attempt}"
    a, b = make_client(), make_client()
    await asyncio.gather(a.connect(), b.connect())
    defs = (payments(name=name), payments(name=name, input=OtherOrder))
    results = await asyncio.gather(a.start(defs[0]), b.start(defs[1]), return_exceptions=True)
    refused = [r for r in results if isinstance(r, RegistrationConflict)]
    assert len(refused) == 1, results
    assert sum(r is None for r in results) == 1, results
    winner = defs[results.index(None)]
    kept = await stored(bus, name, "1")
    assert kept.schema_hash == winner.schema_hash
    assert [c.ready for c in (a, b)] == [r is None for r in results]


async def test_losing_the_race_after_the_check_is_a_conflict_too(
    bus: Bus, make_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another program registers between this one's look and its append: the broker refuses
    the append (expected last subject sequence 0) and the stored definition decides."""
    winner = make_client()
    await winner.connect()
    loser: OrraClient = make_client()
    await loser.connect()
    looked = loser._registered
    calls = 0

    async def look_then_lose(event: ServiceRegistered) -> Any:
        nonlocal calls
        calls += 1
        if calls == 1:
            await winner.start(payments())  # lands between the look and the append
            return None
        return await looked(event)

    monkeypatch.setattr(loser, "_registered", look_then_lose)
    with pytest.raises(RegistrationConflict, match="input schema differs"):
        await loser.start(payments(input=OtherOrder))
    assert calls == 2
    assert (await stored(bus, "PaymentService", "1")).input_schema == Order.model_json_schema()


async def test_a_registration_stored_before_versioned_subjects_counts(
    bus: Bus, make_client: Any
) -> None:
    """A registration on ``service.registered.<name>`` (older SDKs) holds its version too."""
    old = payments(input=OtherOrder)
    legacy = ServiceRegistered(
        event_id="reg:old",
        service="PaymentService",
        description=old.description,
        input_schema=old.input_schema,
        output_schema=old.output_schema,
        version="1",
        schema_hash=old.schema_hash,
    )
    await bus.publish(
        legacy, subject=bus.topology.service_subject("service.registered", "PaymentService", None)
    )
    client = make_client()
    await client.connect()
    with pytest.raises(RegistrationConflict, match="input schema differs"):
        await client.start(payments())
    # the same definition is the same registration: it starts
    same = make_client()
    await same.connect()
    await same.start(payments(input=OtherOrder))
    assert same.ready


async def test_a_refused_service_takes_no_task(
    bus: Bus, make_client: Any, dispatch: Dispatch
) -> None:
    """Refused at start, before its consumer exists: the queued task waits for the right one."""
    registered = payments(input=OtherOrder)
    await bus.publish(
        ServiceRegistered(
            event_id="reg:first",
            service="PaymentService",
            description=registered.description,
            input_schema=registered.input_schema,
            output_schema=registered.output_schema,
            version="1",
        )
    )
    await dispatch("PaymentService", "pay", {"orderId": "O1", "amount": 1, "currency": "EUR"})
    calls: list[str] = []
    client = make_client()
    await client.connect()
    with pytest.raises(RegistrationConflict):
        await client.start(payments(calls=calls))
    await asyncio.sleep(0.3)
    assert calls == []
    assert await work_left(bus, timeout=0.5) == 1


# --- versions of tasks ---------------------------------------------------------------------


async def test_a_task_runs_only_on_a_replica_of_the_version_it_was_planned_against(
    make_client: Any, dispatch: Dispatch, events: EventLog
) -> None:
    calls: list[str] = []
    v2 = make_client(max_deliveries=2)
    await v2.connect()
    await v2.start(payments(input=OtherOrder, version="2", calls=calls))
    await dispatch("PaymentService", "old", {"orderId": "O1", "amount": 1}, version="1")
    await dispatch(
        "PaymentService",
        "new",
        {"orderId": "O2", "amount": 2, "currency": "EUR"},
        version="2",
        orchestration_id="o_new",
    )
    await events.wait(TaskCompleted, task_id="new")
    # handed back more than max_deliveries times: not a poison task, nothing ran it
    await asyncio.sleep(1.5)
    assert calls == ["2:new"]
    v1 = make_client(max_deliveries=2)
    await v1.connect()
    await v1.start(payments(version="1", calls=calls))
    (done,) = await events.wait(TaskCompleted, task_id="old", timeout=15)
    assert done.output == {"transactionId": "TXN-O1"}
    assert calls == ["2:new", "1:old"]


# --- the process ---------------------------------------------------------------------------

_PROGRAM = """
from pydantic import BaseModel
import orra_sdk
from orra_sdk import Service, Task


class Order(BaseModel):
    orderId: str
    total: int


class Charge(BaseModel):
    transactionId: str


payments = Service(name="PaymentService", description="Charge an order.", input=Order,
                   output=Charge, version="1")


@payments.handler
async def charge(task: Task[Order]) -> Charge:
    return Charge(transactionId="x")


orra_sdk.run(payments)
"""


async def test_a_refused_program_exits_with_the_conflict_and_the_fix(
    bus: Bus, make_client: Any, nats_url: str, namespace: str, tmp_path: Path
) -> None:
    first = make_client()
    await first.connect()
    await first.start(payments())
    program = tmp_path / "payments.py"
    program.write_text(textwrap.dedent(_PROGRAM))
    env = {**os.environ, "ORRA_NATS_URL": nats_url, "ORRA_NAMESPACE": namespace}
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, str(program)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert "orra: cannot start: service PaymentService version 1 is already registered" in (
        done.stderr
    )
    assert "give this service another name, or raise its version" in done.stderr
    assert (await stored(bus, "PaymentService", "1")).schema_hash == payments().schema_hash


async def test_a_client_refused_once_can_serve_another_name(make_client: Any) -> None:
    first: OrraClient = make_client()
    await first.connect()
    await first.start(payments())
    second: OrraClient = make_client()
    await second.connect()
    with pytest.raises(RegistrationConflict):
        await second.start(payments(input=OtherOrder))
    await second.start(payments(input=OtherOrder, name="CardCharger"))
    assert second.ready
