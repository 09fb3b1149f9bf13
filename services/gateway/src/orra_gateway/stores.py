"""Key-value state of the gateway: API keys, idempotency keys, webhooks, signing secrets.

Everything lives in JetStream key-value buckets, so every gateway replica (and the notifier)
sees the same state. Values are JSON objects with camelCase fields. Buckets (named through
:meth:`orra_events.Topology.bucket`, so ``orra_apikeys`` in production):

==================  ==============================  =============================================
bucket              key                             value
==================  ==============================  =============================================
``apikeys``         SHA-256 hex of the API key      ``{"id", "project", "prefix", "name",
                                                    "createdAt", "role", "admin"}``
``idempotency``     ``<project>.<sha256 hex of      ``{"orchestrationId", "fingerprint",
                    the Idempotency-Key>``          "createdAt"}``; entries expire (TTL)
``webhooks``        ``<project>``                   :class:`orra_events.ProjectWebhooks`
``webhook_secrets`` ``<project>``                   :class:`orra_events.SigningSecretRecord`
==================  ==============================  =============================================

The last two are shared with the notifier and defined once in :mod:`orra_events.records`.
An API key is never stored: only its SHA-256 hash, which is the bucket key. Roles, key ids
and hashes are defined once in :mod:`orra_events.apikeys` (the CLI uses them too).
"""

from __future__ import annotations

import hashlib
import secrets
import time
from typing import TYPE_CHECKING, Final, TypeVar

import msgspec
import structlog
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError, NoKeysError

from orra_events.apikeys import (
    ADMIN,
    API_KEY_PREFIX,
    DEFAULT_ROLE,
    Role,
    hash_api_key,
    key_id_of_hash,
    role_of,
)
from orra_events.records import (
    PREVIOUS_SECRET_GRACE_S,
    ProjectWebhooks,
    SigningSecretRecord,
    WebhookRecord,
    decode_project_webhooks,
    decode_signing_secret,
    encode_record,
    first_signing_secret,
    new_signing_secret,
    rotate_signing_secret,
)
from orra_gateway.errors import (
    Conflict,
    FieldError,
    InvalidInput,
    KeyRevoked,
    NotFound,
    Unauthorized,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from nats.js.kv import KeyValue

__all__ = [
    "API_KEY_PREFIX",
    "OPERATOR_PROJECT",
    "ApiKeyRecord",
    "ApiKeyStore",
    "IdempotencyRecord",
    "IdempotencyStore",
    "SecretStore",
    "WebhookStore",
    "generate_api_key",
    "hash_api_key",
]

OPERATOR_PROJECT: Final = "default"
"""The bootstrap key's project. Its admin keys run the installation: they may also create
keys in other projects (the first admin key of a new project, for instance)."""

_MAX_WEBHOOKS = 20
_UPDATE_TRIES = 10
_R = TypeVar("_R")

log = structlog.get_logger("orra.gateway")


def generate_api_key() -> str:
    """A fresh random API key: ``orra_`` + 43 URL-safe characters (256 bits)."""
    return API_KEY_PREFIX + secrets.token_urlsafe(32)


def _prefix(key: str) -> str:
    return key[:12]


class ApiKeyRecord(msgspec.Struct, kw_only=True, rename="camel"):
    """What is stored about an API key (never the key itself).

    Attributes:
        id: Stable id (``k_`` + the first 16 hex digits of the hash).
        project: The project the key belongs to.
        prefix: First characters of the key, to recognise it.
        name: Free label given at creation.
        created_at: UNIX epoch seconds.
        role: ``admin`` or ``member`` (:mod:`orra_events.apikeys`); ``None`` in records
            written before roles existed, whose role :attr:`admin` decides. Read
            :attr:`granted`, never this field, to decide what a key may do.
        admin: Before roles, the bootstrap key's flag. Now written true only for admin keys
            of :data:`OPERATOR_PROJECT`, which is what a gateway of that time let it do
            (create keys in other projects), so a rolling upgrade grants nothing new.
    """

    id: str
    project: str
    prefix: str
    name: str | None = None
    created_at: float = 0.0
    role: str | None = None
    admin: bool = False

    @property
    def granted(self) -> Role:
        """The key's role: its ``role``, or for an older record its ``admin`` flag."""
        return role_of(self.role, admin=self.admin)

    @property
    def is_admin(self) -> bool:
        """Whether the key is an admin key of its project."""
        return self.granted == ADMIN

    def may_manage(self, project: str) -> bool:
        """Whether this key may manage ``project``'s keys, webhooks and secret."""
        return self.is_admin and self.project in {project, OPERATOR_PROJECT}


class IdempotencyRecord(msgspec.Struct, kw_only=True, rename="camel"):
    """Which orchestration an ``Idempotency-Key`` created, and for which request body."""

    orchestration_id: str
    fingerprint: str
    created_at: float


class ApiKeyStore:
    """API keys in the ``apikeys`` bucket, with a short in-process lookup cache.

    Args:
        kv: The bucket.
        cache_s: How long a successful lookup is reused without asking the broker.
    """

    def __init__(self, kv: KeyValue, *, cache_s: float = 5.0) -> None:
        self._kv = kv
        self._cache_s = cache_s
        self._cache: dict[str, tuple[float, ApiKeyRecord]] = {}

    async def authenticate(self, key: str) -> ApiKeyRecord:
        """The record of ``key``.

        Raises:
            Unauthorized: the key is unknown or revoked.
        """
        key_hash = hash_api_key(key)
        cached = self._cache.get(key_hash)
        now = time.monotonic()
        if cached is not None and cached[0] > now:
            return cached[1]
        try:
            entry = await self._kv.get(key_hash)
        except KeyNotFoundError:
            self._cache.pop(key_hash, None)
            raise Unauthorized("unknown or revoked API key") from None
        record = msgspec.json.decode(entry.value or b"", type=ApiKeyRecord)
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[key_hash] = (now + self._cache_s, record)
        return record

    async def register(
        self,
        key: str,
        *,
        project: str,
        name: str | None = None,
        role: Role = DEFAULT_ROLE,
    ) -> ApiKeyRecord:
        """Store ``key`` for ``project`` unless it is already stored; return its record.

        Raises:
            KeyRevoked: the key was stored once and revoked; a revoked key never comes back
                (the bucket keeps its delete marker, and the write expects no entry at all).
        """
        key_hash = hash_api_key(key)
        record = ApiKeyRecord(
            id=key_id_of_hash(key_hash),
            project=project,
            prefix=_prefix(key),
            name=name,
            created_at=time.time(),
            role=role,
            admin=role == ADMIN and project == OPERATOR_PROJECT,
        )
        try:
            # Not kv.create, which writes over a delete marker: that would revive a revoked key.
            await self._kv.update(key_hash, msgspec.json.encode(record), last=0)
        except KeyWrongLastSequenceError:
            try:
                entry = await self._kv.get(key_hash)
            except KeyNotFoundError:  # nats-py's answer for a delete marker: the key was revoked
                raise KeyRevoked(f"API key {record.prefix}... was revoked") from None
            return msgspec.json.decode(entry.value or b"", type=ApiKeyRecord)
        return record

    async def create(
        self, *, project: str, name: str | None = None, role: Role = DEFAULT_ROLE
    ) -> tuple[str, ApiKeyRecord]:
        """Generate and store a new key; return it (shown once) with its record."""
        key = generate_api_key()
        return key, await self.register(key, project=project, name=name, role=role)

    async def list_keys(self, project: str) -> list[ApiKeyRecord]:
        """Every key record of ``project``, oldest first."""
        try:
            hashes = await self._kv.keys()
        except NoKeysError:
            return []
        out: list[ApiKeyRecord] = []
        for key_hash in hashes:
            try:
                entry = await self._kv.get(key_hash)
            except KeyNotFoundError:
                continue
            record = msgspec.json.decode(entry.value or b"", type=ApiKeyRecord)
            if record.project == project:
                out.append(record)
        out.sort(key=lambda r: (r.created_at, r.id))
        return out

    async def revoke(self, project: str, key_id: str) -> None:
        """Delete the key ``key_id`` of ``project``; never its last admin key.

        Two revocations racing on different replicas could each see the other's key as the
        remaining admin. So the check is made again after the delete, and a key whose
        revocation left the project without an admin is put back (and refused).

        Raises:
            NotFound: no such key in the project.
            Conflict: it is the project's last admin key.
        """
        try:
            hashes = await self._kv.keys()
        except NoKeysError:
            hashes = []
        for key_hash in hashes:
            if key_id_of_hash(key_hash) != key_id:
                continue
            try:
                entry = await self._kv.get(key_hash)
            except KeyNotFoundError:
                break
            raw = entry.value or b""
            record = msgspec.json.decode(raw, type=ApiKeyRecord)
            if record.project != project:
                break
            if record.is_admin and not await self._another_admin(project, key_id):
                raise self._last_admin(record)
            await self._kv.delete(key_hash)
            self._cache.pop(key_hash, None)
            if record.is_admin and not await self._another_admin(project, key_id):
                await self._kv.put(key_hash, raw)
                log.warning("a racing revocation left no admin key: key restored", key_id=key_id)
                raise self._last_admin(record)
            return
        raise NotFound(f"no API key {key_id!r}")

    async def _another_admin(self, project: str, key_id: str) -> bool:
        return any(r.is_admin and r.id != key_id for r in await self.list_keys(project))

    @staticmethod
    def _last_admin(record: ApiKeyRecord) -> Conflict:
        return Conflict(
            f"API key {record.id} is the last admin key of project {record.project!r}: create "
            "another admin key first (`orra api-keys gen --role admin`)"
        )


class IdempotencyStore:
    """``Idempotency-Key`` → orchestration, in the ``idempotency`` bucket (with a TTL)."""

    def __init__(self, kv: KeyValue) -> None:
        self._kv = kv

    async def claim(
        self, project: str, key: str, *, fingerprint: str, orchestration_id: str
    ) -> tuple[str, bool]:
        """Bind ``key`` to ``orchestration_id`` unless it is bound already.

        Returns:
            The orchestration the key is bound to, and whether this call bound it.

        Raises:
            InvalidInput: the key was used before with a different request body.
        """
        kv_key = f"{project}.{hashlib.sha256(key.encode()).hexdigest()}"
        record = IdempotencyRecord(
            orchestration_id=orchestration_id, fingerprint=fingerprint, created_at=time.time()
        )
        for _ in range(_UPDATE_TRIES):
            try:
                await self._kv.create(kv_key, msgspec.json.encode(record))
            except KeyWrongLastSequenceError:
                pass
            else:
                return orchestration_id, True
            try:
                entry = await self._kv.get(kv_key)
            except KeyNotFoundError:  # expired between the two calls: claim again
                continue
            existing = msgspec.json.decode(entry.value or b"", type=IdempotencyRecord)
            if existing.fingerprint != fingerprint:
                raise InvalidInput(
                    "this Idempotency-Key was already used with a different request body",
                    [FieldError("Idempotency-Key", "already used with a different request body")],
                )
            return existing.orchestration_id, False
        raise Conflict("the Idempotency-Key is being claimed concurrently; retry")


async def _read(
    kv: KeyValue, key: str, decode: Callable[[bytes], _R]
) -> tuple[_R | None, int | None]:
    """The decoded value of ``key`` and its revision, or ``(None, None)`` when missing."""
    try:
        entry = await kv.get(key)
    except KeyNotFoundError:
        return None, None
    return decode(entry.value or b""), entry.revision


async def _write(
    kv: KeyValue, key: str, record: ProjectWebhooks | SigningSecretRecord, revision: int | None
) -> bool:
    """Write with optimistic concurrency; False if someone else wrote first."""
    data = encode_record(record)
    try:
        if revision is None:
            await kv.create(key, data)
        else:
            await kv.update(key, data, last=revision)
    except KeyWrongLastSequenceError:
        return False
    return True


class WebhookStore:
    """Project-level webhook URLs in the shared ``webhooks`` bucket (key: the project)."""

    def __init__(self, kv: KeyValue) -> None:
        self._kv = kv

    async def list_webhooks(self, project: str) -> list[WebhookRecord]:
        """The project's webhooks, oldest first."""
        current, _ = await _read(self._kv, project, decode_project_webhooks)
        return list(current.webhooks) if current is not None else []

    async def add(self, project: str, url: str) -> tuple[WebhookRecord, bool]:
        """Add ``url`` (already validated); return its record and whether it is new."""
        for _ in range(_UPDATE_TRIES):
            current, revision = await _read(self._kv, project, decode_project_webhooks)
            hooks = current.webhooks if current is not None else ()
            for hook in hooks:
                if hook.url == url:
                    return hook, False
            if len(hooks) >= _MAX_WEBHOOKS:
                raise Conflict(f"a project has at most {_MAX_WEBHOOKS} webhooks; remove one")
            record = WebhookRecord(id=f"wh_{secrets.token_hex(8)}", url=url, created_at=time.time())
            updated = ProjectWebhooks(webhooks=(*hooks, record))
            if await _write(self._kv, project, updated, revision):
                return record, True
        raise Conflict("webhooks changed concurrently; retry")

    async def remove(self, project: str, webhook_id: str) -> None:
        """Remove the webhook ``webhook_id``.

        Raises:
            NotFound: the project has no such webhook.
        """
        for _ in range(_UPDATE_TRIES):
            current, revision = await _read(self._kv, project, decode_project_webhooks)
            hooks = current.webhooks if current is not None else ()
            kept = tuple(hook for hook in hooks if hook.id != webhook_id)
            if len(kept) == len(hooks):
                raise NotFound(f"no webhook {webhook_id!r}")
            if await _write(self._kv, project, ProjectWebhooks(webhooks=kept), revision):
                return
        raise Conflict("webhooks changed concurrently; retry")


class SecretStore:
    """Per-project webhook signing secrets in the shared ``webhook_secrets`` bucket.

    Args:
        kv: The bucket.
        grace_s: How long the previous secret keeps signing after a rotation.
    """

    def __init__(self, kv: KeyValue, *, grace_s: float = PREVIOUS_SECRET_GRACE_S) -> None:
        self._kv = kv
        self._grace_s = grace_s

    async def get(self, project: str) -> SigningSecretRecord:
        """The project's secret record, created on first use (a notifier may have made it)."""
        for _ in range(_UPDATE_TRIES):
            current, _ = await _read(self._kv, project, decode_signing_secret)
            if current is not None:
                return current
            record = first_signing_secret(new_signing_secret(), time.time())
            if await _write(self._kv, project, record, None):
                return record
        raise Conflict("the webhook secret changed concurrently; retry")

    async def rotate(self, project: str) -> SigningSecretRecord:
        """Replace the project's secret by a new one; the old one signs for the grace period."""
        for _ in range(_UPDATE_TRIES):
            current, revision = await _read(self._kv, project, decode_signing_secret)
            record = rotate_signing_secret(
                current, new_signing_secret(), time.time(), grace_s=self._grace_s
            )
            if await _write(self._kv, project, record, revision):
                return record
        raise Conflict("the webhook secret changed concurrently; retry")
