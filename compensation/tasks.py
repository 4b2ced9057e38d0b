"""Celery tasks of compensation. Each loads its organisation and calls a service.

``statements_calculate_task`` is safe to deliver twice: a finished run is
skipped, and a rerun of a period rewrites only drafts and adds no adjustment
twice.
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


@shared_task(**TASK_OPTIONS)
def statements_calculate_task(organization_id: int, run_id: int) -> None:
    organization = Organization.objects.filter(pk=organization_id).first()
    if organization is None:
        logger.warning(
            "Calculation run %s skipped: organisation %s is gone",
            run_id,
            organization_id,
        )
        return
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
            return
        label = f"{run.period_start:%B %Y}"
        period = DateRange(run.period_start, run.period_end, label)
        services_statements.statements_calculate(
            organization=organization, period=period, actor=run.created_by, run=run
        )
