"""Checks of outbound URLs, so that webhooks cannot reach the server's own network.

A URL is accepted when its scheme is https (http too while DEBUG is on) and
every address its host resolves to is public. Private, loopback,
link-local, multicast, reserved and unspecified addresses are rejected,
IPv4 and IPv6 alike, and an IPv4-mapped IPv6 address is judged by its IPv4
address. An organisation that runs Attain inside its own network may allow
non-public addresses (``OutboundSettings.allow_private_addresses``).

The check runs when an admin saves the URL and again before every attempt,
on the addresses resolved for that attempt. The sender then connects to
one of those checked addresses, so a DNS answer that changes between the
check and the connection (DNS rebinding) cannot move the request inside.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# The resolver, replaced in tests so that no test looks up a real name.
Resolver = Callable[..., list]


class UnsafeURL(ValueError):
    """A URL that outbound requests must not go to; the message gives the reason."""


@dataclass(frozen=True)
class Target:
    """A checked URL: its parts and the addresses that a request may connect to."""

    url: str
    scheme: str
    host: str
    port: int
    path: str
    addresses: tuple[str, ...]


def https_required() -> bool:
    return not settings.DEBUG


def address_problem(address: IPAddress) -> str:
    """Return why ``address`` is not public ("private", "loopback" ...), or ""."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    checks = (
        ("unspecified", address.is_unspecified),
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("private", address.is_private),
        ("reserved", address.is_reserved),
    )
    for name, matches in checks:
        if matches:
            return name
    # Shared address space (100.64.0.0/10) and similar ranges are neither
    # private nor reserved in Python's tables, but are not global either.
    if not address.is_global:
        return "non-public"
    return ""


def _describe(address: IPAddress) -> str:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return f"{address} (IPv4 {address.ipv4_mapped})"
    return str(address)


def _split(url: str) -> tuple[str, str, int, str]:
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as error:
        raise UnsafeURL(f"Invalid URL {url!r}: {error}.") from None
    scheme = parts.scheme.lower()
    allowed = ("https",) if https_required() else ("https", "http")
    if scheme not in allowed:
        raise UnsafeURL(
            f"Invalid URL {url!r}: use an https:// address"
            + ("." if https_required() else " or, while DEBUG is on, http://.")
        )
    if not parts.hostname:
        raise UnsafeURL(f"Invalid URL {url!r}: the host is missing.")
    if parts.username or parts.password:
        raise UnsafeURL(
            f"Invalid URL {url!r}: remove the user name and password; "
            "endpoints authenticate Attain by the signature."
        )
    if port is None:
        port = 443 if scheme == "https" else 80
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    return scheme, parts.hostname, port, path


def _resolve(host: str, port: int, resolver: Resolver) -> list[IPAddress]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        infos = resolver(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as error:
        raise UnsafeURL(f"Cannot resolve the host {host!r}: {error}.") from None
    addresses: list[IPAddress] = []
    for info in infos:
        # The address may carry an IPv6 zone ("fe80::1%eth0").
        address = ipaddress.ip_address(info[4][0].split("%", 1)[0])
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise UnsafeURL(f"Cannot resolve the host {host!r}: no address found.")
    return addresses


def url_check(
    url: str, *, allow_private: bool, resolver: Resolver | None = None
) -> Target:
    """Check ``url`` and resolve its host; return the target, or raise UnsafeURL.

    With ``allow_private`` off, a host with any non-public address is
    rejected, even when it has public ones as well, because the sender could
    otherwise be steered to the non-public one.
    """
    scheme, host, port, path = _split(url)
    addresses = _resolve(host, port, resolver or socket.getaddrinfo)
    if not allow_private:
        for address in addresses:
            problem = address_problem(address)
            if problem:
                raise UnsafeURL(
                    f"The URL {url} points at {_describe(address)}, which is "
                    f"not public ({problem}). Use a public address, or turn on "
                    '"Allow private addresses for self-hosted installs" under '
                    "Notifications, Webhooks."
                )
    return Target(
        url=url.strip(),
        scheme=scheme,
        host=host,
        port=port,
        path=path,
        addresses=tuple(str(address) for address in addresses),
    )
