"""Celery tasks of lead routing, on the "routing" queue (CELERY_TASK_ROUTES).

Both are idempotent: routing takes only a lead still pending, under its row
lock, so a duplicate delivery or a rerun after a lost worker does nothing.
"""

from __future__ import annotations

import datetime as dt
import logging

from celery import shared_task
from django.db import InterfaceError, OperationalError

from routing import services, sla
from spm.models import Organization
from spm.tenancy import tenant_context

logger = logging.getLogger(__name__)

# A lead still pending this long after intake lost its routing task (a task
# normally routes it within milliseconds), so the sweeper routes it.
SWEEP_AFTER = dt.timedelta(seconds=30)
# Leads per sweeper run. Each is one short transaction of about 10 queries,
# so a run stays well under the 15 s between runs.
SWEEP_BATCH = 500

TASK_OPTIONS = {
    "acks_late": True,
    "reject_on_worker_lost": True,
    "autoretry_for": (OperationalError, InterfaceError),
    "retry_backoff": True,
    "retry_backoff_max": 30,
    "max_retries": 5,
}


@shared_task(**TASK_OPTIONS)
def route_lead_task(organization_id: int, lead_id: int) -> None:
    organization = Organization.objects.filter(pk=organization_id).first()
    if organization is None:
        logger.warning(
            "Lead %s not routed: organisation %s is gone",
            lead_id,
            organization_id,
            extra={"organization_id": organization_id, "lead_id": lead_id},
        )
        return
    with tenant_context(organization):
        services.lead_route(lead_id=lead_id)


@shared_task(**TASK_OPTIONS)
def sweep_pending_leads_task() -> int:
    return services.leads_sweep(older_than=SWEEP_AFTER, limit=SWEEP_BATCH)


@shared_task(**TASK_OPTIONS)
def response_timers_sweep_task() -> int:
    return sla.response_timers_sweep()
