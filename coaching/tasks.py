"""Celery tasks of coaching. Each loads an organisation and calls a service.

Every task is idempotent. Evaluation updates the one unresolved alert per
rule, rep and period. The recovery check only moves pending alerts. The
digest records each day's email in a table with a unique key. The ``_all``
tasks run from celery beat and queue one task per organisation.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from celery import shared_task
from django.db import InterfaceError, OperationalError, transaction

from activity.models import ImportJob
from coaching import digest, services
from spm.models import Organization
from spm.tenancy import system_context

logger = logging.getLogger(__name__)

TASK_OPTIONS = {
    "acks_late": True,
    "reject_on_worker_lost": True,
    "autoretry_for": (OperationalError, InterfaceError),
    "retry_backoff": True,
    "max_retries": 5,
}


def _with_organization(organization_id: int, service: Callable, **kwargs) -> None:
    organization = Organization.objects.filter(pk=organization_id).first()
    if organization is None:
        logger.warning(
            "Coaching task skipped: organisation %s is gone",
            organization_id,
            extra={"organization_id": organization_id},
        )
        return
    service(organization=organization, **kwargs)


def _organization_ids() -> list[int]:
    with system_context():
        return list(Organization.objects.order_by("pk").values_list("pk", flat=True))


@shared_task(**TASK_OPTIONS)
def coaching_evaluate_task(organization_id: int) -> None:
    _with_organization(organization_id, services.evaluate_rules)


@shared_task(**TASK_OPTIONS)
def coaching_evaluate_all_task() -> None:
    for organization_id in _organization_ids():
        coaching_evaluate_task.delay(organization_id)


@shared_task(**TASK_OPTIONS)
def coaching_recovery_check_task(organization_id: int) -> None:
    _with_organization(organization_id, services.recovery_check)


@shared_task(**TASK_OPTIONS)
def coaching_recovery_check_all_task() -> None:
    for organization_id in _organization_ids():
        coaching_recovery_check_task.delay(organization_id)


@shared_task(**TASK_OPTIONS)
def coaching_digest_task(organization_id: int) -> None:
    _with_organization(organization_id, digest.digest_send)


@shared_task(**TASK_OPTIONS)
def coaching_digest_all_task() -> None:
    for organization_id in _organization_ids():
        coaching_digest_task.delay(organization_id)


def evaluate_after_import(organization_id: int, job_id: int) -> None:
    """Queue an evaluation of the organisation's rules once an import is done.

    The task is queued when the current transaction commits, or at once
    outside a transaction, so the worker reads the imported rows.
    """
    done = ImportJob.unscoped.filter(
        pk=job_id, organization_id=organization_id, status=ImportJob.Status.DONE
    ).exists()
    if done:
        transaction.on_commit(lambda: coaching_evaluate_task.delay(organization_id))
