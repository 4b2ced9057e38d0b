"""Email delivery: single notifications, retries with backoff, and the daily digest.

Every attempt runs in a transaction that holds the delivery's row lock, and
records its outcome on the ``Delivery`` row: the number of attempts, the
last error, and when to try again. A failed attempt waits
``retry_delay(attempts)`` (1, 2, 4 then 8 minutes); after MAX_ATTEMPTS the
delivery is ``failed`` for good. The beat tasks take due rows with
``SELECT ... FOR UPDATE SKIP LOCKED``, so two runs never send the same row.

A worker that dies after the mail server accepted a message but before its
transaction commits leaves the row pending, so that message can go out
twice. Email gives no way to rule that out.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.template.loader import render_to_string, select_template
from django.urls import reverse
from django.utils import timezone

from notifications.models import Delivery, MemberSettings, Notification
from notifications.schedule import member_zone, quiet_hours_end
from spm.models import Membership, Organization
from spm.tenancy import get_current_organization, tenant_context

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
RETRY_BASE_DELAY = dt.timedelta(minutes=1)
# A new email delivery is sent by its queued task within seconds. If the
# task is lost (broker down, worker killed), the beat task sends the
# delivery this long after its creation.
LOST_TASK_AFTER = dt.timedelta(minutes=2)
# Deliveries per beat run. Each is one short transaction and one message.
SWEEP_LIMIT = 500
# Maximum length of the error text stored on a delivery, in characters.
ERROR_MAX_CHARS = 2000

PENDING = Delivery.Status.PENDING
DELAYED = Delivery.Status.DELAYED
SENT = Delivery.Status.SENT
FAILED = Delivery.Status.FAILED
SKIPPED = Delivery.Status.SKIPPED
EMAIL = Delivery.Channel.EMAIL

RELATED = ("notification__event", "notification__member__user")


def retry_delay(attempts: int) -> dt.timedelta:
    """Return the wait after the ``attempts``-th failed attempt: 1, 2, 4, 8 minutes."""
    return RETRY_BASE_DELAY * 2 ** (attempts - 1)


def member_address(member: Membership) -> str:
    """Return the address to email the member at, or "" when there is none."""
    if member.user_id is not None:
        if not member.user.is_active:
            return ""
        return member.user.email
    return member.email


def _absolute(path: str) -> str:
    if not path:
        return ""
    return settings.ATTAIN_BASE_URL.rstrip("/") + path


def _preferences_url(organization: Organization) -> str:
    path = reverse("notifications:preferences", kwargs={"org_slug": organization.slug})
    return _absolute(path)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def notification_message(
    notification: Notification, address: str, zone: ZoneInfo
) -> EmailMultiAlternatives:
    """Build the email of one notification from its event type's templates.

    A type without templates of its own uses notifications/email/generic.*.
    """
    event = notification.event
    organization = get_current_organization()
    context = {
        "organization": organization,
        "member": notification.member,
        "event": event,
        "payload": event.payload,
        "url": _absolute(event.url),
        "preferences_url": _preferences_url(organization),
    }
    names = [f"notifications/email/{event.type}", "notifications/email/generic"]
    # Times in the email are in the member's time zone.
    with timezone.override(zone):
        text = select_template([f"{name}.txt" for name in names]).render(context)
        html = select_template([f"{name}.html" for name in names]).render(context)
    subject = _one_line(f"{event.title} · {organization.name}")
    message = EmailMultiAlternatives(
        subject, text, settings.DEFAULT_FROM_EMAIL, [address]
    )
    message.attach_alternative(html, "text/html")
    return message


@dataclass(frozen=True)
class DigestItem:
    notification: Notification
    url: str


def digest_message(
    member: Membership, notifications: list[Notification], address: str, zone: ZoneInfo
) -> EmailMultiAlternatives:
    """Build one digest email listing ``notifications``, oldest first."""
    organization = get_current_organization()
    context = {
        "organization": organization,
        "member": member,
        "items": [DigestItem(n, _absolute(n.event.url)) for n in notifications],
        "count": len(notifications),
        "preferences_url": _preferences_url(organization),
    }
    with timezone.override(zone):
        subject = render_to_string(
            "notifications/email/digest_subject.txt", context
        ).strip()
        text = render_to_string("notifications/email/digest.txt", context)
        html = render_to_string("notifications/email/digest.html", context)
    message = EmailMultiAlternatives(
        _one_line(subject), text, settings.DEFAULT_FROM_EMAIL, [address]
    )
    message.attach_alternative(html, "text/html")
    return message


def _member_settings(member_id: int) -> MemberSettings | None:
    return MemberSettings.objects.filter(member_id=member_id).first()


def _record_failure(delivery: Delivery, error: Exception, now: dt.datetime) -> None:
    delivery.last_error = f"{type(error).__name__}: {error}"[:ERROR_MAX_CHARS]
    if delivery.attempts >= MAX_ATTEMPTS:
        delivery.status = FAILED
        delivery.next_attempt_at = None
        return
    delivery.status = PENDING
    delivery.next_attempt_at = now + retry_delay(delivery.attempts)


def _send(message: EmailMultiAlternatives, deliveries: list[Delivery], now) -> bool:
    """Send ``message`` and record the attempt on each delivery it carries."""
    for delivery in deliveries:
        delivery.attempts += 1
    try:
        message.send()
    except Exception as error:
        # Backends raise many types (SMTPException, OSError, timeouts). The
        # error is stored on the rows and the beat task tries again.
        for delivery in deliveries:
            _record_failure(delivery, error, now)
        first = deliveries[0]
        logger.warning(
            "Email delivery %s failed (attempt %s of %s): %s",
            first.pk,
            first.attempts,
            MAX_ATTEMPTS,
            first.last_error,
            extra={
                "organization_id": first.organization_id,
                "delivery_ids": [delivery.pk for delivery in deliveries],
            },
        )
        return False
    for delivery in deliveries:
        delivery.status = SENT
        delivery.sent_at = now
        delivery.next_attempt_at = None
    return True


def _is_due(delivery: Delivery, now: dt.datetime) -> bool:
    """Say whether a single email delivery should be attempted at ``now``."""
    if delivery.digest or delivery.status not in (PENDING, DELAYED):
        return False
    if delivery.status == PENDING and delivery.attempts == 0:
        # A new row: its queued task sends it at once.
        return True
    return delivery.next_attempt_at is None or delivery.next_attempt_at <= now


def _attempt(delivery: Delivery, now: dt.datetime) -> None:
    """Send one email delivery of the current organisation, or delay or skip it."""
    notification = delivery.notification
    member = notification.member
    member_settings = _member_settings(member.pk)
    zone = member_zone(member_settings, get_current_organization())
    quiet_end = quiet_hours_end(member_settings, zone, now)
    if quiet_end is not None:
        delivery.status = DELAYED
        delivery.next_attempt_at = quiet_end
        delivery.save(update_fields=["status", "next_attempt_at"])
        return
    address = member_address(member)
    if not address:
        delivery.status = SKIPPED
        delivery.next_attempt_at = None
        delivery.last_error = "The member has no active email address."
        delivery.save(update_fields=["status", "next_attempt_at", "last_error"])
        return
    _send(notification_message(notification, address, zone), [delivery], now)
    delivery.save()


def email_delivery_send(*, delivery_id: int, now: dt.datetime | None = None) -> str:
    """Send one email delivery of the current organisation if it is due.

    Returns the delivery's status afterwards, "locked" when another worker
    has locked the row, or "missing". A delivery that is sent, failed,
    skipped, or waiting for a retry or quiet hours to end is left alone.
    """
    now = now or timezone.now()
    with transaction.atomic():
        delivery = (
            Delivery.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related(*RELATED)
            .filter(pk=delivery_id, channel=EMAIL)
            .first()
        )
        if delivery is None:
            exists = Delivery.objects.filter(pk=delivery_id, channel=EMAIL).exists()
            return "locked" if exists else "missing"
        if not _is_due(delivery, now):
            return delivery.status
        _attempt(delivery, now)
        return delivery.status


def deliveries_send_due(*, now: dt.datetime | None = None, limit: int = SWEEP_LIMIT):
    """Send the email deliveries of every organisation that are due. Returns the count.

    Due are the delayed deliveries whose quiet hours have ended, the
    retries whose backoff has passed, and new deliveries whose task was
    lost. Each is taken with ``SELECT ... FOR UPDATE SKIP LOCKED`` in its
    own transaction. A delivery whose attempt raises is logged and skipped
    for the rest of this run.
    """
    now = now or timezone.now()
    handled = 0
    broken: list[int] = []
    while handled + len(broken) < limit:
        delivery_id = None
        try:
            with transaction.atomic():
                delivery = (
                    Delivery.unscoped.select_for_update(skip_locked=True, of=("self",))
                    .select_related("organization", *RELATED)
                    .filter(
                        channel=EMAIL,
                        digest=False,
                        status__in=[PENDING, DELAYED],
                        next_attempt_at__lte=now,
                    )
                    .exclude(pk__in=broken)
                    .order_by("next_attempt_at", "id")
                    .first()
                )
                if delivery is None:
                    break
                delivery_id = delivery.pk
                with tenant_context(delivery.organization):
                    _attempt(delivery, now)
        except Exception:
            if delivery_id is None:
                raise
            logger.exception("Email delivery %s could not be attempted", delivery_id)
            broken.append(delivery_id)
            continue
        handled += 1
    return handled


# Digest ---------------------------------------------------------------------


def _due_digest_rows(now: dt.datetime):
    return Delivery.unscoped.filter(
        channel=EMAIL, digest=True, status=PENDING, next_attempt_at__lte=now
    )


def digests_send(*, now: dt.datetime | None = None, limit: int = SWEEP_LIMIT) -> int:
    """Send each member whose digest is due one email with all their due rows.

    Returns the number of digest emails attempted. For each member, the
    due rows are locked with ``SELECT ... FOR UPDATE SKIP LOCKED`` and
    marked sent in the transaction of the send, so a second run, or one
    running at the same time, finds nothing left to send.
    """
    now = now or timezone.now()
    attempted = 0
    done_members: list[int] = []
    while attempted < limit:
        member_id = None
        try:
            with transaction.atomic():
                first = (
                    _due_digest_rows(now)
                    .select_for_update(skip_locked=True, of=("self",))
                    .select_related("organization", "notification")
                    .exclude(notification__member_id__in=done_members)
                    .order_by("next_attempt_at", "id")
                    .first()
                )
                if first is None:
                    break
                member_id = first.notification.member_id
                with tenant_context(first.organization):
                    _digest_attempt(member_id, now)
        except Exception:
            if member_id is None:
                raise
            logger.exception("Digest of member %s could not be attempted", member_id)
        done_members.append(member_id)
        attempted += 1
    return attempted


def _digest_attempt(member_id: int, now: dt.datetime) -> None:
    rows = list(
        _due_digest_rows(now)
        .filter(organization=get_current_organization())
        .filter(notification__member_id=member_id)
        .select_for_update(skip_locked=True, of=("self",))
        .select_related(*RELATED)
        .order_by("notification__event__created_at", "id")
    )
    if not rows:
        return
    member = rows[0].notification.member
    member_settings = _member_settings(member_id)
    zone = member_zone(member_settings, get_current_organization())
    quiet_end = quiet_hours_end(member_settings, zone, now)
    address = member_address(member)
    if quiet_end is not None:
        for row in rows:
            row.next_attempt_at = quiet_end
    elif not address:
        for row in rows:
            row.status = SKIPPED
            row.next_attempt_at = None
            row.last_error = "The member has no active email address."
    else:
        notifications = [row.notification for row in rows]
        message = digest_message(member, notifications, address, zone)
        if _send(message, rows, now):
            logger.info(
                "Digest with %s notifications sent to member %s",
                len(rows),
                member_id,
                extra={"organization_id": member.organization_id},
            )
    Delivery.objects.bulk_update(
        rows,
        ["status", "attempts", "last_error", "next_attempt_at", "sent_at"],
    )
