"""Writes of notifications: raise an event, read notifications, save settings.

Features call ``notify`` inside their own transaction. The event, the
notifications and the deliveries (email, webhooks and chat) are written in
a savepoint of that transaction, and they are queued only when it commits.
So a rolled-back feature sends nothing, and neither an error in ``notify``
nor a failed email or webhook ever breaks the feature.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import models, transaction
from django.utils import timezone

from notifications import outbound, selectors
from notifications.catalog import (
    CATALOG,
    CHAT,
    DIGEST,
    EMAIL,
    IN_APP,
    EventType,
    Urgency,
    channels_sorted,
    channels_validate,
    event_type_get,
)
from notifications.delivery import LOST_TASK_AFTER, member_address
from notifications.models import (
    Delivery,
    Event,
    MemberSettings,
    Notification,
    OrganizationDefault,
    Preference,
)
from notifications.schedule import digest_due_at, member_zone, quiet_hours_end
from spm.models import Membership, Organization, User
from spm.services import audit_log_write
from spm.tenancy import tenant_context

logger = logging.getLogger(__name__)

NO_ADDRESS = "The member has no active email address."


def notify(
    organization: Organization,
    type: str,
    members: Iterable[Membership | int | None],
    *,
    title: str,
    obj: models.Model | None = None,
    url: str = "",
    summary: str = "",
    payload: dict[str, Any] | None = None,
    urgency: str | None = None,
    dedup_key: str = "",
) -> Event | None:
    """Record an event and notify ``members`` on the channels each one chose.

    ``members`` are memberships or their ids; None entries and inactive
    members are skipped. ``url`` is the path of the page about ``obj``.
    ``urgency`` overrides the catalogue's. A non-empty ``dedup_key`` is
    unique per organisation: a second event with the same key is not
    written. Returns the event, or None when writing it failed, which is
    logged and does not reach the caller.

    Raises UnknownEventType for a type missing from the catalogue, because
    that is a mistake in the calling code.
    """
    notice = Notice(
        members, title, obj, url, summary, payload or {}, urgency, dedup_key
    )
    events = notify_each(organization, type, [notice])
    return events[0] if events else None


@dataclass(frozen=True)
class Notice:
    """One event of a batch given to ``notify_each``; the fields are notify's."""

    members: Iterable[Membership | int | None]
    title: str
    obj: models.Model | None = None
    url: str = ""
    summary: str = ""
    payload: dict[str, Any] = field(default_factory=dict)
    urgency: str | None = None
    dedup_key: str = ""


def notify_each(
    organization: Organization, type: str, notices: Iterable[Notice]
) -> list[Event]:
    """Record one event of ``type`` per notice, with the queries of a single one.

    For features that raise many events at once, such as a rule evaluation
    that opens an alert for each of 50 reps. Returns the events, or an empty
    list when writing them failed, which is logged like ``notify``.
    """
    event_type = event_type_get(type)
    notices = list(notices)
    if not notices:
        return []
    try:
        with transaction.atomic(), tenant_context(organization):
            return _notify(organization, event_type, notices)
    except Exception:
        logger.exception(
            "Could not record %s %s event(s)",
            len(notices),
            type,
            extra={"organization_id": organization.pk},
        )
        return []


def _object_id(obj: models.Model | None) -> str:
    if obj is None:
        return ""
    return str(getattr(obj, "public_id", obj.pk))


def _member_ids(members: Iterable[Membership | int | None]) -> list[int]:
    ids: list[int] = []
    for member in members:
        member_id = member.pk if isinstance(member, Membership) else member
        if member_id is not None and member_id not in ids:
            ids.append(member_id)
    return ids


def _recipients(
    organization: Organization, notices: list[Notice]
) -> dict[int, Membership]:
    """Return the active members of the notices by id.

    Memberships passed as objects are used as they are, which saves routing
    a query inside its locked transaction. Bare ids are loaded in one query.
    """
    found: dict[int, Membership] = {}
    ids: set[int] = set()
    for notice in notices:
        for member in notice.members:
            if isinstance(member, Membership):
                if member.organization_id == organization.pk:
                    found[member.pk] = member
            elif member is not None:
                ids.add(member)
    missing = ids - set(found)
    if missing:
        loaded = Membership.objects.filter(pk__in=missing).select_related("user")
        found.update({member.pk: member for member in loaded})
    return {pk: member for pk, member in found.items() if member.is_active}


def _event(organization, event_type: EventType, notice: Notice, now) -> Event:
    obj = notice.obj
    return Event(
        organization=organization,
        type=event_type.key,
        object_type=obj._meta.label_lower if obj is not None else "",
        object_public_id=_object_id(obj),
        url=notice.url,
        title=notice.title[:200],
        summary=notice.summary,
        payload=notice.payload,
        urgency=notice.urgency or event_type.urgency,
        created_at=now,
        dedup_key=notice.dedup_key,
    )


def _notify(
    organization: Organization, event_type: EventType, notices: list[Notice]
) -> list[Event]:
    now = timezone.now()
    events = Event.objects.bulk_create(
        _event(organization, event_type, notice, now) for notice in notices
    )
    targets = [
        (event, _member_ids(notice.members))
        for event, notice in zip(events, notices, strict=True)
    ]
    members = _recipients(organization, notices)
    if not members:
        outbound.deliveries_create(organization, event_type.key, events, {}, now)
        return events
    choices = selectors.channels_by_member(event_type.key, list(members))
    pairs = [
        (event, members[member_id])
        for event, ids in targets
        for member_id in ids
        if member_id in members and choices[member_id]
    ]
    notifications = Notification.objects.bulk_create(
        Notification(
            organization=organization,
            event=event,
            member=member,
            in_app=IN_APP in choices[member.pk],
            created_at=now,
        )
        for event, member in pairs
    )

    emailed = [pk for pk in members if choices[pk] & {EMAIL, DIGEST}]
    settings = {
        row.member_id: row
        for row in MemberSettings.objects.filter(member_id__in=emailed)
    }
    deliveries = []
    for (event, member), notification in zip(pairs, notifications, strict=True):
        deliveries += _deliveries(
            organization,
            member,
            notification,
            choices[member.pk],
            event.urgency,
            settings.get(member.pk),
            now,
        )
    Delivery.objects.bulk_create(deliveries)
    chat_members: dict[int, list[Membership]] = {}
    for event, member in pairs:
        if CHAT in choices[member.pk]:
            chat_members.setdefault(event.pk, []).append(member)
    outbound.deliveries_create(organization, event_type.key, events, chat_members, now)

    queued = [
        delivery.pk
        for delivery in deliveries
        if delivery.channel == EMAIL
        and delivery.status == Delivery.Status.PENDING
        and not delivery.digest
    ]
    if queued:
        transaction.on_commit(lambda: _queue_email(organization.pk, queued))
    return events


def _deliveries(
    organization: Organization,
    member: Membership,
    notification: Notification,
    channels: frozenset,
    urgency: str,
    settings: MemberSettings | None,
    now: dt.datetime,
) -> list[Delivery]:
    """Return the delivery rows of one notification, before they are saved."""
    common = {"organization": organization, "notification": notification}
    deliveries = []
    if IN_APP in channels:
        deliveries.append(
            Delivery(
                **common,
                channel=Delivery.Channel.IN_APP,
                status=Delivery.Status.SENT,
                attempts=1,
                sent_at=now,
                created_at=now,
            )
        )
    # A member who chose the digest gets more urgent events at once.
    digest = DIGEST in channels and urgency == Urgency.LOW
    if channels & {EMAIL, DIGEST}:
        email = Delivery(**common, channel=Delivery.Channel.EMAIL, created_at=now)
        zone = member_zone(settings, organization)
        quiet_end = quiet_hours_end(settings, zone, now)
        if not member_address(member):
            email.status = Delivery.Status.SKIPPED
            email.last_error = NO_ADDRESS
        elif digest:
            email.digest = True
            email.next_attempt_at = digest_due_at(settings, zone, now)
        elif quiet_end is not None:
            email.status = Delivery.Status.DELAYED
            email.next_attempt_at = quiet_end
        else:
            email.next_attempt_at = now + LOST_TASK_AFTER
        deliveries.append(email)
    # Chat goes to a connection per team, not per member, so it has no row
    # here: notifications.outbound writes one per event and connection.
    return deliveries


def _queue_email(organization_id: int, delivery_ids: list[int]) -> None:
    from notifications.tasks import email_delivery_send_task

    for delivery_id in delivery_ids:
        try:
            email_delivery_send_task.delay(organization_id, delivery_id)
        except Exception:
            # The row is pending with a next attempt time: the beat task
            # sends it when that time has passed.
            logger.exception(
                "Could not queue email delivery %s; the beat task will send it",
                delivery_id,
                extra={"organization_id": organization_id, "delivery_id": delivery_id},
            )


# Reading --------------------------------------------------------------------


def notification_mark_read(*, notification: Notification) -> Notification:
    """Mark one notification read; a read one keeps its first read time."""
    if notification.read_at is None:
        now = timezone.now()
        updated = Notification.objects.filter(
            pk=notification.pk, read_at__isnull=True
        ).update(read_at=now)
        if updated:
            notification.read_at = now
    return notification


def notifications_mark_all_read(*, member: Membership) -> int:
    """Mark the member's unread in-app notifications read; return how many."""
    unread = Notification.objects.filter(
        member=member, in_app=True, read_at__isnull=True
    )
    return unread.update(read_at=timezone.now())


# Settings -------------------------------------------------------------------


class SettingsError(ValueError):
    """A settings change that breaks a rule; ``field`` names the form field."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


def _validated(channels_by_type: dict[str, Iterable[str]]) -> dict[str, frozenset]:
    validated = {}
    for key, channels in channels_by_type.items():
        event_type_get(key)
        try:
            validated[key] = channels_validate(channels)
        except ValueError as error:
            raise SettingsError(f"{CATALOG[key].label}: {error}", key) from error
    return validated


@transaction.atomic
def preferences_save(
    *,
    member: Membership,
    actor: User | None,
    channels_by_type: dict[str, Iterable[str]],
    time_zone: str,
    quiet_start: dt.time | None,
    quiet_end: dt.time | None,
) -> None:
    """Save a member's channels per event type, time zone and quiet hours.

    A type whose channels equal the organisation's default in effect keeps
    no preference of its own, so it follows that default when an admin
    changes it. Types missing from ``channels_by_type`` are left as they
    are. Raises SettingsError on invalid channels or quiet hours.
    """
    requested = _validated(channels_by_type)
    stored = {
        row.event_type: row
        for row in Preference.objects.select_for_update().filter(member=member)
    }
    defaults = selectors.organization_defaults()
    old, new = {}, {}
    for key, channels in requested.items():
        default = defaults.get(key, CATALOG[key].default_channels)
        row = stored.get(key)
        before = frozenset(row.channels) if row else None
        after = None if channels == default else channels
        if before == after:
            continue
        old[key] = channels_sorted(before) if before is not None else "default"
        new[key] = channels_sorted(after) if after is not None else "default"
        if after is None:
            row.delete()
        elif row is None:
            Preference.objects.create(
                organization=member.organization,
                member=member,
                event_type=key,
                channels=channels_sorted(after),
            )
        else:
            row.channels = channels_sorted(after)
            row.save(update_fields=["channels", "updated_at"])

    settings_old, settings_new = _member_settings_save(
        member, time_zone, quiet_start, quiet_end
    )
    old.update(settings_old)
    new.update(settings_new)
    if old or new:
        audit_log_write(
            organization=member.organization,
            actor=actor,
            action="notifications.preferences.update",
            obj=member,
            old=old,
            new=new,
        )


def _member_settings_save(member, time_zone, quiet_start, quiet_end):
    """Save time zone and quiet hours; return the old and new values that changed."""
    row = MemberSettings.objects.select_for_update().filter(member=member).first()
    if row is None:
        row = MemberSettings(organization=member.organization, member=member)
    before = _settings_snapshot(row)
    row.time_zone = time_zone
    row.quiet_start = quiet_start
    row.quiet_end = quiet_end
    try:
        row.full_clean(exclude=["organization", "member"])
    except ValidationError as error:
        field, messages = next(iter(error.message_dict.items()))
        field = None if field == NON_FIELD_ERRORS else field
        raise SettingsError(" ".join(messages), field) from error
    after = _settings_snapshot(row)
    if before == after:
        return {}, {}
    row.save()
    changed = [key for key in after if before[key] != after[key]]
    return (
        {key: before[key] for key in changed},
        {key: after[key] for key in changed},
    )


def _settings_snapshot(row: MemberSettings) -> dict[str, str]:
    def clock(value: dt.time | None) -> str:
        return value.strftime("%H:%M") if value else ""

    return {
        "time_zone": row.time_zone,
        "quiet_start": clock(row.quiet_start),
        "quiet_end": clock(row.quiet_end),
    }


@transaction.atomic
def organization_defaults_save(
    *,
    organization: Organization,
    actor: User | None,
    channels_by_type: dict[str, Iterable[str]],
) -> None:
    """Save the organisation's default channels per event type, with an audit entry.

    A type set to the catalogue's default keeps no row, so it follows the
    catalogue when a later version changes it.
    """
    requested = _validated(channels_by_type)
    stored = {
        row.event_type: row
        for row in OrganizationDefault.objects.select_for_update().all()
    }
    old, new = {}, {}
    for key, channels in requested.items():
        catalogue = CATALOG[key].default_channels
        row = stored.get(key)
        before = frozenset(row.channels) if row else catalogue
        if before == channels:
            continue
        old[key] = channels_sorted(before)
        new[key] = channels_sorted(channels)
        if channels == catalogue:
            row.delete()
        elif row is None:
            OrganizationDefault.objects.create(
                organization=organization,
                event_type=key,
                channels=channels_sorted(channels),
                updated_by=actor,
            )
        else:
            row.channels = channels_sorted(channels)
            row.updated_by = actor
            row.save(update_fields=["channels", "updated_by", "updated_at"])
    if old:
        audit_log_write(
            organization=organization,
            actor=actor,
            action="notifications.defaults.update",
            object_type="notifications.organizationdefault",
            old=old,
            new=new,
        )
