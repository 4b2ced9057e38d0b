"""Pruning: read notifications and finished deliveries past the retention period."""

from __future__ import annotations

import pytest

from notifications.models import Delivery, Event, Notification, OutboundDelivery
from notifications.retention import notifications_prune
from notifications.tasks import notifications_prune_task
from spm.tenancy import tenant_context
from tests.notifications.conftest import at, raise_event

NOW = "2024-06-30T12:00"


@pytest.fixture
def history(personas, in_org, clock):
    """Rita's notifications: read and unread on 1 April, and read ones later."""
    rep = personas.rep1
    rows = {}
    for name, moment, read in [
        ("old read", "2024-04-01T11:59", True),
        ("old unread", "2024-04-01T11:59", False),
        ("boundary read", "2024-04-01T12:00", True),
        ("recent read", "2024-06-01T09:00", True),
    ]:
        clock.set(at(moment))
        event = raise_event(rep, title=name)
        notification = Notification.objects.get(event=event)
        if read:
            notification.read_at = at(moment)
            notification.save()
        rows[name] = event
    return rows


def titles() -> set[str]:
    return set(Notification.unscoped.values_list("event__title", flat=True))


def test_prune_deletes_old_read_only(history):
    counts = notifications_prune(now=at(NOW))

    # 90 days before 30 June 12:00 is 1 April 12:00, and a row of that moment
    # is kept.
    assert titles() == {"old unread", "boundary read", "recent read"}
    assert counts["notifications"] == 1


def test_prune_deletes_old_event_without_rows(history):
    notifications_prune(now=at(NOW))

    assert not Event.unscoped.filter(pk=history["old read"].pk).exists()
    assert Event.unscoped.filter(pk=history["old unread"].pk).exists()


def test_prune_keeps_waiting_deliveries(history):
    old_unread = Notification.unscoped.get(event=history["old unread"])
    Delivery.unscoped.create(
        organization=old_unread.organization,
        notification=old_unread,
        channel=Delivery.Channel.EMAIL,
        status=Delivery.Status.PENDING,
        created_at=at("2024-04-01T11:59"),
    )

    counts = notifications_prune(now=at(NOW))

    channels = set(
        Delivery.unscoped.filter(notification=old_unread).values_list(
            "channel", "status"
        )
    )
    # The in-app row is sent and old, so it goes. The pending email stays.
    assert channels == {("email", "pending")}
    assert counts["deliveries"] == 1


def test_prune_outbound_rows(history, personas):
    from notifications.models import WebhookEndpoint

    endpoint = WebhookEndpoint.unscoped.create(
        organization=personas.org,
        url="https://127.0.0.1:9/hook",
        event_types=["lead.assigned"],
        secret_encrypted="unused",
    )
    for status, moment in [
        ("sent", "2024-04-01T11:59"),
        ("failed", "2024-04-01T11:59"),
        ("sent", "2024-04-01T12:00"),
    ]:
        event = Event.unscoped.create(
            organization=personas.org, type="lead.assigned", created_at=at(NOW)
        )
        OutboundDelivery.unscoped.create(
            organization=personas.org,
            event=event,
            kind="webhook",
            endpoint=endpoint,
            status=status,
            request_body="{}",
            created_at=at(moment),
        )

    counts = notifications_prune(now=at(NOW))

    assert counts["outbound_deliveries"] == 2
    assert list(OutboundDelivery.unscoped.values_list("created_at", flat=True)) == [
        at("2024-04-01T12:00")
    ]


def test_retention_setting_respected(history, settings):
    settings.NOTIFICATIONS_RETENTION_DAYS = 10

    notifications_prune(now=at(NOW))

    assert titles() == {"old unread"}


def test_prune_task_runs_across_organisations(history, personas, clock):
    clock.set(at("2024-04-01T08:00"))
    with tenant_context(personas.other_org):
        other = Event.objects.create(
            organization=personas.other_org,
            type="lead.assigned",
            title="Globex old read",
            created_at=at("2024-04-01T08:00"),
        )
        Notification.objects.create(
            organization=personas.other_org,
            event=other,
            member=personas.other_rep,
            read_at=at("2024-04-01T09:00"),
            created_at=at("2024-04-01T08:00"),
        )
    clock.set(at(NOW))

    counts = notifications_prune_task.delay().get()

    assert counts["notifications"] == 2
    assert "Globex old read" not in titles()
