"""CRM webhook events: stored by the request, applied by a Celery task."""

import datetime as dt
import json
import logging

import pytest
from celery import current_app as celery_app
from django.db.models.query import QuerySet
from django.test import TestCase
from django.utils import timezone

from activity.models import Deal
from integrations import tasks, webhooks
from integrations.connectors.base import AuthenticationFailed, ConnectorError
from integrations.models import WebhookEvent
from tests.integrations.conftest import SEEDED_AT, make_connector
from tests.integrations.test_webhooks_in import (
    AT_10_00_01,
    AT_10_00_05,
    SALESFORCE_ORG_ID,
    hubspot_url,
    outbound_message,
    post_hubspot,
    salesforce_url,
    stage_changes,
    stage_event,
)

# The fixtures of the receiver tests, shared by name.
pytest_plugins = ["tests.integrations.test_webhooks_in"]

FETCH_FAILED = "HubSpot returned HTTP 400 for GET /crm/v3/objects/deals/42: bad"


def stored_events() -> list[tuple]:
    return list(
        WebhookEvent.objects.order_by("id").values_list(
            "event_id", "status", "attempts"
        )
    )


def deal_42() -> Deal:
    return Deal.objects.get(external_source="hubspot", external_id="42")


@pytest.fixture
def eager_retries(monkeypatch):
    """Run a task's retries at once, as Celery's eager mode does without propagation.

    With CELERY_TASK_EAGER_PROPAGATES the first Retry would be raised
    instead. The countdown is not waited for, so tests read it from the log.
    """
    monkeypatch.setitem(celery_app.conf, "task_eager_propagates", False)


@pytest.fixture
def flaky_connector(monkeypatch, hubspot, clock, eager_retries):
    """Make the task's HubSpot connector raise the errors in the returned list.

    Each record fetch pops one error until the list is empty, then fetches
    from the fake as usual.
    """
    connector = make_connector(hubspot, clock)
    fetch = connector.fetch_record_with_history
    errors: list[Exception] = []

    def fetch_or_raise(*args, **kwargs):
        if errors:
            raise errors.pop(0)
        return fetch(*args, **kwargs)

    connector.fetch_record_with_history = fetch_or_raise
    monkeypatch.setattr(webhooks, "connector_for", lambda connection: connector)
    return errors


# The request stores, the task applies


def test_view_stores_event_without_crm_call(
    client,
    hubspot,
    hubspot_hooks,
    synced_deal_42,
    django_capture_on_commit_callbacks,
    django_assert_num_queries,
):
    hubspot.update("deals", "42", modified_at=AT_10_00_05, dealstage="closedwon")
    fetches_before = len(hubspot.requests())

    # The organisation and the connection, then the event's SELECT and
    # INSERT, each of the two atomic blocks adding a savepoint and its
    # release inside the test's transaction.
    with django_capture_on_commit_callbacks() as callbacks:
        with django_assert_num_queries(8):
            response = post_hubspot(
                client,
                hubspot_url(hubspot_hooks),
                [stage_event(501, AT_10_00_05, "closedwon", 0)],
                apply=False,
            )

    assert response.status_code == 200
    assert response.json() == {"received": 1, "duplicate": 0}
    assert len(hubspot.requests()) == fetches_before
    assert stored_events() == [("501", "pending", 0)]
    assert deal_42().stage.external_id == "appointmentscheduled"
    assert len(callbacks) == 1

    callbacks[0]()

    assert len(hubspot.requests()) == fetches_before + 1
    assert stored_events() == [("501", "applied", 1)]
    assert deal_42().stage.external_id == "closedwon"


def test_salesforce_view_acknowledges_before_fetch(
    client, salesforce_synced, django_capture_on_commit_callbacks
):
    fake, connection = salesforce_synced
    fake.update(
        "Opportunity",
        "0065g00000XyZ12AAB",
        modstamp=AT_10_00_05,
        StageName="Closed Won",
    )
    requests_before = len(fake.requests())

    with django_capture_on_commit_callbacks() as callbacks:
        response = client.post(
            salesforce_url(connection),
            data=outbound_message(SALESFORCE_ORG_ID),
            content_type="text/xml",
        )

    assert response.status_code == 200
    assert b"<Ack>true</Ack>" in response.content
    assert len(fake.requests()) == requests_before
    assert stored_events() == [("04l5g00000ABCDEAA4", "pending", 0)]

    callbacks[0]()

    assert stored_events() == [("04l5g00000ABCDEAA4", "applied", 1)]
    deal = Deal.objects.get(external_source="salesforce")
    assert deal.stage.external_id == "Closed Won"


def test_pending_events_applied_in_reverse_order(
    client, hubspot, hubspot_hooks, synced_deal_42, django_capture_on_commit_callbacks
):
    """The worker runs the newer event's task first; the older one is stale."""
    hubspot.update("deals", "42", modified_at=AT_10_00_01, dealstage="contractsent")
    hubspot.update("deals", "42", modified_at=AT_10_00_05, dealstage="closedwon")
    batch = [
        stage_event(500, AT_10_00_01, "contractsent", 0),
        stage_event(501, AT_10_00_05, "closedwon", 0),
    ]

    with django_capture_on_commit_callbacks() as callbacks:
        post_hubspot(client, hubspot_url(hubspot_hooks), batch, apply=False)
    callbacks[1]()
    callbacks[0]()

    assert stored_events() == [("500", "stale", 1), ("501", "applied", 1)]
    deal = deal_42()
    assert deal.stage.external_id == "closedwon"
    assert stage_changes(deal) == [
        (None, "appointmentscheduled", SEEDED_AT),
        ("appointmentscheduled", "contractsent", AT_10_00_01),
        ("contractsent", "closedwon", AT_10_00_05),
    ]


# Duplicates


def test_task_delivered_twice_applies_once(
    client, personas, hubspot, hubspot_hooks, synced_deal_42
):
    hubspot.update("deals", "42", modified_at=AT_10_00_05, dealstage="closedwon")
    post_hubspot(
        client,
        hubspot_url(hubspot_hooks),
        [stage_event(501, AT_10_00_05, "closedwon", 0)],
    )
    event = WebhookEvent.objects.get()
    fetches_before = len(hubspot.requests())
    changes_before = stage_changes(deal_42())

    tasks.webhook_event_apply_task.delay(personas.org.pk, event.pk)

    assert len(hubspot.requests()) == fetches_before
    assert stage_changes(deal_42()) == changes_before
    assert stored_events() == [("501", "applied", 1)]


def test_racing_deliveries_stored_once(
    client,
    monkeypatch,
    hubspot,
    hubspot_hooks,
    synced_deal_42,
    django_capture_on_commit_callbacks,
):
    """A copy whose lookup ran before the first copy's insert is still a duplicate.

    The patched lookup misses the stored row once, as a concurrent
    transaction that has not committed yet would, so the insert meets the
    unique constraint and get_or_create reads the row again.
    """
    hubspot.update("deals", "42", modified_at=AT_10_00_05, dealstage="closedwon")
    url = hubspot_url(hubspot_hooks)
    event = stage_event(501, AT_10_00_05, "closedwon", 0)
    post_hubspot(client, url, [event])
    original_get = QuerySet.get
    missed = []

    def get_missing_once(queryset, *args, **kwargs):
        if queryset.model is WebhookEvent and not missed:
            missed.append(kwargs)
            raise WebhookEvent.DoesNotExist
        return original_get(queryset, *args, **kwargs)

    monkeypatch.setattr(QuerySet, "get", get_missing_once)
    with django_capture_on_commit_callbacks() as callbacks:
        again = post_hubspot(client, url, [{**event, "attemptNumber": 1}], apply=False)

    assert len(missed) == 1
    assert again.status_code == 200
    assert again.json() == {"received": 0, "duplicate": 1}
    assert callbacks == []
    assert stored_events() == [("501", "applied", 1)]


# Failures and retries


def test_failed_fetch_recorded_then_retried(
    client, caplog, hubspot, hubspot_hooks, synced_deal_42, flaky_connector
):
    caplog.set_level(logging.WARNING, logger="integrations.tasks")
    hubspot.update("deals", "42", modified_at=AT_10_00_05, dealstage="closedwon")
    flaky_connector.append(ConnectorError(FETCH_FAILED))

    with TestCase.captureOnCommitCallbacks() as callbacks:
        post_hubspot(
            client,
            hubspot_url(hubspot_hooks),
            [stage_event(501, AT_10_00_05, "closedwon", 0)],
            apply=False,
        )
    callbacks[0]()  # the failure and, run eagerly, the retry

    assert "failed (attempt 1), retrying in 30 s" in caplog.text
    assert FETCH_FAILED in caplog.text
    assert stored_events() == [("501", "applied", 2)]
    assert WebhookEvent.objects.get().message == ""
    assert deal_42().stage.external_id == "closedwon"


def test_failure_kept_after_last_retry(
    client, caplog, hubspot, hubspot_hooks, synced_deal_42, flaky_connector
):
    caplog.set_level(logging.WARNING, logger="integrations.tasks")
    hubspot.update("deals", "42", modified_at=AT_10_00_05, dealstage="closedwon")
    attempts = 1 + tasks.WEBHOOK_APPLY_MAX_RETRIES
    flaky_connector.extend(ConnectorError(FETCH_FAILED) for _ in range(attempts))

    post_hubspot(
        client,
        hubspot_url(hubspot_hooks),
        [stage_event(501, AT_10_00_05, "closedwon", 0)],
    )

    event = WebhookEvent.objects.get()
    assert event.status == "failed"
    assert event.attempts == 7
    assert event.message == FETCH_FAILED
    assert flaky_connector == []
    delays = [30, 60, 120, 240, 480, 960]
    for attempt, delay in enumerate(delays, start=1):
        assert f"failed (attempt {attempt}), retrying in {delay} s" in caplog.text
    assert "still failed after 6 retries" in caplog.text
    assert deal_42().stage.external_id == "appointmentscheduled"


def test_rejected_credentials_not_retried(
    client, caplog, hubspot, hubspot_hooks, synced_deal_42, flaky_connector
):
    caplog.set_level(logging.WARNING, logger="integrations.tasks")
    flaky_connector.append(AuthenticationFailed("HubSpot rejected the token (401)."))
    flaky_connector.append(ConnectorError("must not be reached"))

    post_hubspot(
        client,
        hubspot_url(hubspot_hooks),
        [stage_event(501, AT_10_00_05, "closedwon", 0)],
    )

    assert stored_events() == [("501", "failed", 1)]
    assert WebhookEvent.objects.get().message == "HubSpot rejected the token (401)."
    assert "retrying" not in caplog.text
    assert len(flaky_connector) == 1


def test_retry_delay_doubles():
    delays = [tasks.webhook_retry_delay(retries) for retries in range(6)]

    assert delays == [30, 60, 120, 240, 480, 960]


# Tenancy


def test_task_ignores_event_of_other_organisation(
    client, personas, hubspot, hubspot_hooks, synced_deal_42
):
    post_hubspot(
        client,
        hubspot_url(hubspot_hooks),
        [stage_event(501, AT_10_00_05, "closedwon", 0)],
        apply=False,
    )
    event = WebhookEvent.objects.get()
    fetches_before = len(hubspot.requests())

    tasks.webhook_event_apply_task.delay(personas.other_org.pk, event.pk)

    assert len(hubspot.requests()) == fetches_before
    assert stored_events() == [("501", "pending", 0)]


def test_empty_batch_accepted(client, hubspot_hooks):
    response = post_hubspot(client, hubspot_url(hubspot_hooks), [], apply=False)

    assert response.status_code == 200
    assert json.loads(response.content) == {"received": 0, "duplicate": 0}


# Events whose application task was lost


def _received(event_id: str, minutes_ago: int) -> None:
    WebhookEvent.objects.filter(event_id=event_id).update(
        received_at=timezone.now() - dt.timedelta(minutes=minutes_ago)
    )


def test_sweep_applies_event_whose_task_was_lost(
    client, hubspot, hubspot_hooks, synced_deal_42
):
    hubspot.update("deals", "42", modified_at=AT_10_00_05, dealstage="closedwon")
    # The test's transaction never commits, so the apply task is never queued,
    # as when the broker was down.
    post_hubspot(
        client,
        hubspot_url(hubspot_hooks),
        [stage_event(501, AT_10_00_05, "closedwon", 0)],
        apply=False,
    )
    _received("501", minutes_ago=3)

    assert tasks.webhook_events_sweep_task() == 1
    assert stored_events() == [("501", "applied", 1)]
    assert deal_42().stage.external_id == "closedwon"
    assert tasks.webhook_events_sweep_task() == 0


def test_sweep_waits_before_queuing_again(
    client, monkeypatch, personas, hubspot_hooks, synced_deal_42
):
    queued = []
    monkeypatch.setattr(
        tasks.webhook_event_apply_task, "delay", lambda *args: queued.append(args)
    )
    post_hubspot(
        client,
        hubspot_url(hubspot_hooks),
        [
            stage_event(501, AT_10_00_01, "contractsent", 0),
            stage_event(502, AT_10_00_05, "closedwon", 0),
        ],
        apply=False,
    )
    _received("501", minutes_ago=3)
    # Received a minute ago: its own task may still be on its way.
    _received("502", minutes_ago=1)
    first = WebhookEvent.objects.get(event_id="501")

    assert tasks.webhook_events_sweep_task() == 1
    assert queued == [(personas.org.pk, first.pk)]
    # Queued again only 15 minutes after the sweep queued it.
    assert tasks.webhook_events_sweep_task() == 0
    WebhookEvent.objects.filter(pk=first.pk).update(
        swept_at=timezone.now() - dt.timedelta(minutes=16)
    )
    assert tasks.webhook_events_sweep_task() == 1
    assert queued[1:] == [(personas.org.pk, first.pk)]
