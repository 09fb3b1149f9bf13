"""Webhook URLs: which ones can be sent, and which ones point at a private network.

One rule for every part: the gateway refuses a URL at submit with it, the CLI checks ``-w``
with it, and the notifier refuses (for good) a URL it cannot send. It reads a URL the way
the notifier's HTTP client will and then the way the C library will resolve the host:

1. ``httpx`` (the notifier's client) parses the URL. It refuses a host of four dotted
   numbers that is not a plain dotted-quad (``127.000.000.001``, ``0177.0.0.1``), an IPv6
   literal that does not parse, and a non-ASCII name that IDNA cannot encode; it percent-
   encodes any other character a host name cannot hold, so such a name never resolves.
2. The host name goes to ``getaddrinfo``, which reads every ``inet_aton`` form as an IPv4
   address: decimal (``2130706433``), octal (``0177.1``), hexadecimal (``0x7f.0.0.1``) and
   short forms (``127.1``). Those are IP addresses, not names: they go through the
   private-address check like ``127.0.0.1``.

So a URL is sendable when it is absolute ``http``/``https``, has no credentials, no
whitespace or control characters, a port in 1..65535, and a host that is an IP literal,
an ``inet_aton`` number or a syntactically valid DNS name (labels of letters, digits,
``-`` and ``_``, at most 63 characters each and 253 in all; a name whose last label is a
number must be a valid address, since no top-level domain is numeric). A sendable URL is
*private* when its host is a loopback, private, link-local, CGNAT, multicast, reserved or
unspecified address, or a name that obviously means this machine or a private network
(``localhost``, ``*.localhost``, ``*.local``, ``*.internal``, ``*.localdomain``,
``*.home.arpa``). No DNS lookups happen here: a public name that resolves to a private
address is caught by the notifier when it connects.

``tests/events/test_webhook_urls.py`` checks, with generated hosts, that every URL this
module accepts is parsed by ``httpx`` to the same host and port, and that its reading of
numeric hosts is the C library's.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

import idna

from orra_events.errors import OrraEventsError

__all__ = [
    "MAX_URL_LENGTH",
    "InvalidWebhookUrl",
    "PrivateWebhookUrl",
    "WebhookTarget",
    "check_webhook_url",
    "inet_aton",
    "is_private_address",
    "is_private_name",
    "parse_webhook_url",
]

MAX_URL_LENGTH: Final = 2048
"""Longest webhook URL accepted."""

_PRIVATE_SUFFIXES = (".localhost", ".local", ".internal", ".localdomain", ".home.arpa")
_PRIVATE_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})
# httpx's own test for an IPv4 literal (httpx/_urlparse.py, IPv4_STYLE_HOSTNAME).
_HTTPX_IPV4_STYLE = re.compile(r"^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$")
_LABEL = re.compile(r"^[a-z0-9_-]{1,63}$")
_NUMBER = re.compile(r"^(?:0[xX][0-9a-fA-F]*|[0-9]+)$")
_MAX_NAME = 253
_DIGITS = {
    8: frozenset("01234567"),
    10: frozenset("0123456789"),
    16: frozenset("0123456789abcdefABCDEF"),
}

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class InvalidWebhookUrl(OrraEventsError, ValueError):
    """A webhook URL cannot be sent: the message says why, in words a user can act on."""


class PrivateWebhookUrl(InvalidWebhookUrl):
    """A webhook URL points at this machine or a private network, which is not allowed."""


@dataclass(frozen=True)
class WebhookTarget:
    """Where a sendable webhook URL goes.

    Attributes:
        url: The URL as given.
        scheme: ``http`` or ``https``.
        host: The host as the HTTP client sends it: lower case, IDNA-encoded, an IPv6
            literal without its brackets.
        port: The port (the scheme's default when the URL has none).
        address: The IP address when the host is one (in any form ``getaddrinfo``
            accepts), else ``None``.
    """

    url: str
    scheme: str
    host: str
    port: int
    address: IPAddress | None

    @property
    def private(self) -> bool:
        """Whether the host is a non-public address or an obviously private name."""
        if self.address is not None:
            return is_private_address(self.address)
        return is_private_name(self.host)


def inet_aton(host: str) -> ipaddress.IPv4Address | None:
    """The IPv4 address the C library reads in ``host``, or ``None`` if it reads none.

    ``inet_aton`` (which ``getaddrinfo`` applies before any DNS lookup) takes one to four
    dot-separated numbers, each decimal, octal (leading ``0``) or hexadecimal (``0x``); the
    last one fills the remaining bytes: ``127.1`` is ``127.0.0.1`` and ``2130706433`` is
    too.
    """
    parts = host.split(".")
    if not 1 <= len(parts) <= 4:
        return None
    values: list[int] = []
    for part in parts:
        if not part:
            return None
        if part[:2] in {"0x", "0X"}:
            digits, base = part[2:], 16
        elif len(part) > 1 and part[0] == "0":
            digits, base = part[1:], 8
        else:
            digits, base = part, 10
        if not digits or not set(digits) <= _DIGITS[base]:
            return None
        values.append(int(digits, base))
    *leading, last = values
    if any(v > 0xFF for v in leading) or last >= 1 << (8 * (4 - len(leading))):
        return None
    number = last
    for index, value in enumerate(leading):
        number |= value << (8 * (3 - index))
    return ipaddress.IPv4Address(number)


def is_private_address(address: IPAddress) -> bool:
    """Whether an IP address is not a public target (loopback, private, multicast...)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return not address.is_global or address.is_multicast


def is_private_name(name: str) -> bool:
    """Whether a host name obviously means this machine or a private network."""
    name = name.rstrip(".").lower()
    return name in _PRIVATE_NAMES or name.endswith(_PRIVATE_SUFFIXES)


def _host(raw: str) -> tuple[str, IPAddress | None]:
    """The host as the HTTP client sends it, and its IP address if it is one.

    Raises:
        InvalidWebhookUrl: the HTTP client refuses it, or it can never resolve.
    """
    if raw.startswith("[") and raw.endswith("]"):
        literal = raw[1:-1]
        if "%" in literal:
            raise InvalidWebhookUrl(f"host {raw} has a zone id; use a global IPv6 address")
        try:
            return literal.lower(), ipaddress.IPv6Address(literal)
        except ValueError:
            raise InvalidWebhookUrl(f"host {raw} is not a valid IPv6 address") from None
    if _HTTPX_IPV4_STYLE.match(raw):
        try:
            return raw, ipaddress.IPv4Address(raw)
        except ValueError:
            raise InvalidWebhookUrl(
                f"host {raw} is not a valid IPv4 address (write each of the four numbers "
                "in decimal, from 0 to 255, without leading zeros)"
            ) from None
    if raw.isascii():
        host = raw.lower()
    else:
        try:
            host = idna.encode(raw.lower()).decode("ascii")
        except idna.IDNAError as exc:
            raise InvalidWebhookUrl(f"host {raw!r} is not a valid host name: {exc}") from None
    address = inet_aton(host)
    if address is not None:
        return host, address
    name = host.removesuffix(".")
    labels = name.split(".")
    if len(name) > _MAX_NAME or not all(_LABEL.match(label) for label in labels):
        raise InvalidWebhookUrl(
            f"host {raw!r} is not a valid host name (labels of letters, digits, '-' and '_', "
            f"at most 63 characters each, {_MAX_NAME} in all)"
        )
    if _NUMBER.match(labels[-1]):
        raise InvalidWebhookUrl(f"host {raw!r} is neither a valid IP address nor a host name")
    return host, None


def parse_webhook_url(url: str) -> WebhookTarget:
    """Read ``url`` as the notifier's HTTP client will; refuse what it cannot send.

    Raises:
        InvalidWebhookUrl: saying what is wrong.
    """
    if len(url) > MAX_URL_LENGTH:
        raise InvalidWebhookUrl(f"URL is longer than {MAX_URL_LENGTH} characters")
    if any(ch.isspace() or not ch.isprintable() for ch in url):
        raise InvalidWebhookUrl("URL must not contain whitespace or control characters")
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise InvalidWebhookUrl(f"not a valid URL: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in {"http", "https"}:
        raise InvalidWebhookUrl("URL must start with http:// or https://")
    netloc = parts.netloc
    if "@" in netloc:
        raise InvalidWebhookUrl("URL must not contain credentials")
    if netloc.startswith("["):
        raw_host, _, rest = netloc.partition("]")
        raw_host += "]"
        if rest and not rest.startswith(":"):
            raise InvalidWebhookUrl(f"not a valid URL: unexpected {rest!r} after the host")
        raw_port = rest[1:]
    else:
        raw_host, _, raw_port = netloc.partition(":")
    if not raw_host:
        raise InvalidWebhookUrl("URL has no host")
    port = 443 if scheme == "https" else 80
    if raw_port:
        if not (raw_port.isascii() and raw_port.isdigit() and 1 <= int(raw_port) <= 65535):
            raise InvalidWebhookUrl(f"port {raw_port!r} is not a number from 1 to 65535")
        port = int(raw_port)
    host, address = _host(raw_host)
    return WebhookTarget(url=url, scheme=scheme, host=host, port=port, address=address)


def check_webhook_url(url: str, *, allow_private: bool) -> WebhookTarget:
    """Parse ``url`` (see :func:`parse_webhook_url`) and refuse private targets unless allowed.

    Args:
        url: The URL to check.
        allow_private: Accept loopback, private and link-local targets
            (``ORRA_ALLOW_PRIVATE_WEBHOOKS``).

    Raises:
        PrivateWebhookUrl: the target is private and that is not allowed.
        InvalidWebhookUrl: the URL cannot be sent.
    """
    target = parse_webhook_url(url)
    if not allow_private and target.private:
        what = (
            f"the address {target.address}, which is loopback or private"
            if target.address is not None
            else "a local or private name"
        )
        raise PrivateWebhookUrl(
            f"host {target.host!r} is {what}; private webhook targets are refused "
            "(set ORRA_ALLOW_PRIVATE_WEBHOOKS=true to allow them)"
        )
    return target
