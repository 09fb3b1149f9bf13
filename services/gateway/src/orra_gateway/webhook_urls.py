"""Validation of webhook URLs at the gateway: the shared rule, as a gateway error.

The rule itself (what the notifier's HTTP client can send, and which hosts are private,
however an IP address is spelled) is :mod:`orra_events.webhook_urls`; the notifier and the
CLI use the same one. This module only names the field at fault for the problem details.
"""

from __future__ import annotations

from orra_events.webhook_urls import MAX_URL_LENGTH
from orra_events.webhook_urls import InvalidWebhookUrl as UnsendableUrl
from orra_events.webhook_urls import check_webhook_url as _check
from orra_gateway.errors import InvalidWebhookUrl

__all__ = ["MAX_URL_LENGTH", "check_webhook_url"]


def check_webhook_url(url: str, *, allow_private: bool, field: str = "webhook") -> str:
    """Return ``url`` if it is an acceptable webhook target.

    Args:
        url: The URL to check.
        allow_private: Accept loopback, private and link-local targets.
        field: Name of the field reported when the URL is refused.

    Raises:
        InvalidWebhookUrl: naming ``field`` and what is wrong.
    """
    try:
        _check(url, allow_private=allow_private)
    except UnsendableUrl as exc:
        raise InvalidWebhookUrl(str(exc), field) from None
    return url
