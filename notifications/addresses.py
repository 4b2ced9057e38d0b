"""Checks of outbound URLs, so that webhooks cannot reach the server's own network.

A URL is accepted when its scheme is https (http too while DEBUG is on) and
every address its host resolves to is public. Private, loopback,
link-local, multicast, reserved and unspecified addresses are rejected,
IPv4 and IPv6 alike, and an IPv4-mapped IPv6 address is judged by its IPv4
address. An organisation that runs Attain inside its own network may allow
non-public addresses (``OutboundSettings.allow_private_addresses``).

Error messages name only the URL's scheme and host (``url_origin``), because
the path and query of an incoming-webhook URL are its secret token.

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


# Kinds of address (address_problem) that no setting allows.
ALWAYS_REJECTED = frozenset({"unspecified", "link-local", "multicast"})


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


def url_origin(url: str) -> str:
    """Return the scheme and host of ``url`` (with a port if given), for messages.

    The path, query, fragment and any user name or password are left out,
    because they may hold a secret token.
    """
    text = url.strip()
    try:
        parts = urlsplit(text)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return "(cannot be parsed)"
    if not parts.scheme:
        # "hooks.slack.com/services/..." parses as a path, so the host is
        # its first segment, after any user name and password.
        host = text.split("/", 1)[0].split("?", 1)[0].rsplit("@", 1)[-1]
        return host or "(empty)"
    if ":" in host:
        host = f"[{host}]"
    if port is not None:
        host = f"{host}:{port}"
    return f"{parts.scheme.lower()}://{host}"


def url_secrets_removed(text: str, url: str) -> str:
    """Return ``text`` with ``url`` and its path and query replaced by the origin.

    For messages from libraries that may quote the URL or the request path.
    """
    url = url.strip()
    origin = url_origin(url)
    if url:
        text = text.replace(url, origin)
    try:
        parts = urlsplit(url)
    except ValueError:
        return text
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    if len(path) > 1:
        text = text.replace(path, "/…")
    return text


def _split(url: str) -> tuple[str, str, int, str]:
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as error:
        # The parser's message can quote the user name and password, so
        # only the kind of problem is shown.
        raise UnsafeURL(f"Invalid URL: {_parse_problem(error)}.") from None
    origin = url_origin(url)
    scheme = parts.scheme.lower()
    allowed = ("https",) if https_required() else ("https", "http")
    if scheme not in allowed:
        raise UnsafeURL(
            f"Invalid URL {origin}: use an https:// address"
            + ("." if https_required() else " or, while DEBUG is on, http://.")
        )
    if not parts.hostname:
        raise UnsafeURL(f"Invalid URL {origin}: the host is missing.")
    if parts.username or parts.password:
        raise UnsafeURL(
            f"Invalid URL {origin}: remove the user name and password, because "
            "endpoints authenticate Attain by the signature."
        )
    if port is None:
        port = 443 if scheme == "https" else 80
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    return scheme, parts.hostname, port, path


def _parse_problem(error: ValueError) -> str:
    if "port" in str(error).lower():
        return "the port is not a number from 0 to 65535"
    return "it cannot be parsed, so check the address for typing errors"


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
    otherwise be steered to the non-public one. With it on, link-local,
    multicast and unspecified addresses are still rejected: a self-hosted
    service is on a private network or this host, and 169.254.169.254 is the
    instance metadata service of the common clouds.
    """
    scheme, host, port, path = _split(url)
    addresses = _resolve(host, port, resolver or socket.getaddrinfo)
    for address in addresses if allow_private else ():
        problem = address_problem(address)
        if problem in ALWAYS_REJECTED:
            raise UnsafeURL(
                f"The URL {url_origin(url)} points at {_describe(address)}, "
                f"which is not allowed even for self-hosted installs ({problem}). "
                "Use a public address or one of a private network."
            )
    if not allow_private:
        for address in addresses:
            problem = address_problem(address)
            if problem:
                raise UnsafeURL(
                    f"The URL {url_origin(url)} points at {_describe(address)}, "
                    f"which is not public ({problem}). Use a public address, or "
                    'turn on "Allow private addresses for self-hosted installs" '
                    "under Notifications, Webhooks."
                )
    return Target(
        url=url.strip(),
        scheme=scheme,
        host=host,
        port=port,
        path=path,
        addresses=tuple(str(address) for address in addresses),
    )
