"""Celery tasks of the CSV import. Each loads the job and calls its service.

Both tasks are idempotent: the job's status records whether work is left,
so a duplicate delivery, or a rerun after a worker died, is safe.
"""

from __future__ import annotations

import logging

from celery import Task, shared_task
from django.db import InterfaceError, OperationalError
from django.utils import timezone

from activity import services
from activity.models import ImportJob
from coaching.tasks import evaluate_after_import
from spm.models import Organization
from spm.tenancy import tenant_context

logger = logging.getLogger(__name__)


class ImportTask(Task):
    """Mark the job failed once the retries of a transient error are used up."""

    def on_failure(self, exc, task_id, args, kwargs, einfo) -> None:
        organization_id, job_id = args[:2]
        logger.error(
            "Import task %s gave up on job %s: %s",
            self.name,
            job_id,
            exc,
            extra={"organization_id": organization_id, "import_job_id": job_id},
        )
        ImportJob.unscoped.filter(
            pk=job_id,
            organization_id=organization_id,
            status__in=ImportJob.RUNNING,
        ).update(
            status=ImportJob.Status.FAILED,
            failure=f"{type(exc).__name__}: {exc}",
            finished_at=timezone.now(),
            updated_at=timezone.now(),
        )


TASK_OPTIONS = {
    "base": ImportTask,
    "acks_late": True,
    "reject_on_worker_lost": True,
    "autoretry_for": (OperationalError, InterfaceError),
    "retry_backoff": True,
    "max_retries": 5,
}


def _run(organization_id: int, job_id: int, service) -> None:
    organization = Organization.objects.filter(pk=organization_id).first()
    if organization is None:
        logger.warning(
            "Import job %s: organisation %s is gone", job_id, organization_id
        )
        return
    with tenant_context(organization):
        job = ImportJob.objects.filter(pk=job_id).first()
        if job is None:
            logger.warning("Import job %s not found", job_id)
            return
        service(job=job)


@shared_task(**TASK_OPTIONS)
def import_job_validate_task(organization_id: int, job_id: int) -> None:
    _run(organization_id, job_id, services.import_job_validate)


@shared_task(**TASK_OPTIONS)
def import_job_import_task(organization_id: int, job_id: int) -> None:
    _run(organization_id, job_id, services.import_job_import)
    # New deals and activities change the coaching numbers.
    evaluate_after_import(organization_id, job_id)
