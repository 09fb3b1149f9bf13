"""The connection of a service process to Orra: registration, heartbeats, task workers.

Stop signals: the client follows ``orchestration.aborted.*``, ``orchestration.failed.*``
and ``orchestration.compensating.*`` with plain (core NATS) subscriptions to the event
subjects, and asks its workers to stop the running handlers of that orchestration. The
signal is best effort (a process that misses it lets the handler finish; the dispatcher
ignores the result of an ended orchestration, and compensates it if it completed).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from typing import TYPE_CHECKING, Any, Final, Self

import structlog
from nats.js.errors import APIError, NotFoundError

from orra_events import (
    Bus,
    DecodeError,
    OrchestrationAborted,
    OrchestrationCompensating,
    OrchestrationFailed,
    ServiceHeartbeat,
    ServiceRegistered,
    Topology,
    decode,
    ids,
    new_event_id,
)
from orra_events.bus import DEFAULT_NATS_URL, BrokerUnavailable
from orra_events.publishing import is_cas_conflict
from orra_events.registrations import conflict_message, same_definition
from orra_events.registry import registry_problem
from orra_events.runtime import env_bool, env_float, env_int
from orra_events.versions import canonical_version, version_from_token
from orra_sdk._results import ResultStore
from orra_sdk._worker import ServiceWorker
from orra_sdk.errors import (
    ClientClosed,
    OrraSdkError,
    RegistrationConflict,
    ServiceDefinitionError,
)
from orra_sdk.service import Service

if TYPE_CHECKING:
    from types import TracebackType

    from nats.aio.msg import Msg
    from nats.aio.subscription import Subscription

__all__ = ["RESULTS_BUCKET", "OrraClient"]

log = structlog.get_logger("orra.sdk")

RESULTS_BUCKET = "sdk_results"
"""KV bucket (within the namespace) of task claims and recorded results."""

AnyService = Service[Any, Any]

_MAX_PER_SUBJECT: Final = 10077
"""JetStream error of a message beyond the stream's maximum per subject (a registration
whose subject holds one already, refused by the stream's own rule)."""

STOP_SIGNALS = ("orchestration.aborted", "orchestration.failed", "orchestration.compensating")
"""Events after which the running tasks of an orchestration are told to stop."""


class OrraClient:
    """Connects services and agents to Orra and runs their tasks.

    Use it as an async context manager; one client (one process) can host several
    services, and several processes hosting the same service share its tasks::

        async with OrraClient("nats://127.0.0.1:4222") as client:
            await client.serve(payment, inventory)

    Args:
        nats_url: Broker URL; ``ORRA_NATS_URL`` or ``nats://127.0.0.1:4222`` by default.
        namespace: Orra namespace; ``ORRA_NAMESPACE`` or ``""`` (production) by default.
        project: Project the services are registered in.
        heartbeat_interval_s: Seconds between ``service.heartbeat`` events;
            ``ORRA_HEARTBEAT_INTERVAL_S`` or 5 by default. The dispatcher holds the tasks
            of a service that missed 3 intervals.
        ack_wait_s: Seconds the broker waits for news of a task before redelivering it;
            running tasks are kept alive with in-progress acks every third of it.
        concurrency: Tasks run at once per service, unless the service sets its own.
        drain_timeout_s: On stop, how long running tasks may finish before they are
            abandoned (and redelivered to another replica).
        pull_expires_s: Lifetime of one pull request to the broker.
        max_deliveries: A task delivered more often than this (its process died each
            time) is failed as not retryable instead of being run again.
        results_ttl_s: How long recorded results (the idempotency record) are kept.
        manage_streams: Create the streams when missing (``ORRA_MANAGE_STREAMS``, on by
            default); when off, wait for them to exist.
        name: Connection name shown by the broker.
    """

    def __init__(
        self,
        nats_url: str | None = None,
        *,
        namespace: str | None = None,
        project: str = "default",
        heartbeat_interval_s: float | None = None,
        ack_wait_s: float = 30.0,
        concurrency: int = 64,
        drain_timeout_s: float = 10.0,
        pull_expires_s: float = 10.0,
        max_deliveries: int = 5,
        results_ttl_s: float = 7 * 24 * 3600.0,
        manage_streams: bool | None = None,
        name: str = "orra-sdk",
    ) -> None:
        if concurrency < 1:
            raise ServiceDefinitionError("concurrency must be at least 1")
        if heartbeat_interval_s is None:
            heartbeat_interval_s = env_float("ORRA_HEARTBEAT_INTERVAL_S", 5.0)
        if ack_wait_s <= 0 or heartbeat_interval_s <= 0:
            raise ServiceDefinitionError("ack_wait_s and heartbeat_interval_s must be positive")
        self.nats_url = nats_url or os.environ.get("ORRA_NATS_URL", DEFAULT_NATS_URL)
        self.topology = Topology(
            namespace=namespace if namespace is not None else os.environ.get("ORRA_NAMESPACE", ""),
            # As every Orra process: a service that creates or updates the streams must not
            # turn the R3 streams of a cluster into R1 ones.
            replicas=env_int("ORRA_STREAM_REPLICAS", 1),
        )
        self.project = project
        self.heartbeat_interval_s = heartbeat_interval_s
        self.ack_wait_s = ack_wait_s
        self.concurrency = concurrency
        self.drain_timeout_s = drain_timeout_s
        self.pull_expires_s = pull_expires_s
        self.max_deliveries = max_deliveries
        self.results_ttl_s = results_ttl_s
        self.manage_streams = (
            manage_streams
            if manage_streams is not None
            else env_bool("ORRA_MANAGE_STREAMS", default=True)
        )
        self.name = name
        self.instance_id = new_event_id("i")
        self._bus: Bus | None = None
        self._store: ResultStore | None = None
        self._workers: dict[str, ServiceWorker] = {}
        self._services: dict[str, AnyService] = {}
        self._heartbeat: asyncio.Task[None] | None = None
        self._signals: list[Subscription] = []
        self._stopped = asyncio.Event()
        self._closing = False
        self._starting = 0

    # --- lifecycle -----------------------------------------------------------------------

    @property
    def bus(self) -> Bus:
        """The client's bus.

        Raises:
            ClientClosed: the client is not connected.
        """
        if self._bus is None:
            raise ClientClosed("the OrraClient is not connected: use 'async with' or connect()")
        return self._bus

    @property
    def ready(self) -> bool:
        """Whether the client serves: connected, its services registered and taking tasks.

        False before :meth:`start` returns, while the broker connection is down, and from the
        moment :meth:`stop` begins (draining replicas take no new work). This is what the
        runner's ``/readyz`` answers.
        """
        bus = self._bus
        return (
            bus is not None
            and bus.connected
            and not self._closing
            and not self._starting
            and bool(self._workers)
            and all(worker.bound for worker in self._workers.values())
        )

    async def connect(self) -> None:
        """Connect to the broker and open the result store.

        Raises:
            OrraSdkError: the broker cannot be reached or the streams do not exist.
        """
        if self._bus is not None:
            return
        try:
            bus = await Bus.connect(self.nats_url, self.topology, name=self.name)
        except BrokerUnavailable as exc:
            raise OrraSdkError(str(exc)) from None
        try:
            if self.manage_streams:
                await bus.ensure_streams()
            else:
                await bus.bind_streams()
            kv = await bus.kv(RESULTS_BUCKET, ttl_s=self.results_ttl_s)
            publisher = bus.publisher
            await publisher.start()
        except Exception as exc:
            await bus.close()
            raise OrraSdkError(f"cannot prepare JetStream: {exc}") from exc
        self._bus = bus
        self._store = ResultStore(
            kv,
            holder=self.instance_id,
            publisher=publisher,
            # At least the holder's renewal interval plus its reconnection after an outage.
            takeover_after_s=max(self.ack_wait_s, 5.0),
        )
        self._stopped.clear()

    async def __aenter__(self) -> Self:
        await self.connect()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def start(self, *services: AnyService) -> None:
        """Register ``services`` and start running their tasks; returns at once.

        Raises:
            ServiceDefinitionError: a service has no handler, or is already served.
            ClientClosed: the client is not connected.
        """
        bus = self.bus
        assert self._store is not None
        for service in services:
            service.handle  # noqa: B018 - raises when the handler is missing
            if service.name in self._services:
                raise ServiceDefinitionError(f"{service.name} is already served by this client")
            if service.revertible and service.reverter is None:
                log.warning(
                    "revertible service without a revert handler: its compensations will "
                    "fail; decorate one with @service.revert",
                    service=service.name,
                )
        if not self._signals:
            for event_type in STOP_SIGNALS:
                self._signals.append(
                    await bus.nc.subscribe(bus.topology.all_of(event_type), cb=self._on_stop_signal)
                )
        self._starting += 1  # not ready until every service of this call is taking tasks
        try:
            # Every registration first: a refused one stops the start before any service
            # of this call takes a task.
            for service in services:
                await self.register(service)
            for service in services:
                worker = ServiceWorker(
                    bus,
                    service,
                    store=self._store,
                    publisher=bus.publisher,
                    concurrency=service.concurrency or self.concurrency,
                    ack_wait_s=self.ack_wait_s,
                    pull_expires_s=self.pull_expires_s,
                    max_deliveries=self.max_deliveries,
                )
                await worker.start()
                self._services[service.name] = service
                self._workers[service.name] = worker
                await self._beat(service)
                log.info("service ready", service=service.name, schema_hash=service.schema_hash)
            if self._heartbeat is None:
                self._closing = False
                self._heartbeat = asyncio.create_task(self._heartbeats(), name="orra-sdk-heartbeat")
        finally:
            self._starting -= 1

    @property
    def services(self) -> dict[str, AnyService]:
        """The services this client serves now, by name (a copy)."""
        return dict(self._services)

    async def withdraw(self, *names: str) -> None:
        """Stop serving the named services; the others carry on.

        Their workers stop pulling tasks (running ones finish, or are abandoned after the
        drain timeout and redelivered to another replica) and their heartbeats stop, so
        without another instance the services turn unhealthy (their tasks wait), then
        ``down`` after ``ORRA_SERVICE_DOWN_AFTER_S`` (left out of new plans). Registrations
        stay: a service withdrawn can be started again with :meth:`start`. Names not
        served are ignored. Used by processes whose services come and go at run time (the
        MCP bridge, as tools appear and disappear).
        """
        workers = []
        for name in names:
            self._services.pop(name, None)
            worker = self._workers.pop(name, None)
            if worker is not None:
                workers.append(worker)
        if workers:
            await asyncio.gather(*(w.stop(self.drain_timeout_s) for w in workers))
            log.info("services withdrawn", services=[w.service.name for w in workers])

    async def registrations(self, name: str) -> dict[str, ServiceRegistered]:
        """Every registration of ``name`` that counts, by canonical version.

        Read from the registry stream (one message per name and version); a registration
        that followers refuse is left out. Lets a process choose the version of a
        definition known only at run time: the version that holds the same definition, or
        one above every registered one.
        """
        bus = self.bus
        topology = bus.topology
        out: dict[str, ServiceRegistered] = {}
        for version in await self._versions_of(name):
            subject = topology.service_subject("service.registered", name, version)
            try:
                raw = await bus.js.get_last_msg(topology.services_stream, subject)
                stored = decode(raw.data or b"")
            except (NotFoundError, DecodeError):
                continue
            if (
                isinstance(stored, ServiceRegistered)
                and registry_problem(topology, stored, subject) is None
            ):
                out[canonical_version(stored.version)] = stored
        return out

    async def serve(self, *services: AnyService) -> None:
        """Start ``services`` (see :meth:`start`) and run until :meth:`stop` or cancellation."""
        await self.start(*services)
        await self._stopped.wait()

    async def stop(self) -> None:
        """Stop pulling tasks, finish (or abandon after the drain timeout) running ones."""
        self._closing = True
        if self._heartbeat is not None:
            # Python 3.11's wait_for (inside nats-py requests) can swallow a cancellation;
            # the closing flag ends the loop then.
            self._heartbeat.cancel()
            await asyncio.wait({self._heartbeat})
            self._heartbeat = None
        for sub in self._signals:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
        self._signals.clear()
        workers = list(self._workers.values())
        self._workers.clear()
        self._services.clear()
        await asyncio.gather(*(w.stop(self.drain_timeout_s) for w in workers))
        self._stopped.set()

    async def close(self) -> None:
        """Stop, then close the connection."""
        await self.stop()
        if self._bus is not None:
            await self._bus.close()
            self._bus = None
            self._store = None

    async def _on_stop_signal(self, msg: Msg) -> None:
        orchestration_id = msg.subject.rsplit(".", 1)[-1]
        try:
            event = decode(msg.data)
        except DecodeError:
            return
        if isinstance(event, OrchestrationAborted):
            reason = f"orchestration aborted: {event.reason}"
        elif isinstance(event, OrchestrationFailed):
            reason = f"orchestration failed: {event.error}"
        elif isinstance(event, OrchestrationCompensating):
            reason = f"orchestration {event.cause}, compensating: {event.reason}"
        else:
            return
        for worker in list(self._workers.values()):
            worker.stop_orchestration(orchestration_id, reason)

    # --- registry ------------------------------------------------------------------------

    async def register(self, service: AnyService) -> ServiceRegistered:
        """Register the service's name and version with its definition; return the event.

        One name and version has one definition, and the first registration counts (see
        :mod:`orra_events.registrations`). The event goes to
        ``service.registered.<name>.<version>`` only if that subject is empty (expected
        last subject sequence 0; the stream also refuses a second message there), with
        the id ``reg:<name>:<schema hash>``. When the subject is taken, the stored
        definition decides: the same one (another replica, a restart) is fine; another
        one raises :class:`RegistrationConflict`. Registrations stored before versions had
        subjects (on ``service.registered.<name>``) count too, as for every follower.

        Raises:
            RegistrationConflict: the name and version are registered with another
                definition (the message names both ways out).
        """
        bus = self.bus
        event = _registration(
            service, self.project, ids.registration_id(service.name, service.schema_hash)
        )
        stored = await self._registered(event)
        if stored is None:
            try:
                await bus.publish(event, expected_last_subject_seq=0)
            except APIError as exc:
                # Taken: the expectation of an empty subject failed, or the stream's rule.
                if not (is_cas_conflict(exc.err_code) or exc.err_code == _MAX_PER_SUBJECT):
                    raise
                stored = await self._registered(event)  # another process won the race
                if stored is None:
                    raise OrraSdkError(
                        f"the broker refused the registration of {service.name} version "
                        f"{service.version} ({exc.description}) but holds none to compare"
                    ) from None
        if stored is not None:
            registered, problem = stored
            if problem is not None:
                raise RegistrationConflict(
                    f"service {service.name} version {service.version} cannot be registered: "
                    f"its subject holds a registration that every follower refuses ({problem}). "
                    "Fix: give this service another name, or raise its version."
                )
            if not same_definition(registered, event):
                raise RegistrationConflict(
                    conflict_message(registered, event, versions=await self._versions(service))
                )
            log.debug("already registered", service=service.name, version=service.version)
        return event

    async def _registered(
        self, event: ServiceRegistered
    ) -> tuple[ServiceRegistered, str | None] | None:
        """The registration that counts for the event's name and version, if any.

        Returns it with its problem (``None`` when followers accept it). The older subject
        ``service.registered.<name>`` is read first: a registration stored there before
        versions had subjects is earlier than anything on the versioned subject.
        """
        bus = self.bus
        topology = bus.topology
        legacy = topology.service_subject(event.TYPE, event.service, None)
        for subject in (legacy, topology.subject_for(event)):
            try:
                raw = await bus.js.get_last_msg(topology.services_stream, subject)
            except NotFoundError:
                continue
            try:
                stored = decode(raw.data or b"")
            except DecodeError as exc:
                if subject == legacy:
                    continue  # parked by the followers; the versioned subject decides
                return event, f"{type(exc).__name__}: {exc}"
            problem = registry_problem(topology, stored, subject)
            if subject == legacy and (
                problem is not None
                or not isinstance(stored, ServiceRegistered)
                or canonical_version(stored.version) != event.version
            ):
                continue  # only a valid registration of this very version counts there
            if not isinstance(stored, ServiceRegistered):
                return event, problem or f"{stored.TYPE} on {subject}"
            return stored, problem
        return None

    async def _versions(self, service: AnyService) -> list[str]:
        """Every registered version of the service's name (best effort, for the message)."""
        try:
            return await self._versions_of(service.name)
        except Exception:  # noqa: BLE001 - only the suggestion of the message needs it
            return []

    async def _versions_of(self, name: str) -> list[str]:
        """Every version of ``name`` with a message on its registration subject."""
        bus = self.bus
        topology = bus.topology
        prefix = topology.service_subject("service.registered", name, None)
        info = await bus.js.stream_info(topology.services_stream, subjects_filter=f"{prefix}.*")
        tokens = [subject.rsplit(".", 1)[-1] for subject in (info.state.subjects or {})]
        return [v for v in (version_from_token(t) for t in tokens) if v is not None]

    async def _beat(self, service: AnyService) -> None:
        await self.bus.publish(
            ServiceHeartbeat(
                event_id=ids.heartbeat_id(),
                service=service.name,
                project=self.project,
                instance_id=self.instance_id,
                interval_s=self.heartbeat_interval_s,
                version=service.version,
            )
        )

    async def _heartbeats(self) -> None:
        while not self._closing:
            await asyncio.sleep(self.heartbeat_interval_s)
            for service in list(self._services.values()):
                try:
                    await self._beat(service)
                except Exception as exc:  # noqa: BLE001 - try again at the next beat
                    log.warning("heartbeat failed", service=service.name, error=str(exc))


def _registration(service: AnyService, project: str, event_id: str) -> ServiceRegistered:
    return ServiceRegistered(
        event_id=event_id,
        service=service.name,
        project=project,
        description=service.description,
        input_schema=service.input_schema,
        output_schema=service.output_schema,
        revertible=service.revertible,
        version=service.version,
        kind=service.kind,
        schema_hash=service.schema_hash,
        examples=list(service.examples),
        retry_on_timeout=service.retry_on_timeout,
        approval_when=service.approval_when,
    )
