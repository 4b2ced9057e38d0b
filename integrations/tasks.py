"""Celery tasks of CRM sync, routed to the "sync" queue.

A run's row records how far it got, so a task delivered twice, or run again
after a worker died, resumes the run or returns at once if it succeeded.
"""

from __future__ import annotations

import datetime as dt
import logging

from celery import shared_task
from django.db import InterfaceError, OperationalError
from django.db.models import Q
from django.utils import timezone

from integrations import sync, webhooks, writeback
from integrations.connectors.base import AuthenticationFailed, ConnectorError
from integrations.models import CrmConnection, SyncRun, WebhookEvent
from integrations.selectors import data_as_of_forget
from integrations.sync import SyncFailed
from spm.models import Organization
from spm.tenancy import system_context, tenant_context

logger = logging.getLogger(__name__)

# A queued or running run younger than this keeps the beat from queuing
# another run of its connection. Above the task time limit, so a run whose
# worker died is superseded only after it can no longer be running.
RUN_STALE_AFTER = dt.timedelta(minutes=15)


@shared_task(
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=True,
    max_retries=5,
)
def sync_run_task(organization_id: int, run_id: int) -> None:
    run = (
        SyncRun.unscoped.filter(pk=run_id, organization_id=organization_id)
        .select_related("connection__organization")
        .first()
    )
    if run is None:
        logger.warning("CRM sync run %s not found", run_id)
        return
    try:
        sync.sync_run_execute(run=run)
    except (OperationalError, InterfaceError):
        raise  # retried by Celery, and the retry resumes the run
    except Exception:
        # The run and the log already record the failure. The next beat tick
        # starts a new run, which resumes from the committed cursors.
        return
    finally:
        # Pages showing "CRM data as of" read the new sync time at once.
        data_as_of_forget(organization_id)


@shared_task(acks_late=True)
def sync_incremental_all_task() -> None:
    """Queue an incremental run for each active connection that has none pending.

    Skip all of them when the database is not PostgreSQL, because the sync
    writers need it.
    """
    from integrations import services

    if not services.sync_supported():
        logger.info(
            "CRM incremental sync skipped: %s", services.sync_unsupported_message()
        )
        return
    with system_context():
        connections = list(
            CrmConnection.unscoped.filter(
                status=CrmConnection.Status.ACTIVE
            ).select_related("organization")
        )
    for connection in connections:
        with tenant_context(connection.organization):
            run = sync.sync_run_create_unless_busy(
                connection=connection,
                kind=SyncRun.Kind.INCREMENTAL,
                stale_after=RUN_STALE_AFTER,
            )
        if run is not None:
            sync_run_task.delay(connection.organization_id, run.pk)


@shared_task(
    bind=True,
    acks_late=True,
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=True,
    # Above the write-back's own bound (writeback.MAX_ATTEMPTS counts tries
    # per round), so Celery never stops a round early.
    max_retries=writeback.MAX_ATTEMPTS,
)
def crm_writeback_task(self, organization_id: int, assignment_id: int) -> None:
    """Write a committed routing assignment to the CRM (integrations.writeback).

    A 429, 5xx or network error from the CRM retries the task after the
    delay the write-back chose (the CRM's Retry-After, or a backoff). The
    retry finds the same ``CrmWriteback`` row, so the owner is written once.
    """
    organization = Organization.objects.filter(pk=organization_id).first()
    if organization is None:
        logger.warning("Organisation %s of a CRM write-back not found", organization_id)
        return
    with tenant_context(organization):
        try:
            writeback.assignment_writeback(assignment_id=assignment_id)
        except writeback.RetryLater as retry:
            raise self.retry(countdown=retry.delay) from retry


# Retries of a webhook event whose application failed: 30 s, 1, 2, 4, 8
# and 16 minutes after each failure (webhook_retry_delay), about half an
# hour in all. After the last one the event stays FAILED and the next
# incremental sync brings the record up to date.
WEBHOOK_APPLY_MAX_RETRIES = 6
WEBHOOK_RETRY_FIRST_DELAY_SECONDS = 30


def webhook_retry_delay(retries: int) -> int:
    """Return the seconds to wait before retry number ``retries + 1``."""
    return WEBHOOK_RETRY_FIRST_DELAY_SECONDS * 2**retries


@shared_task(bind=True, acks_late=True, max_retries=WEBHOOK_APPLY_MAX_RETRIES)
def webhook_event_apply_task(self, organization_id: int, event_id: int) -> None:
    """Apply one stored CRM webhook event (integrations.webhooks)."""
    organization = Organization.objects.filter(pk=organization_id).first()
    if organization is None:
        logger.warning(
            "Organisation %s of CRM webhook event %s not found",
            organization_id,
            event_id,
        )
        return
    try:
        with tenant_context(organization):
            status = webhooks.webhook_event_apply(event_pk=event_id)
    except AuthenticationFailed as error:
        # The event records the error. Retrying with the same credentials
        # fails again, so the admin has to reconnect first.
        logger.error(
            "CRM webhook event %s failed: %s",
            event_id,
            error,
            extra={"organization_id": organization_id},
        )
        return
    except (ConnectorError, SyncFailed, OperationalError, InterfaceError) as error:
        _webhook_retry(self, event_id, organization_id, error)
        return
    if status == WebhookEvent.Status.FAILED:
        # The writers rejected the record, for example a deal in a stage
        # that the last sync did not map. A sync before the retry can fix it.
        _webhook_retry(self, event_id, organization_id, None)


def _webhook_retry(task, event_id: int, organization_id: int, error) -> None:
    """Retry the task later, or log that the event stays FAILED."""
    retries = task.request.retries
    reason = error or "the writers rejected the record"
    if retries >= WEBHOOK_APPLY_MAX_RETRIES:
        logger.error(
            "CRM webhook event %s still failed after %s retries: %s",
            event_id,
            retries,
            reason,
            extra={"organization_id": organization_id},
        )
        return
    delay = webhook_retry_delay(retries)
    logger.warning(
        "CRM webhook event %s failed (attempt %s), retrying in %s s: %s",
        event_id,
        retries + 1,
        delay,
        reason,
        extra={"organization_id": organization_id},
    )
    raise task.retry(countdown=delay)


# A pending webhook event older than this has lost its application task, for
# example because the broker was down when the event arrived. The task is
# queued when the event's transaction commits, so two minutes leave a busy
# queue time to reach it first.
WEBHOOK_SWEEP_AFTER = dt.timedelta(minutes=2)
# An event the sweep queued waits this long before the sweep queues it again,
# so a queue held up by a long sync does not fill with copies of its tasks.
WEBHOOK_SWEEP_AGAIN_AFTER = dt.timedelta(minutes=15)
WEBHOOK_SWEEP_BATCH = 500


@shared_task(acks_late=True)
def webhook_events_sweep_task() -> int:
    """Queue the application of pending webhook events whose task was lost.

    Return the number of events queued. An event queued twice is applied
    once, because ``webhooks.webhook_event_apply`` locks the event's row and
    leaves an applied event alone. Nothing is queued when the database is
    not PostgreSQL, where events stay unapplied.
    """
    from integrations import services

    if not services.sync_supported():
        return 0
    now = timezone.now()
    with system_context():
        events = list(
            WebhookEvent.unscoped.filter(
                Q(swept_at__isnull=True)
                | Q(swept_at__lt=now - WEBHOOK_SWEEP_AGAIN_AFTER),
                status=WebhookEvent.Status.PENDING,
                received_at__lt=now - WEBHOOK_SWEEP_AFTER,
            )
            .order_by("received_at")
            .values_list("organization_id", "pk")[:WEBHOOK_SWEEP_BATCH]
        )
        WebhookEvent.unscoped.filter(pk__in=[pk for _, pk in events]).update(
            swept_at=now
        )
    for organization_id, event_pk in events:
        webhook_event_apply_task.delay(organization_id, event_pk)
    if events:
        logger.warning(
            "Queued %s pending CRM webhook events whose application task was lost",
            len(events),
        )
    return len(events)
