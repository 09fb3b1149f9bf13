"""API keys: their roles and ids, one definition for the gateway and the CLI.

The gateway stores a key's record (``orra_gateway.stores.ApiKeyRecord``) under the
SHA-256 of the key; the key itself is never stored. A key's id is ``k_`` and the first 16
hex digits of that hash, so whoever holds a key can tell its id (the CLI does, to warn
that a key it revokes is its own).

Roles (docs/architecture.md, "HTTP API"):

* ``admin`` manages the project's API keys, webhooks and webhook signing secret (reading
  the secret included) and settles failed compensations, besides everything a member does;
* ``approver`` does what a member does and approves or rejects the project's plans and
  tasks held for approval (an admin key may too);
* ``member`` submits, reads, follows and aborts the project's orchestrations and reads its
  services and failed compensations.

Records written before roles existed have no ``role``: :func:`role_of` reads their
``admin`` flag (the bootstrap key's), so they are ``admin`` or ``member``. A record with a
role this code does not know is a ``member``.
"""

from __future__ import annotations

import hashlib
from typing import Final, Literal

__all__ = [
    "ADMIN",
    "API_KEY_PREFIX",
    "APPROVER",
    "DEFAULT_ROLE",
    "MEMBER",
    "ROLES",
    "Role",
    "api_key_id",
    "can_approve",
    "hash_api_key",
    "key_id_of_hash",
    "role_of",
]

Role = Literal["admin", "approver", "member"]
"""What a key may do in its project."""

ADMIN: Final = "admin"
APPROVER: Final = "approver"
MEMBER: Final = "member"
ROLES: Final[tuple[Role, ...]] = (ADMIN, APPROVER, MEMBER)
"""Every role, most privileged first."""

DEFAULT_ROLE: Final[Role] = MEMBER
"""The role of a key created without one: the least privileged."""

API_KEY_PREFIX: Final = "orra_"
"""Every key the gateway generates starts with this."""


def hash_api_key(key: str) -> str:
    """SHA-256 hex digest of an API key: what is stored and looked up."""
    return hashlib.sha256(key.encode()).hexdigest()


def key_id_of_hash(key_hash: str) -> str:
    """The id of the key whose hash is ``key_hash``."""
    return f"k_{key_hash[:16]}"


def api_key_id(key: str) -> str:
    """The id the gateway gives ``key`` (``k_`` and the start of its SHA-256)."""
    return key_id_of_hash(hash_api_key(key))


def role_of(role: str | None, *, admin: bool) -> Role:
    """The role of a stored key: its ``role``, or for a record older than roles its flag.

    Args:
        role: The record's ``role`` (``None`` in records written before roles).
        admin: The record's ``admin`` flag (true for the bootstrap key).
    """
    if role == ADMIN or (role is None and admin):
        return ADMIN
    if role == APPROVER:
        return APPROVER
    return MEMBER


def can_approve(role: Role) -> bool:
    """Whether a key of ``role`` may approve or reject what waits for approval."""
    return role in (ADMIN, APPROVER)
