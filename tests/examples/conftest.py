"""The example tests reuse the SDK fixtures (clients, dispatching, event capture)."""

from tests.sdk.conftest import dispatch, events, make_client

__all__ = ["dispatch", "events", "make_client"]
