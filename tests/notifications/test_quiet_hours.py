"""Quiet hours delay email to their end, in the member's time zone, never in-app."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core import mail

from notifications.delivery import deliveries_send_due
from notifications.models import Delivery
from notifications.schedule import in_quiet_hours
from tests.notifications.conftest import (
    at,
    deliveries_of,
    prefer,
    quiet_hours,
    raise_event,
)

DELAYED = Delivery.Status.DELAYED
T = dt.time


@pytest.mark.parametrize(
    ("moment", "start", "end", "quiet"),
    [
        (T(21, 59), T(22), T(7), False),
        (T(22, 0), T(22), T(7), True),
        (T(23, 59), T(22), T(7), True),
        (T(0, 0), T(22), T(7), True),
        (T(6, 59), T(22), T(7), True),
        (T(7, 0), T(22), T(7), False),
        (T(12, 0), T(12), T(13), True),
        (T(13, 0), T(12), T(13), False),
        (T(11, 59), T(12), T(13), False),
    ],
)
def test_in_quiet_hours_bounds(moment, start, end, quiet):
    assert in_quiet_hours(moment, start, end) is quiet


@pytest.fixture
def night_owl(personas, in_org):
    """Rita wants email for new leads, and quiet from 22:00 to 07:00 in New York."""
    rep = personas.rep1
    prefer(rep, "lead.assigned", "in_app", "email")
    quiet_hours(rep, "22:00", "07:00", time_zone="America/New_York")
    return rep


@pytest.mark.parametrize(
    ("local_now", "local_end"),
    [
        # Before midnight the quiet hours end the next morning.
        ("2024-03-04T22:30", "2024-03-05T07:00"),
        ("2024-03-04T23:59", "2024-03-05T07:00"),
        # After midnight they end the same morning.
        ("2024-03-05T00:01", "2024-03-05T07:00"),
        ("2024-03-05T06:59", "2024-03-05T07:00"),
    ],
)
def test_email_delayed_to_quiet_end(
    night_owl, clock, django_capture_on_commit_callbacks, local_now, local_end
):
    clock.set(at(local_now, "America/New_York"))

    with django_capture_on_commit_callbacks(execute=True):
        raise_event(night_owl)

    found = deliveries_of(night_owl)
    assert found["in_app"].status == Delivery.Status.SENT
    assert found["email"].status == DELAYED
    assert found["email"].next_attempt_at == at(local_end, "America/New_York")
    assert mail.outbox == []


def test_quiet_end_in_utc(night_owl, clock):
    # 03:30 UTC is 22:30 EST; 07:00 EST is 12:00 UTC.
    clock.set(at("2024-03-05T03:30"))

    raise_event(night_owl)

    assert deliveries_of(night_owl)["email"].next_attempt_at == at("2024-03-05T12:00")


def test_quiet_end_after_daylight_saving_start(night_owl, clock):
    # New York moves to EDT at 02:00 on 10 March 2024, so 07:00 is 11:00 UTC.
    clock.set(at("2024-03-09T22:00", "America/New_York"))

    raise_event(night_owl)

    assert deliveries_of(night_owl)["email"].next_attempt_at == at("2024-03-10T11:00")


def test_outside_quiet_hours_sent_at_once(
    night_owl, clock, django_capture_on_commit_callbacks
):
    clock.set(at("2024-03-05T07:00", "America/New_York"))

    with django_capture_on_commit_callbacks(execute=True):
        raise_event(night_owl)

    assert deliveries_of(night_owl)["email"].status == Delivery.Status.SENT
    assert [message.to for message in mail.outbox] == [["rita.rep@acme.test"]]


def test_organisation_zone_when_member_has_none(personas, in_org, clock):
    in_org.time_zone = "Europe/Berlin"
    in_org.save()
    rep = personas.rep1
    prefer(rep, "lead.assigned", "email")
    quiet_hours(rep, "22:00", "07:00")
    # 22:30 UTC on 10 January is 23:30 in Berlin (CET, UTC+1).
    clock.set(at("2024-01-10T22:30"))

    raise_event(rep)

    assert deliveries_of(rep)["email"].next_attempt_at == at("2024-01-11T06:00")


def test_delayed_email_sent_when_quiet_hours_end(night_owl, clock):
    clock.set(at("2024-03-04T23:00", "America/New_York"))
    raise_event(night_owl)

    assert deliveries_send_due(now=at("2024-03-05T06:59", "America/New_York")) == 0
    assert mail.outbox == []
    assert deliveries_send_due(now=at("2024-03-05T07:00", "America/New_York")) == 1

    email = deliveries_of(night_owl)["email"]
    assert email.status == Delivery.Status.SENT
    assert email.sent_at == at("2024-03-05T07:00", "America/New_York")
    assert email.attempts == 1
    [message] = mail.outbox
    assert message.subject == "New lead assigned to you: Ann Lee · Acme"


def test_in_app_never_delayed(night_owl, clock):
    clock.set(at("2024-03-05T02:00", "America/New_York"))

    raise_event(night_owl)

    in_app = deliveries_of(night_owl)["in_app"]
    assert in_app.status == Delivery.Status.SENT
    assert in_app.next_attempt_at is None
    assert night_owl.notifications.get().read_at is None
