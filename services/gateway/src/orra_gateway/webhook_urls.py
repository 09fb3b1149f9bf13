"""Validation of webhook URLs: a pure function the gateway and the notifier share.

A webhook URL must be absolute ``http`` or ``https`` with a host and no credentials. Unless
private targets are allowed (``ORRA_ALLOW_PRIVATE_WEBHOOKS``, on for ``orra up``), its host
must not be a loopback, private, link-local, multicast, reserved or unspecified IP literal,
nor a name that obviously means this machine or a private network (``localhost``,
``*.localhost``, ``*.local``, ``*.internal``).

This check does no DNS lookups, so a public name that resolves to a private address passes;
the deliverer should check the resolved address at connect time as well.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from orra_gateway.errors import InvalidWebhookUrl

__all__ = ["MAX_URL_LENGTH", "check_webhook_url", "is_private_host"]

MAX_URL_LENGTH = 2048
"""Longest webhook URL accepted."""

_PRIVATE_SUFFIXES = (".localhost", ".local", ".internal", ".localdomain", ".home.arpa")
_PRIVATE_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


def is_private_host(host: str) -> bool:
    """Whether ``host`` (an IP literal or a name) is obviously not a public target."""
    name = host.strip("[]").rstrip(".").lower()
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return name in _PRIVATE_NAMES or name.endswith(_PRIVATE_SUFFIXES)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return not address.is_global or address.is_multicast


def check_webhook_url(url: str, *, allow_private: bool, field: str = "webhook") -> str:
    """Return ``url`` if it is an acceptable webhook target.

    Args:
        url: The URL to check.
        allow_private: Accept loopback, private and link-local targets.
        field: Name of the field reported when the URL is refused.

    Raises:
        InvalidWebhookUrl: naming ``field`` and what is wrong.
    """
    if len(url) > MAX_URL_LENGTH:
        raise InvalidWebhookUrl(f"URL is longer than {MAX_URL_LENGTH} characters", field)
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise InvalidWebhookUrl(f"not a valid URL: {exc}", field) from None
    del port
    if parts.scheme not in {"http", "https"}:
        raise InvalidWebhookUrl("URL must start with http:// or https://", field)
    host = parts.hostname
    if not host:
        raise InvalidWebhookUrl("URL has no host", field)
    if parts.username is not None or parts.password is not None:
        raise InvalidWebhookUrl("URL must not contain credentials", field)
    if any(ch.isspace() for ch in url):
        raise InvalidWebhookUrl("URL must not contain whitespace", field)
    if not allow_private and is_private_host(host):
        raise InvalidWebhookUrl(
            f"host {host!r} is a loopback or private address; private webhook targets are "
            "refused (set ORRA_ALLOW_PRIVATE_WEBHOOKS=true to allow them)",
            field,
        )
    return url
