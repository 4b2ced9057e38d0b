"""The daily email digest of open coaching alerts, to each manager and admin.

The beat task runs every hour. An organisation's digest goes out on the
first run after DIGEST_LOCAL_TIME in its time zone, once per local day. A
DigestDelivery row with a unique (recipient, day) key is written in the
same transaction as the send. A repeated or concurrent run therefore sends
nothing twice, and a failed send leaves no row and is retried next run.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from dataclasses import dataclass

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from coaching.models import Alert, AlertStatus, DigestDelivery
from spm.models import Membership, Organization
from spm.tenancy import tenant_context

logger = logging.getLogger(__name__)

DIGEST_LOCAL_TIME = dt.time(7, 0)
# Alerts listed per section; the email gives the count of the rest.
LISTED_ALERTS = 50
FIRST_DIGEST_LOOKBACK = dt.timedelta(hours=24)


@dataclass
class DigestAlert:
    alert: Alert
    url: str


def _reporting_tree() -> dict[int | None, list[int]]:
    children: dict[int | None, list[int]] = defaultdict(list)
    for pk, manager_id in Membership.objects.values_list("pk", "reports_to_id"):
        children[manager_id].append(pk)
    return children


def _below(children: dict[int | None, list[int]], root: int) -> set[int]:
    """Return ``root`` and every member below it in the reporting tree."""
    seen = {root}
    stack = [root]
    while stack:
        for child in children.get(stack.pop(), ()):
            if child not in seen:
                seen.add(child)
                stack.append(child)
    return seen


def _absolute(path: str) -> str:
    return settings.ATTAIN_BASE_URL.rstrip("/") + path


def _alert_url(organization: Organization, alert: Alert) -> str:
    path = reverse(
        "coaching:alert",
        kwargs={"org_slug": organization.slug, "alert_id": alert.public_id},
    )
    return _absolute(path)


def digest_send(*, organization: Organization, now: dt.datetime | None = None) -> int:
    """Send today's digest to each manager and admin with unresolved alerts.

    Returns the number of emails sent. Nothing is sent before
    DIGEST_LOCAL_TIME in the organisation's time zone.
    """
    now = now or timezone.now()
    local_now = now.astimezone(organization.zoneinfo)
    if local_now.time() < DIGEST_LOCAL_TIME:
        return 0
    today = local_now.date()
    sent = 0
    # Dates in the emails are in the organisation's time zone.
    with tenant_context(organization), timezone.override(organization.zoneinfo):
        recipients = list(
            Membership.objects.filter(
                is_active=True,
                role__in=[Membership.Role.MANAGER, Membership.Role.ADMIN],
                user__is_active=True,
            ).select_related("user")
        )
        done = set(
            DigestDelivery.objects.filter(digest_date=today).values_list(
                "recipient_id", flat=True
            )
        )
        last_sent = dict(
            DigestDelivery.objects.values("recipient_id")
            .annotate(last=Max("sent_at"))
            .values_list("recipient_id", "last")
        )
        alerts = list(
            Alert.objects.exclude(status=AlertStatus.RESOLVED)
            .select_related("rule", "member")
            .order_by("-first_seen_at", "-pk")
        )
        children = _reporting_tree()
        for recipient in recipients:
            if recipient.pk in done:
                continue
            visible = None if recipient.is_admin else _below(children, recipient.pk)
            mine = [a for a in alerts if visible is None or a.member_id in visible]
            if not mine:
                continue
            since = last_sent.get(recipient.pk) or now - FIRST_DIGEST_LOOKBACK
            sent += _send_one(organization, recipient, mine, since, today, now)
    return sent


def _digest_message(
    organization: Organization,
    recipient: Membership,
    alerts: list[Alert],
    since: dt.datetime,
    today: dt.date,
) -> EmailMultiAlternatives:
    """Build the email: alerts first seen since ``since``, then the older ones."""
    new = [a for a in alerts if a.first_seen_at >= since]
    older = [a for a in alerts if a.first_seen_at < since]

    def listed(items: list[Alert]) -> list[DigestAlert]:
        return [
            DigestAlert(a, _alert_url(organization, a)) for a in items[:LISTED_ALERTS]
        ]

    inbox_path = reverse("coaching:inbox", kwargs={"org_slug": organization.slug})
    context = {
        "organization": organization,
        "recipient": recipient,
        "new": listed(new),
        "new_count": len(new),
        "more_new": max(len(new) - LISTED_ALERTS, 0),
        "older": listed(older),
        "older_count": len(older),
        "more_older": max(len(older) - LISTED_ALERTS, 0),
        "inbox_url": _absolute(inbox_path),
        "today": today,
    }
    subject = render_to_string("coaching/email/digest_subject.txt", context).strip()
    text = render_to_string("coaching/email/digest_body.txt", context)
    html = render_to_string("coaching/email/digest_body.html", context)
    message = EmailMultiAlternatives(
        subject, text, settings.DEFAULT_FROM_EMAIL, [recipient.user.email]
    )
    message.attach_alternative(html, "text/html")
    return message


def _send_one(
    organization: Organization,
    recipient: Membership,
    alerts: list[Alert],
    since: dt.datetime,
    today: dt.date,
    now: dt.datetime,
) -> int:
    """Send one recipient's digest and record it; return 1, or 0 if already sent."""
    message = _digest_message(organization, recipient, alerts, since, today)
    try:
        with transaction.atomic():
            DigestDelivery.objects.create(
                organization=organization,
                recipient=recipient,
                digest_date=today,
                sent_at=now,
                alert_count=len(alerts),
            )
            message.send()
    except IntegrityError:
        # Another run sent this recipient's digest for today first.
        return 0

    logger.info(
        "Coaching digest sent to member %s with %s alerts",
        recipient.pk,
        len(alerts),
        extra={"organization_id": organization.pk, "member_id": recipient.pk},
    )
    return 1
