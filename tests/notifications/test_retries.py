"""Failed email is retried with backoff, and never breaks or outlives the feature."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core import mail
from django.db import transaction

from activity.models import Lead
from notifications.delivery import deliveries_send_due, email_delivery_send
from notifications.models import Delivery, Event, Notification
from routing.models import Assignment
from routing.services import lead_route
from tests.notifications.conftest import (
    FAILING_BACKEND,
    at,
    deliveries_of,
    prefer,
    raise_event,
)
from tests.routing.conftest import make_pool, pending_lead, publish_pool

LOCMEM_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
MINUTE = dt.timedelta(minutes=1)


@pytest.fixture
def rita_pool(personas, in_org):
    """One round-robin pool with Rita, who wants email for new leads."""
    publish_pool(in_org, make_pool(in_org, "round_robin", [personas.rep1]))
    prefer(personas.rep1, "lead.assigned", "in_app", "email")
    return personas.rep1


def test_failed_send_does_not_break_routing(
    rita_pool, clock, settings, django_capture_on_commit_callbacks
):
    settings.EMAIL_BACKEND = FAILING_BACKEND
    now = clock.set(at("2024-05-14T10:00"))
    lead = pending_lead(rita_pool.organization, first_name="Ann", last_name="Lee")

    with django_capture_on_commit_callbacks(execute=True):
        assignment = lead_route(lead_id=lead.pk)

    assert assignment.member == rita_pool
    lead.refresh_from_db()
    assert lead.owner == rita_pool
    assert lead.routing_status == Lead.RoutingStatus.ASSIGNED
    email = deliveries_of(rita_pool)["email"]
    assert email.status == Delivery.Status.PENDING
    assert email.attempts == 1
    assert email.last_error == (
        "ConnectionRefusedError: mail server at 127.0.0.1:2525 refused"
    )
    assert email.next_attempt_at == now + MINUTE
    assert deliveries_of(rita_pool)["in_app"].status == Delivery.Status.SENT


def test_retries_back_off_then_fail(rita_pool, clock, settings):
    settings.EMAIL_BACKEND = FAILING_BACKEND
    start = clock.set(at("2024-05-14T10:00"))
    raise_event(rita_pool)
    email = deliveries_of(rita_pool)["email"]
    email_delivery_send(delivery_id=email.pk, now=start)

    # Each failed attempt waits twice as long as the one before.
    moment = start
    for attempts, wait in ((1, 1), (2, 2), (3, 4), (4, 8)):
        email.refresh_from_db()
        assert email.attempts == attempts
        assert email.next_attempt_at == moment + wait * MINUTE
        early = email.next_attempt_at - dt.timedelta(seconds=1)
        assert deliveries_send_due(now=early) == 0
        moment = email.next_attempt_at
        assert deliveries_send_due(now=moment) == 1

    email.refresh_from_db()
    assert email.attempts == 5
    assert email.status == Delivery.Status.FAILED
    assert email.next_attempt_at is None
    assert deliveries_send_due(now=moment + dt.timedelta(days=1)) == 0


def test_retry_after_failure_succeeds(rita_pool, clock, settings):
    settings.EMAIL_BACKEND = FAILING_BACKEND
    start = clock.set(at("2024-05-14T10:00"))
    raise_event(rita_pool)
    email = deliveries_of(rita_pool)["email"]
    email_delivery_send(delivery_id=email.pk, now=start)

    settings.EMAIL_BACKEND = LOCMEM_BACKEND
    assert deliveries_send_due(now=start + MINUTE) == 1

    email.refresh_from_db()
    assert email.status == Delivery.Status.SENT
    assert email.attempts == 2
    assert email.sent_at == start + MINUTE
    assert len(mail.outbox) == 1


def test_task_rerun_sends_once(rita_pool, clock):
    now = clock.set(at("2024-05-14T10:00"))
    raise_event(rita_pool)
    email = deliveries_of(rita_pool)["email"]

    assert email_delivery_send(delivery_id=email.pk, now=now) == "sent"
    assert email_delivery_send(delivery_id=email.pk, now=now) == "sent"

    assert len(mail.outbox) == 1


def test_task_before_retry_time_waits(rita_pool, clock, settings):
    settings.EMAIL_BACKEND = FAILING_BACKEND
    now = clock.set(at("2024-05-14T10:00"))
    raise_event(rita_pool)
    email = deliveries_of(rita_pool)["email"]
    email_delivery_send(delivery_id=email.pk, now=now)

    # A duplicate task message before the backoff has passed does nothing.
    email_delivery_send(delivery_id=email.pk, now=now + dt.timedelta(seconds=30))

    email.refresh_from_db()
    assert email.attempts == 1


def test_lost_task_sent_by_beat(rita_pool, clock):
    now = clock.set(at("2024-05-14T10:00"))
    raise_event(rita_pool)

    assert deliveries_send_due(now=now + MINUTE) == 0
    assert deliveries_send_due(now=now + 2 * MINUTE) == 1

    assert len(mail.outbox) == 1


def test_rolled_back_feature_sends_nothing(
    rita_pool, django_capture_on_commit_callbacks
):
    lead = pending_lead(rita_pool.organization, first_name="Ann", last_name="Lee")

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with transaction.atomic():
            lead_route(lead_id=lead.pk)
            transaction.set_rollback(True)

    assert callbacks == []
    assert mail.outbox == []
    assert Assignment.objects.count() == 0
    assert Event.objects.count() == 0
    assert Notification.objects.count() == 0
    assert Delivery.objects.count() == 0


def test_committed_feature_sends_email(rita_pool, django_capture_on_commit_callbacks):
    lead = pending_lead(
        rita_pool.organization,
        first_name="Ann",
        last_name="Lee",
        company="Lee Logistics",
    )

    with django_capture_on_commit_callbacks(execute=True):
        lead_route(lead_id=lead.pk)

    [message] = mail.outbox
    assert message.subject == "New lead assigned to you: Ann Lee · Acme"
    assert message.to == ["rita.rep@acme.test"]
    assert (
        "Routing assigned a new lead to you: Ann Lee (Lee Logistics)." in message.body
    )
    assert "http://127.0.0.1:8000/o/acme/leads/mine/" in message.body
    html = message.alternatives[0].content
    assert "<strong>Ann Lee</strong> (Lee Logistics)" in html


def test_queue_failure_logged_not_raised(
    rita_pool, monkeypatch, caplog, django_capture_on_commit_callbacks
):
    from notifications import tasks

    def broker_down(*args, **kwargs):
        raise ConnectionError("Redis at 127.0.0.1:6379 refused the connection")

    monkeypatch.setattr(tasks.email_delivery_send_task, "delay", broker_down)
    lead = pending_lead(rita_pool.organization, first_name="Ann")

    with django_capture_on_commit_callbacks(execute=True):
        assignment = lead_route(lead_id=lead.pk)

    assert assignment.member == rita_pool
    assert "the beat task will send it" in caplog.text
    assert deliveries_of(rita_pool)["email"].status == Delivery.Status.PENDING
