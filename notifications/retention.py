"""Deletion of old notification rows, run daily by celery beat.

Kept for ``settings.NOTIFICATIONS_RETENTION_DAYS`` (90 by default) after
their creation: read notifications, finished email deliveries (sent,
failed or skipped), and finished webhook and chat deliveries. Unread
notifications and rows still waiting to be sent are kept however old they
are. An event goes once nothing refers to it any more.
"""

from __future__ import annotations

import datetime as dt
import logging

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from notifications.models import Delivery, Event, Notification, OutboundDelivery
from spm.tenancy import system_context

logger = logging.getLogger(__name__)

# Rows deleted per statement, so no single transaction locks a whole table.
BATCH_SIZE = 1000


def retention_cutoff(now: dt.datetime | None = None) -> dt.datetime:
    days = settings.NOTIFICATIONS_RETENTION_DAYS
    return (now or timezone.now()) - dt.timedelta(days=days)


def _delete_in_batches(queryset) -> int:
    deleted = 0
    while True:
        ids = list(queryset.values_list("pk", flat=True)[:BATCH_SIZE])
        if not ids:
            return deleted
        with transaction.atomic():
            # The count includes rows deleted by cascade, so it is taken
            # from the model's own entry.
            _total, by_model = queryset.model.unscoped.filter(pk__in=ids).delete()
        deleted += by_model.get(queryset.model._meta.label, 0)


def notifications_prune(*, now: dt.datetime | None = None) -> dict[str, int]:
    """Delete the rows of every organisation past the retention period.

    Returns the number deleted per kind. Clears the current organisation
    first, so it reads across organisations in any caller's context.
    """
    with system_context():
        return _prune(retention_cutoff(now))


def _prune(cutoff: dt.datetime) -> dict[str, int]:
    counts = {
        "notifications": _delete_in_batches(
            Notification.unscoped.filter(read_at__isnull=False, created_at__lt=cutoff)
        ),
        "deliveries": _delete_in_batches(
            Delivery.unscoped.filter(created_at__lt=cutoff).exclude(
                status__in=[Delivery.Status.PENDING, Delivery.Status.DELAYED]
            )
        ),
        "outbound_deliveries": _delete_in_batches(
            OutboundDelivery.unscoped.filter(created_at__lt=cutoff).exclude(
                status=OutboundDelivery.Status.PENDING
            )
        ),
    }
    orphans = (
        Event.unscoped.filter(created_at__lt=cutoff)
        .exclude(Exists(Notification.unscoped.filter(event=OuterRef("pk"))))
        .exclude(Exists(OutboundDelivery.unscoped.filter(event=OuterRef("pk"))))
    )
    counts["events"] = _delete_in_batches(orphans)
    logger.info(
        "Pruned notification rows older than %s: %s",
        cutoff.isoformat(),
        counts,
    )
    return counts
