"""Fixtures of the notification tests: a settable clock and email backends."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from django.core.mail.backends.base import BaseEmailBackend
from django.utils import timezone

from notifications.models import Delivery, MemberSettings, Preference
from notifications.services import notify

UTC = dt.UTC
FAILING_BACKEND = "tests.notifications.conftest.FailingBackend"


class FailingBackend(BaseEmailBackend):
    """An email backend whose server always drops the connection."""

    def send_messages(self, email_messages):
        raise ConnectionRefusedError("mail server at 127.0.0.1:2525 refused")


@pytest.fixture
def clock(monkeypatch):
    """Set timezone.now() to the moment given to ``clock.set``."""

    class Clock:
        now: dt.datetime

        def set(self, moment: dt.datetime) -> dt.datetime:
            self.now = moment.astimezone(UTC)
            monkeypatch.setattr(timezone, "now", lambda: self.now)
            return self.now

    return Clock()


def at(text: str, zone: str = "UTC") -> dt.datetime:
    """Return the moment of an ISO local time in ``zone``."""
    return dt.datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(zone))


def prefer(member, event_type: str, *channels: str) -> Preference:
    return Preference.objects.create(
        organization=member.organization,
        member=member,
        event_type=event_type,
        channels=list(channels),
    )


def quiet_hours(member, start: str, end: str, time_zone: str = "") -> MemberSettings:
    return MemberSettings.objects.create(
        organization=member.organization,
        member=member,
        time_zone=time_zone,
        quiet_start=dt.time.fromisoformat(start),
        quiet_end=dt.time.fromisoformat(end),
    )


def raise_event(member, event_type: str = "lead.assigned", **extra):
    values = {
        "title": "New lead assigned to you: Ann Lee",
        "url": "/o/acme/leads/mine/",
    }
    values.update(extra)
    return notify(member.organization, event_type, [member], **values)


def deliveries_of(member) -> dict[str, Delivery]:
    return {
        delivery.channel: delivery
        for delivery in Delivery.objects.filter(notification__member=member)
    }


@pytest.fixture
def credentials_key(monkeypatch):
    """Set the key that encrypts webhook secrets and chat URLs."""
    monkeypatch.setenv("ATTAIN_CREDENTIALS_KEY", "notification-tests-credentials-key")


@pytest.fixture
def receiver():
    from tests.notifications.receiver import Receiver

    running = Receiver().start()
    yield running
    running.stop()


@pytest.fixture
def resolver(monkeypatch):
    """Resolve host names from a table, so no test looks up a real host name.

    ``resolver.names[host] = ["10.0.0.5"]`` sets a name's addresses. IP
    literals and "localhost" resolve as usual, and any other name fails as
    an unknown host.
    """
    import ipaddress
    import socket

    real_getaddrinfo = socket.getaddrinfo

    class Table:
        def __init__(self) -> None:
            self.names: dict[str, list[str]] = {}
            self.lookups: list[str] = []

        def __call__(self, host, port, *args, **kwargs):
            try:
                ipaddress.ip_address(host)
            except ValueError:
                pass
            else:
                return real_getaddrinfo(host, port, *args, **kwargs)
            if host == "localhost":
                return real_getaddrinfo(host, port, *args, **kwargs)
            self.lookups.append(host)
            if host not in self.names:
                raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
            results = []
            for address in self.names[host]:
                family = socket.AF_INET6 if ":" in address else socket.AF_INET
                sockaddr = (address, port, 0, 0) if ":" in address else (address, port)
                results.append((family, socket.SOCK_STREAM, 6, "", sockaddr))
            return results

    table = Table()
    monkeypatch.setattr(socket, "getaddrinfo", table)
    return table
