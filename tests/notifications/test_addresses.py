"""Outbound URL checks: https, and no private, loopback or other non-public address.

No test resolves a real host name: the URLs are IP literals or "localhost",
and the ``resolver`` fixture resolves any other name from a table.
"""

from __future__ import annotations

import pytest

from notifications.addresses import UnsafeURL, url_check, url_origin

REJECTED = [
    ("https://10.0.0.1/hook", "10.0.0.1", "private"),
    ("https://127.0.0.1/hook", "127.0.0.1", "loopback"),
    ("https://169.254.169.254/latest/meta-data/", "169.254.169.254", "link-local"),
    ("https://[::1]/hook", "::1", "loopback"),
    ("https://[fd00::1]/hook", "fd00::1", "private"),
    ("https://[::ffff:127.0.0.1]/hook", "::ffff:7f00:1 (IPv4 127.0.0.1)", "loopback"),
    ("https://[::ffff:10.1.2.3]/hook", "::ffff:a01:203 (IPv4 10.1.2.3)", "private"),
    ("https://[fe80::1]/hook", "fe80::1", "link-local"),
    ("https://0.0.0.0/hook", "0.0.0.0", "unspecified"),
    ("https://[::]/hook", "::", "unspecified"),
    ("https://224.0.0.1/hook", "224.0.0.1", "multicast"),
    ("https://[ff02::1]/hook", "ff02::1", "multicast"),
    ("https://240.0.0.1/hook", "240.0.0.1", "private"),
    ("https://100.64.0.1/hook", "100.64.0.1", "non-public"),
    ("https://192.168.1.10:8443/hook", "192.168.1.10", "private"),
]


@pytest.mark.parametrize(("url", "address", "kind"), REJECTED)
def test_non_public_address_rejected(url, address, kind):
    with pytest.raises(UnsafeURL) as error:
        url_check(url, allow_private=False)

    message = str(error.value)
    assert message.startswith(
        f"The URL {url_origin(url)} points at {address}, which is not public ({kind})."
    )
    assert "Allow private addresses for self-hosted installs" in message


def test_localhost_rejected():
    with pytest.raises(
        UnsafeURL, match=r"points at (127.0.0.1|::1), which is not public \(loopback\)"
    ):
        url_check("https://localhost/hook", allow_private=False)


def test_name_resolving_to_private_rejected(resolver):
    resolver.names["hooks.internal.test"] = ["10.20.30.40"]

    with pytest.raises(
        UnsafeURL, match=r"points at 10.20.30.40, which is not public \(private\)"
    ):
        url_check("https://hooks.internal.test/in", allow_private=False)


def test_name_with_one_private_address_rejected(resolver):
    resolver.names["mixed.example.test"] = ["93.184.216.34", "fd00::7"]

    with pytest.raises(
        UnsafeURL, match=r"points at fd00::7, which is not public \(private\)"
    ):
        url_check("https://mixed.example.test/in", allow_private=False)


def test_public_name_accepted(resolver):
    resolver.names["hooks.example.test"] = ["93.184.216.34", "2606:2800:220:1::1"]

    target = url_check("https://hooks.example.test:8443/in?x=1", allow_private=False)

    assert target.host == "hooks.example.test"
    assert target.port == 8443
    assert target.path == "/in?x=1"
    assert target.addresses == ("93.184.216.34", "2606:2800:220:1::1")


def test_unknown_name_rejected(resolver):
    with pytest.raises(UnsafeURL, match="Cannot resolve the host 'nowhere.test'"):
        url_check("https://nowhere.test/", allow_private=False)


def test_loopback_accepted_when_private_allowed():
    target = url_check("https://127.0.0.1:8443/hook", allow_private=True)

    assert target.addresses == ("127.0.0.1",)
    assert target.port == 8443


def test_http_rejected_without_debug(settings):
    settings.DEBUG = False

    with pytest.raises(UnsafeURL, match="use an https:// address"):
        url_check("http://127.0.0.1:8080/hook", allow_private=True)


def test_http_accepted_with_debug(settings):
    settings.DEBUG = True

    target = url_check("http://127.0.0.1:8080/hook", allow_private=True)

    assert target.scheme == "http"
    assert target.port == 8080


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://127.0.0.1/x", "use an https:// address"),
        ("https:///path-only", "the host is missing"),
        ("https://user:pw@127.0.0.1/x", "remove the user name and password"),
        ("https://127.0.0.1:99999/x", "Invalid URL"),
    ],
)
def test_malformed_url_rejected(url, message):
    with pytest.raises(UnsafeURL, match=message):
        url_check(url, allow_private=True)


@pytest.mark.parametrize(
    ("url", "address", "kind"),
    [
        ("https://169.254.169.254/latest/meta-data/", "169.254.169.254", "link-local"),
        ("https://[fe80::1]/hook", "fe80::1", "link-local"),
        ("https://0.0.0.0/hook", "0.0.0.0", "unspecified"),
        ("https://224.0.0.1/hook", "224.0.0.1", "multicast"),
    ],
)
def test_metadata_address_rejected_when_private_allowed(url, address, kind):
    with pytest.raises(UnsafeURL) as error:
        url_check(url, allow_private=True)

    assert str(error.value).startswith(
        f"The URL {url_origin(url)} points at {address}, which is not allowed "
        f"even for self-hosted installs ({kind})."
    )


def test_private_and_loopback_allowed_when_private_allowed():
    for url in (
        "https://10.0.0.1/hook",
        "https://127.0.0.1:8080/hook",
        "https://[::1]/",
    ):
        assert url_check(url, allow_private=True).url == url
