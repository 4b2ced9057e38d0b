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
