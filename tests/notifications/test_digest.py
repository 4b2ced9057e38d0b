"""The daily digest gathers a day's low-urgency events into one email, sent once."""

from __future__ import annotations

import pytest
from django.core import mail

from notifications.delivery import digests_send
from notifications.models import Delivery
from notifications.services import notify
from notifications.tasks import digests_send_task
from tests.notifications.conftest import at, deliveries_of, prefer, quiet_hours


def alert_opened(member, title: str, **extra):
    return notify(
        member.organization,
        "coaching.alert_opened",
        [member],
        title=title,
        url="/o/acme/coaching/",
        **extra,
    )


def digest_lines(message) -> list[str]:
    return [line for line in message.body.splitlines() if line.startswith("- ")]


@pytest.fixture
def digest_reader(personas, in_org, clock):
    """Max gets coaching alerts in-app and in the digest; three arrive on 14 May."""
    manager = personas.manager
    prefer(manager, "coaching.alert_opened", "in_app", "digest")
    for hour, title in (
        (9, "Win rate: Rita Rep"),
        (13, "Stale deal: Rob Rep"),
        (17, "Activity: Rita Rep"),
    ):
        clock.set(at(f"2024-05-14T{hour:02}:30"))
        alert_opened(manager, title)
    return manager


def test_digest_rows_wait_for_next_morning(digest_reader):
    rows = Delivery.objects.filter(channel="email", digest=True)

    assert rows.count() == 3
    assert {row.next_attempt_at for row in rows} == {at("2024-05-15T08:00")}
    assert {row.status for row in rows} == {Delivery.Status.PENDING}


def test_digest_one_message_with_all_items(digest_reader, clock):
    clock.set(at("2024-05-15T08:05"))

    digests_send_task.delay()

    [message] = mail.outbox
    assert message.subject == "Daily digest: 3 notifications · Acme"
    assert message.to == ["max.manager@acme.test"]
    assert digest_lines(message) == [
        "- 2024-05-14 09:30 Win rate: Rita Rep",
        "- 2024-05-14 13:30 Stale deal: Rob Rep",
        "- 2024-05-14 17:30 Activity: Rita Rep",
    ]
    html = message.alternatives[0].content
    assert html.count("<li>") == 3


def test_digest_sent_once_when_run_twice(digest_reader, clock):
    clock.set(at("2024-05-15T08:05"))

    assert digests_send() == 1
    assert digests_send() == 0

    assert len(mail.outbox) == 1
    rows = Delivery.objects.filter(channel="email", digest=True)
    assert {row.status for row in rows} == {Delivery.Status.SENT}
    assert {row.sent_at for row in rows} == {at("2024-05-15T08:05")}


def test_digest_not_sent_before_its_time(digest_reader):
    assert digests_send(now=at("2024-05-15T07:59")) == 0

    assert mail.outbox == []


def test_later_event_waits_for_next_digest(digest_reader, clock):
    clock.set(at("2024-05-15T08:30"))
    alert_opened(digest_reader, "Win rate: Rob Rep")

    digests_send(now=at("2024-05-15T08:31"))
    digests_send(now=at("2024-05-16T08:00"))

    first, second = mail.outbox
    assert first.subject == "Daily digest: 3 notifications · Acme"
    assert second.subject == "Daily digest: 1 notification · Acme"
    assert digest_lines(second) == ["- 2024-05-15 08:30 Win rate: Rob Rep"]


def test_urgent_event_skips_digest(digest_reader, clock):
    clock.set(at("2024-05-14T18:00"))

    alert_opened(digest_reader, "Critical: Rob Rep", urgency="normal")

    email = Delivery.objects.filter(channel="email").latest("pk")
    assert email.digest is False
    assert email.next_attempt_at == at("2024-05-14T18:02")
    digests_send(now=at("2024-05-15T08:05"))
    [message] = mail.outbox
    assert len(digest_lines(message)) == 3


def test_digest_in_member_zone_after_quiet_hours(personas, in_org, clock):
    manager = personas.manager
    prefer(manager, "coaching.alert_opened", "digest")
    quiet_hours(manager, "21:00", "09:30", time_zone="Asia/Tokyo")
    # 01:00 UTC is 10:00 in Tokyo; the next 08:00 there is quiet until 09:30.
    clock.set(at("2024-05-14T01:00"))

    alert_opened(manager, "Win rate: Rita Rep")

    email = deliveries_of(manager)["email"]
    assert email.next_attempt_at == at("2024-05-15T09:30", "Asia/Tokyo")
    assert "in_app" not in deliveries_of(manager)


def test_digests_of_two_members_separate(digest_reader, personas, clock):
    prefer(personas.vp, "coaching.alert_opened", "digest")
    clock.set(at("2024-05-14T12:00"))
    alert_opened(personas.vp, "Win rate: Remy Rep")

    assert digests_send(now=at("2024-05-15T08:00")) == 2

    subjects = sorted((m.to[0], m.subject) for m in mail.outbox)
    assert subjects == [
        ("max.manager@acme.test", "Daily digest: 3 notifications · Acme"),
        ("vera.vp@acme.test", "Daily digest: 1 notification · Acme"),
    ]
