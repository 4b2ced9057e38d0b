"""Celery tasks of compensation. Each loads its organisation and calls a service.

``statements_calculate_task`` starts a run and sends one
``statements_batch_task`` per batch of members, so the batches run on every
worker at once. Both are safe to deliver twice: a finished run is skipped, a
batch is counted once, and a rerun of a period rewrites only drafts and adds
no adjustment twice.
"""

from __future__ import annotations

import logging

from celery import Task, shared_task
from django.db import InterfaceError, OperationalError
from django.utils import timezone

from compensation import services_statements
from compensation.models import CalculationRun
from goals.calendar import DateRange
from spm.models import Organization
from spm.tenancy import tenant_context

logger = logging.getLogger(__name__)


class CalculationTask(Task):
    """Mark the run failed once the retries of a transient error are used up."""

    def on_failure(self, exc, task_id, args, kwargs, einfo) -> None:
        organization_id, run_id = args[:2]
        logger.error(
            "Task %s gave up on calculation run %s: %s",
            self.name,
            run_id,
            exc,
            extra={"organization_id": organization_id, "run_id": run_id},
        )
        CalculationRun.unscoped.filter(
            pk=run_id,
            organization_id=organization_id,
            status__in=CalculationRun.ACTIVE,
        ).update(
            status=CalculationRun.Status.FAILED,
            failure=f"{type(exc).__name__}: {exc}",
            finished_at=timezone.now(),
        )


TASK_OPTIONS = {
    "base": CalculationTask,
    "acks_late": True,
    "reject_on_worker_lost": True,
    "autoretry_for": (OperationalError, InterfaceError),
    "retry_backoff": True,
    "max_retries": 5,
}


def _active_run(
    organization_id: int, run_id: int
) -> tuple[Organization, CalculationRun] | None:
    """Return the organisation and its run, or None when either is gone or finished."""
    organization = Organization.objects.filter(pk=organization_id).first()
    if organization is None:
        logger.warning(
            "Calculation run %s skipped: organisation %s is gone",
            run_id,
            organization_id,
        )
        return None
    with tenant_context(organization):
        run = (
            CalculationRun.objects.select_related("created_by")
            .filter(pk=run_id)
            .first()
        )
    # A run left running by a worker that died is picked up again.
    if run is None or not run.is_active:
        logger.info(
            "Calculation run %s skipped: not found or already finished",
            run_id,
            extra={"organization_id": organization_id},
        )
        return None
    return organization, run


def _period(run: CalculationRun) -> DateRange:
    return DateRange(run.period_start, run.period_end, f"{run.period_start:%B %Y}")


@shared_task(**TASK_OPTIONS)
def statements_calculate_task(organization_id: int, run_id: int) -> None:
    """Start the run and send each batch of members to a worker.

    Without a broker (tasks run eagerly), each batch runs here, in turn.
    """
    found = _active_run(organization_id, run_id)
    if found is None:
        return
    organization, run = found
    with tenant_context(organization):
        batches = services_statements.calculation_run_start(
            organization=organization, period=_period(run), run=run
        )
    for number, member_ids in enumerate(batches):
        statements_batch_task.delay(organization_id, run_id, number, member_ids)


@shared_task(**TASK_OPTIONS)
def statements_batch_task(
    organization_id: int, run_id: int, number: int, member_ids: list[int]
) -> None:
    """Calculate and store one batch of the run's members."""
    found = _active_run(organization_id, run_id)
    if found is None:
        return
    organization, run = found
    with tenant_context(organization):
        services_statements.calculation_batch_run(
            organization=organization,
            period=_period(run),
            run=run,
            number=number,
            member_ids=member_ids,
            actor=run.created_by,
        )
