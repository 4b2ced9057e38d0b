"""Celery tasks of CRM sync, routed to the "sync" queue.

A run's row records how far it got, so a task delivered twice, or run again
after a worker died, resumes the run or returns at once if it succeeded.
"""

from __future__ import annotations

import datetime as dt
import logging

from celery import shared_task
from django.db import InterfaceError, OperationalError

from integrations import sync, writeback
from integrations.models import CrmConnection, SyncRun
from integrations.selectors import data_as_of_forget
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
    """Queue an incremental run for each active connection that has none pending."""
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
    acks_late=True,
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=True,
    max_retries=5,
)
def crm_writeback_task(organization_id: int, assignment_id: int) -> None:
    """Write a committed routing assignment to the CRM (integrations.writeback)."""
    organization = Organization.objects.filter(pk=organization_id).first()
    if organization is None:
        logger.warning("Organisation %s of a CRM write-back not found", organization_id)
        return
    with tenant_context(organization):
        writeback.assignment_writeback(assignment_id=assignment_id)
