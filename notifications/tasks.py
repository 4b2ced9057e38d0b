"""Celery tasks of notifications. Each loads ids and calls notifications.delivery.

The tasks are idempotent: an attempt takes its delivery under a row lock
and only while the row is still due, so a duplicate message or a rerun
after a lost worker sends nothing twice. The ``_due``, ``_digests`` and
``_prune`` tasks run from celery beat (CELERY_BEAT_SCHEDULE).
"""

from __future__ import annotations

import logging

from celery import shared_task
from django.db import InterfaceError, OperationalError

from notifications import delivery, outbound, retention
from spm.models import Organization
from spm.tenancy import tenant_context

logger = logging.getLogger(__name__)

TASK_OPTIONS = {
    "acks_late": True,
    "reject_on_worker_lost": True,
    "autoretry_for": (OperationalError, InterfaceError),
    "retry_backoff": True,
    "max_retries": 5,
}


@shared_task(**TASK_OPTIONS)
def email_delivery_send_task(organization_id: int, delivery_id: int) -> str:
    organization = Organization.objects.filter(pk=organization_id).first()
    if organization is None:
        logger.warning(
            "Email delivery %s not sent: organisation %s is gone",
            delivery_id,
            organization_id,
            extra={"organization_id": organization_id, "delivery_id": delivery_id},
        )
        return "missing"
    with tenant_context(organization):
        return delivery.email_delivery_send(delivery_id=delivery_id)


@shared_task(**TASK_OPTIONS)
def deliveries_send_due_task() -> int:
    return delivery.deliveries_send_due()


@shared_task(**TASK_OPTIONS)
def digests_send_task() -> int:
    return delivery.digests_send()


@shared_task(**TASK_OPTIONS)
def outbound_delivery_send_task(organization_id: int, delivery_id: int) -> str:
    organization = Organization.objects.filter(pk=organization_id).first()
    if organization is None:
        logger.warning(
            "Outbound delivery %s not sent: organisation %s is gone",
            delivery_id,
            organization_id,
            extra={"organization_id": organization_id, "delivery_id": delivery_id},
        )
        return "missing"
    with tenant_context(organization):
        return outbound.outbound_delivery_send(delivery_id=delivery_id)


@shared_task(**TASK_OPTIONS)
def outbound_deliveries_send_due_task() -> int:
    return outbound.outbound_deliveries_send_due()


@shared_task(**TASK_OPTIONS)
def notifications_prune_task() -> dict[str, int]:
    return retention.notifications_prune()
