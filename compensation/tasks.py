"""Celery tasks of compensation. Each loads its organisation and calls a service.

``statements_calculate_task`` starts a run and sends one
``statements_batch_task`` per batch of members, so the batches run on every
worker at once. Both are safe to deliver twice: a finished run is skipped, a
batch is counted once, and a rerun of a period rewrites only drafts and adds
no adjustment twice.

``statements_approve_task`` approves the drafts of an approval run. It works
for half the soft time limit at most, then queues itself to go on with the
rest. It is safe to deliver twice too: a finished run is skipped, and a
running one goes on after its last saved count, where approved statements
are not approved again.
"""

from __future__ import annotations

import logging

from celery import Task, shared_task
from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.utils import timezone

from compensation import services_statements
from compensation.models import ApprovalRun, CalculationRun
from goals.calendar import DateRange
from spm.models import Organization
from spm.tenancy import tenant_context

logger = logging.getLogger(__name__)


class CalculationTask(Task):
    """Mark the run failed once the retries of a transient error are used up."""

    run_model: type[CalculationRun | ApprovalRun] = CalculationRun

    def on_failure(self, exc, task_id, args, kwargs, einfo) -> None:
        organization_id, run_id = args[:2]
        logger.error(
            "Task %s gave up on %s %s: %s",
            self.name,
            self.run_model._meta.verbose_name,
            run_id,
            exc,
            extra={"organization_id": organization_id, "run_id": run_id},
        )
        self.run_model.unscoped.filter(
            pk=run_id,
            organization_id=organization_id,
            status__in=self.run_model.ACTIVE,
        ).update(
            status=self.run_model.Status.FAILED,
            failure=f"{type(exc).__name__}: {exc}",
            finished_at=timezone.now(),
        )


class ApprovalTask(CalculationTask):
    """Mark the approval run failed once the retries are used up."""

    run_model = ApprovalRun


TASK_OPTIONS = {
    "base": CalculationTask,
    "acks_late": True,
    "reject_on_worker_lost": True,
    "autoretry_for": (OperationalError, InterfaceError),
    "retry_backoff": True,
    "max_retries": 5,
}
APPROVAL_TASK_OPTIONS = {**TASK_OPTIONS, "base": ApprovalTask}


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


@shared_task(**APPROVAL_TASK_OPTIONS)
def statements_approve_task(organization_id: int, run_id: int) -> None:
    """Approve the drafts of the approval run."""
    organization = Organization.objects.filter(pk=organization_id).first()
    if organization is None:
        logger.warning(
            "Approval run %s skipped: organisation %s not found",
            run_id,
            organization_id,
        )
        return
    with tenant_context(organization):
        run = (
            ApprovalRun.objects.select_related("requested_by", "actor")
            .filter(pk=run_id)
            .first()
        )
        # A run left running by a worker that died is picked up again.
        if run is None or not run.is_active:
            logger.info(
                "Approval run %s skipped: not found or already finished",
                run_id,
                extra={"organization_id": organization_id},
            )
            return
        # Half the soft time limit leaves room for the chunk that runs past it.
        done = services_statements.approval_run_execute(
            organization=organization,
            run=run,
            seconds=settings.CELERY_TASK_SOFT_TIME_LIMIT / 2,
        )
    if not done:
        logger.info(
            "Approval run %s continues in a new task after %s of %s statements",
            run.pk,
            run.processed_count,
            run.statement_count,
            extra={"organization_id": organization_id, "run_id": run.pk},
        )
        statements_approve_task.delay(organization_id, run_id)
