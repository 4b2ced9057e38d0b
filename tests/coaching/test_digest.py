"""The daily digest email: recipients, content, links, once a day."""

import datetime as dt
from decimal import Decimal

import pytest
from django.core import mail

from coaching.digest import digest_send
from coaching.models import Alert, AlertStatus, DigestDelivery, Rule
from spm.tenancy import tenant_context

D = dt.date


def _at(day: int, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(2024, 5, day, hour, minute, tzinfo=dt.UTC)


@pytest.fixture
def digest_alerts(personas):
    """Rita's alert from 14 May (old), Rob's and Rex's from 15 May (new)."""
    with tenant_context(personas.org):
        win = Rule.objects.get(builtin_key="win_rate_below_team")
        stale = Rule.objects.get(builtin_key="stale_open_deal")
    common = {"organization": personas.org, "period_key": "rolling"}
    Alert.unscoped.create(
        **common,
        rule=win,
        member=personas.rep1,
        period_label="last 90 days",
        value=Decimal("20.0"),
        threshold=Decimal("35"),
        first_seen_at=_at(14, 6),
    )
    new = Alert.unscoped.create(
        **common,
        rule=win,
        member=personas.rep2,
        period_label="last 90 days",
        value=Decimal("30.0"),
        threshold=Decimal("35"),
        first_seen_at=_at(15, 6),
    )
    Alert.unscoped.create(
        organization=personas.org,
        rule=stale,
        member=personas.rep4,
        period_key="current",
        period_label="open deals today",
        value=Decimal(2),
        threshold=Decimal(1),
        first_seen_at=_at(15, 6),
    )
    # Resolved alerts are left out.
    Alert.unscoped.create(
        **common,
        rule=stale,
        member=personas.rep1,
        status=AlertStatus.RESOLVED,
        first_seen_at=_at(15, 5),
    )
    return new


def _mail_to(address: str):
    found = [message for message in mail.outbox if message.to == [address]]
    assert len(found) == 1, [message.to for message in mail.outbox]
    return found[0]


def test_manager_digest_lists_new_and_still_open(personas, digest_alerts):
    # 07:30 UTC; the first digest looks back 24 hours, to 14 May 07:30.
    sent = digest_send(organization=personas.org, now=_at(15, 7, 30))

    # Max (manager of Rita and Rob), Vera (VP above him), Olga (Rex's
    # manager) and Ada (admin) have alerts. Reps get no digest.
    assert sent == 4
    message = _mail_to(personas.manager.user.email)
    assert message.subject == "1 new coaching alert · Acme"
    body = message.body
    assert "New since the last digest (1):" in body
    assert (
        "- Rob Rep: Win rate below the team median (last 90 days): 30.0% against "
        "a threshold of 35.0%"
    ) in body
    assert (
        f"http://127.0.0.1:8000/o/acme/coaching/alerts/{digest_alerts.public_id}/"
        in body
    )
    assert "Still open (1):" in body
    assert (
        "- Rita Rep: Win rate below the team median (last 90 days), "
        "first seen 2024-05-14"
    ) in body
    assert "Rex Rep" not in body
    assert "http://127.0.0.1:8000/o/acme/coaching/" in body
    html, kind = message.alternatives[0]
    assert kind == "text/html"
    assert "Rob Rep: Win rate below the team median" in html


def test_admin_digest_covers_everyone(personas, digest_alerts):
    digest_send(organization=personas.org, now=_at(15, 7, 30))
    message = _mail_to(personas.admin.user.email)
    assert message.subject == "2 new coaching alerts · Acme"
    assert "Rex Rep: Open deal with no activity for 14 days" in message.body
    assert "2 deals against a threshold of 1 deal" in message.body


def test_digest_sent_once_a_day(personas, digest_alerts):
    digest_send(organization=personas.org, now=_at(15, 7, 30))
    assert digest_send(organization=personas.org, now=_at(15, 8, 30)) == 0
    assert len(mail.outbox) == 4
    with tenant_context(personas.org):
        assert DigestDelivery.objects.filter(digest_date=D(2024, 5, 15)).count() == 4


def test_next_digest_counts_new_since_last_one(personas, digest_alerts):
    digest_send(organization=personas.org, now=_at(15, 7, 30))
    mail.outbox.clear()

    digest_send(organization=personas.org, now=_at(16, 7, 30))

    message = _mail_to(personas.manager.user.email)
    assert message.subject == "2 open coaching alerts · Acme"
    assert "No new alerts since the last digest." in message.body
    assert "Still open (2):" in message.body


def test_no_digest_before_local_morning(personas, digest_alerts):
    personas.org.time_zone = "America/New_York"
    personas.org.save()
    # 10:30 UTC is 06:30 in New York (EDT): too early.
    assert digest_send(organization=personas.org, now=_at(15, 10, 30)) == 0
    # 11:05 UTC is 07:05 in New York.
    assert digest_send(organization=personas.org, now=_at(15, 11, 5)) == 4


def test_no_digest_without_alerts(personas):
    assert digest_send(organization=personas.org, now=_at(15, 7, 30)) == 0
    assert mail.outbox == []
