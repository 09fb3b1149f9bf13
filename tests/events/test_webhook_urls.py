"""The webhook URL rule shared by the gateway, the CLI and the notifier.

The property tests hold the rule to what actually sends a webhook: ``httpx`` (the
notifier's client) must parse every accepted URL to the same host and port, and the C
library's ``getaddrinfo`` must read numeric hosts as the rule does, so that a URL the
gateway accepts is one the notifier can send, and an address the private check let
through is public whatever its spelling.
"""

from __future__ import annotations

import ipaddress
import socket

import httpx
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from orra_events.webhook_urls import (
    InvalidWebhookUrl,
    PrivateWebhookUrl,
    check_webhook_url,
    inet_aton,
    parse_webhook_url,
)


def libc_numeric(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address ``getaddrinfo`` reads in ``host`` without DNS, or ``None``."""
    try:
        infos = socket.getaddrinfo(
            host.encode("ascii"), 80, socket.AF_UNSPEC, socket.SOCK_STREAM, 0, socket.AI_NUMERICHOST
        )
    except (socket.gaierror, UnicodeError):
        return None
    return ipaddress.ip_address(str(infos[0][4][0]).split("%", 1)[0])


# --- hosts as an attacker would spell them ---------------------------------------------------

_decimal = st.text("0123456789", min_size=1, max_size=12)
_octal = st.text("01234567", min_size=1, max_size=12).map(lambda s: "0" + s)
_hex = st.text("0123456789abcdefABCDEF", max_size=10).flatmap(
    lambda s: st.sampled_from([f"0x{s}", f"0X{s}"])
)
_noise = st.text("0123456789xX.abg-_ ", max_size=6)
_part = st.one_of(_decimal, _octal, _hex, _noise)
numeric_hosts = st.lists(_part, min_size=1, max_size=5).map(".".join)
"""Dotted numbers in every base and length, with some noise."""

_label = st.text("abcxyz019-_%!~", min_size=0, max_size=8)
name_hosts = st.lists(_label, min_size=1, max_size=4).map(".".join) | st.text(max_size=12)
"""Host names, valid or not, some with non-ASCII characters."""

ipv6_hosts = st.ip_addresses(v=6).map(lambda a: f"[{a}]") | st.text(
    "0123456789abcdef:.%", max_size=20
).map(lambda s: f"[{s}]")

hosts = st.one_of(numeric_hosts, name_hosts, ipv6_hosts, st.ip_addresses(v=4).map(str))
ports = (
    st.none()
    | st.integers(min_value=0, max_value=70_000).map(str)
    | st.text("0123456789+ x", max_size=6)
)


def _url(scheme: str, host: str, port: str | None) -> str:
    return f"{scheme}://{host}{'' if port is None else ':' + port}/hooks?x=1"


@settings(max_examples=600, deadline=None)
@given(numeric_hosts)
@example("127.000.000.001")
@example("0177.0.0.1")
@example("0x7f.1")
@example("2130706433")
@example("127.1")
@example("0x")
@example("08")
@example("4294967296")
def test_numeric_hosts_are_read_as_the_c_library_reads_them(host: str) -> None:
    expected = libc_numeric(host) if ":" not in host else None
    assert inet_aton(host) == expected


@settings(max_examples=1500, deadline=None)
@given(st.sampled_from(["http", "https", "HTTP"]), hosts, ports)
@example("http", "127.000.000.001", "8080")
@example("http", "0177.0.0.1", "8080")
@example("http", "1.2.3.256", None)
@example("http", "[::1", None)
@example("https", "a..b", None)
@example("http", "x" * 64 + ".com", None)
@example("http", "bücher.de", None)
def test_an_accepted_url_is_one_httpx_sends_to_the_same_host(
    scheme: str, host: str, port: str | None
) -> None:
    url = _url(scheme, host, port)
    try:
        target = parse_webhook_url(url)
    except InvalidWebhookUrl:
        return
    parsed = httpx.URL(url)  # raises InvalidURL for what httpx cannot send
    assert parsed.scheme == target.scheme
    assert parsed.raw_host.decode("ascii").lower() == target.host  # what is resolved
    assert (parsed.port or (443 if parsed.scheme == "https" else 80)) == target.port
    assert 1 <= target.port <= 65535
    # the notifier's resolver (loop.getaddrinfo with a str) encodes the host with this codec
    target.host.encode("idna")
    numeric = libc_numeric(target.host)
    assert numeric == target.address


@settings(max_examples=1500, deadline=None)
@given(hosts, ports)
@example("0x7f.0.0.1", None)
@example("2130706433", "80")
@example("127.1", None)
@example("0", None)
@example("[::ffff:127.0.0.1]", None)
@example("10.1", None)
def test_a_url_accepted_without_private_targets_never_reaches_a_private_address(
    host: str, port: str | None
) -> None:
    url = _url("http", host, port)
    try:
        target = check_webhook_url(url, allow_private=False)
    except InvalidWebhookUrl:
        return
    address = libc_numeric(target.host)
    if address is not None:
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        assert address.is_global
        assert not address.is_multicast


@pytest.mark.parametrize(
    "url",
    [
        "http://127.000.000.001:9/hook",
        "http://0177.0.0.1:9/hook",
        "http://1.2.3.256/",
        "http://[::1/",
        "http://[fe80::1%25eth0]/",
        "http://a..b/",
        "http://exa%41mple.com/",
        "http://08/",
        "http://example.123/",
        "http://example.com:0/",
        "http://example.com:65536/",
        "http://example.com:8o/",
        "http://user:pw@example.com/",
        "ftp://example.com/",
        "http:///path",
        "http://exa mple.com/",
        "http://example.com/\x00",
        "http://" + "a" * 64 + ".com/",
    ],
)
def test_unsendable_urls_are_refused_whatever_the_policy(url: str) -> None:
    with pytest.raises(InvalidWebhookUrl) as refused:
        check_webhook_url(url, allow_private=True)
    assert not isinstance(refused.value, PrivateWebhookUrl)


@pytest.mark.parametrize(
    ("url", "address"),
    [
        ("http://127.0.0.1:9/", "127.0.0.1"),
        ("http://0x7f.0.0.1:9/", "127.0.0.1"),
        ("http://0x7F.1/", "127.0.0.1"),
        ("http://2130706433/", "127.0.0.1"),
        ("http://127.1/", "127.0.0.1"),
        ("http://0/", "0.0.0.0"),
        ("http://10.1/", "10.0.0.1"),
        ("http://0xa9fea9fe/", "169.254.169.254"),
        ("http://[::ffff:127.0.0.1]/", "::ffff:127.0.0.1"),
    ],
)
def test_every_spelling_of_an_ip_goes_through_the_private_check(url: str, address: str) -> None:
    assert parse_webhook_url(url).address == ipaddress.ip_address(address)
    with pytest.raises(PrivateWebhookUrl, match="loopback or private"):
        check_webhook_url(url, allow_private=False)
    assert check_webhook_url(url, allow_private=True).address == ipaddress.ip_address(address)


def test_names_and_public_addresses_pass() -> None:
    target = check_webhook_url("https://Hooks.Example.com:8443/orra?x=1", allow_private=False)
    assert (target.scheme, target.host, target.port, target.address) == (
        "https",
        "hooks.example.com",
        8443,
        None,
    )
    assert check_webhook_url("http://8.8.8.8/", allow_private=False).port == 80
    assert check_webhook_url("http://bücher.de/", allow_private=False).host == "xn--bcher-kva.de"
    with pytest.raises(PrivateWebhookUrl):
        check_webhook_url("http://build.internal/", allow_private=False)
    with pytest.raises(PrivateWebhookUrl):
        check_webhook_url("http://LOCALHOST:3000/", allow_private=False)
