"""Celery tasks of follow-up sequences: the dispatcher, step, sweeper and trigger scan.

The step task is idempotent (see ``followups.dispatch``), so a redelivery or
a re-send by the sweeper does nothing more than finish what is left.
"""

from __future__ import annotations

import datetime as dt
import logging
import smtplib

from celery import shared_task
from django.db import InterfaceError, OperationalError

from followups import dispatch, triggers
from spm.models import Organization
from spm.tenancy import system_context, tenant_context

logger = logging.getLogger(__name__)

# A run still "started" this long after it began lost its task: a step
# normally finishes within seconds, or retries with backoff within minutes.
SWEEP_AFTER = dt.timedelta(minutes=15)

TASK_OPTIONS = {
    "acks_late": True,
    "reject_on_worker_lost": True,
    "autoretry_for": (
        OperationalError,
        InterfaceError,
        smtplib.SMTPException,
        ConnectionError,
    ),
    "retry_backoff": True,
    "retry_backoff_max": 300,
    "max_retries": 5,
}


def _send_runs(pairs: list[tuple[int, int]]) -> None:
    for organization_id, run_id in pairs:
        perform_step_task.delay(organization_id, run_id)


@shared_task(**TASK_OPTIONS)
def dispatch_due_task() -> int:
    """Start every due step and send a task for each; return the number started."""
    pairs = dispatch.dispatch_due()
    _send_runs(pairs)
    return len(pairs)


@shared_task(**TASK_OPTIONS)
def perform_step_task(organization_id: int, run_id: int) -> str:
    organization = Organization.objects.filter(pk=organization_id).first()
    if organization is None:
        logger.warning(
            "Follow-up step run %s skipped: organisation %s is gone",
            run_id,
            organization_id,
            extra={"organization_id": organization_id, "step_run_id": run_id},
        )
        return "missing"
    with tenant_context(organization):
        return dispatch.perform_step(run_id)


@shared_task(**TASK_OPTIONS)
def sweep_started_runs_task() -> int:
    """Re-send the tasks of runs left "started"; return how many were re-sent."""
    pairs = dispatch.sweep_started(older_than=SWEEP_AFTER)
    _send_runs(pairs)
    return len(pairs)


@shared_task(**TASK_OPTIONS)
def scan_elapsed_triggers_task() -> int:
    """Enrol quiet deals in every organisation's elapsed-time sequences."""
    with system_context():
        organizations = list(Organization.objects.order_by("pk"))
    enrolled = 0
    for organization in organizations:
        with tenant_context(organization):
            enrolled += triggers.scan_elapsed()
    return enrolled
