"""Webhook signing-secret rules that need no codec (the CLI imports them at start).

The records themselves (msgspec structs) are in :mod:`orra_events.records`, which imports
this module: importing a constant from here does not load msgspec.
"""

from __future__ import annotations

from typing import Final

__all__ = ["PREVIOUS_SECRET_GRACE_S"]

PREVIOUS_SECRET_GRACE_S: Final = 24 * 3600.0
"""How long after a rotation the previous secret still signs deliveries."""
