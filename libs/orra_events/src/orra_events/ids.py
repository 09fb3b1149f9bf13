"""Identifiers: orchestration ids (``o_`` + 16 base32 characters) and event ids."""

from __future__ import annotations

import base64
import secrets

__all__ = ["new_event_id", "new_orchestration_id"]


def _token(nbytes: int) -> str:
    return base64.b32encode(secrets.token_bytes(nbytes)).decode().rstrip("=").lower()


def new_orchestration_id() -> str:
    """A fresh, random orchestration id such as ``o_mzxw6ytboi4tqmrs``."""
    return f"o_{_token(10)}"


def new_event_id(prefix: str = "e") -> str:
    """A fresh, random event id, for events that have no natural deterministic id."""
    return f"{prefix}_{_token(10)}"
