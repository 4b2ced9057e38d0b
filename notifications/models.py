"""Events, the notifications they give each member, and how each was delivered.

One ``Event`` is what happened, once per organisation. Each recipient gets
a ``Notification``, and each channel the recipient's settings choose gets a
``Delivery`` that records its attempts. ``Preference``,
``OrganizationDefault`` and ``MemberSettings`` are the settings that choose
those channels and times.
"""

from __future__ import annotations

import uuid
import zoneinfo

from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.db.models import Q
from django.utils import timezone

from notifications.catalog import (
    InvalidChannels,
    UnknownEventType,
    Urgency,
    channels_validate,
    event_type_get,
)
from spm.models import Membership, User
from spm.tenancy import TenantModel


class Event(TenantModel):
    """Something that happened in the organisation, such as a lead assigned.

    ``object_type`` and ``object_public_id`` name the object it is about
    (for example ``activity.lead`` and the lead's public id), and ``url`` is
    the path of the page that shows it, or empty.
    """

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    type = models.CharField(max_length=60)
    object_type = models.CharField(max_length=80, blank=True)
    object_public_id = models.CharField(max_length=64, blank=True)
    url = models.CharField(max_length=500, blank=True)
    title = models.CharField(max_length=200)
    summary = models.TextField(blank=True)
    payload = models.JSONField(default=dict, blank=True, encoder=DjangoJSONEncoder)
    urgency = models.CharField(
        max_length=6, choices=Urgency.choices, default=Urgency.NORMAL
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [
            models.Index(fields=["organization", "type", "-created_at"]),
            models.Index(fields=["organization", "object_type", "object_public_id"]),
        ]

    def __str__(self) -> str:
        return f"{self.type}: {self.title}"


class Notification(TenantModel):
    """One member's copy of an event, read or not.

    ``in_app`` is false when the member's settings send the event only by
    email, so the notification stays out of the bell and the list.
    """

    # TODO: delete old read notifications; nothing prunes this table yet.

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    event = models.ForeignKey(
        Event, on_delete=models.CASCADE, related_name="notifications"
    )
    member = models.ForeignKey(
        Membership, on_delete=models.CASCADE, related_name="notifications"
    )
    in_app = models.BooleanField(default=True)
    read_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                "organization", "event", "member", name="notification_once_per_member"
            ),
        ]
        indexes = [
            models.Index(
                fields=["organization", "member", "-created_at"],
                condition=Q(in_app=True),
                name="notification_member_list",
            ),
            # The bell's count reads only this small index.
            models.Index(
                fields=["organization", "member"],
                condition=Q(in_app=True, read_at__isnull=True),
                name="notification_member_unread",
            ),
        ]
        ordering = ["-created_at", "-id"]

    @property
    def is_read(self) -> bool:
        return self.read_at is not None


class Delivery(TenantModel):
    """One channel's delivery of a notification, with its attempts.

    ``next_attempt_at`` is when the beat task sends the delivery: the end
    of quiet hours for a delayed one, the backoff time after a failed
    attempt, or the digest time. A new email delivery gets a time shortly
    after its creation as well, so the beat task sends it if the queued
    task is lost.
    """

    class Channel(models.TextChoices):
        IN_APP = "in_app", "In-app"
        EMAIL = "email", "Email"
        SLACK = "slack", "Slack"
        TEAMS = "teams", "Microsoft Teams"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"
        SKIPPED = "skipped", "Skipped"
        DELAYED = "delayed", "Delayed by quiet hours"

    notification = models.ForeignKey(
        Notification, on_delete=models.CASCADE, related_name="deliveries"
    )
    channel = models.CharField(max_length=8, choices=Channel.choices)
    digest = models.BooleanField(
        default=False, help_text="Sent in the member's daily digest email."
    )
    status = models.CharField(
        max_length=8, choices=Status.choices, default=Status.PENDING
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.TextField(blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                "organization",
                "notification",
                "channel",
                name="delivery_once_per_channel",
            ),
        ]
        indexes = [
            # The beat tasks read the few deliveries still waiting. They read
            # across organisations, which a partial index this small serves
            # even with the organisation first.
            models.Index(
                fields=["organization", "next_attempt_at"],
                condition=Q(status__in=["pending", "delayed"]),
                name="delivery_waiting",
            ),
        ]
        verbose_name_plural = "deliveries"


def _settings_clean(event_type: str, channels) -> None:
    # No field choices: a type added to the catalogue needs no migration.
    try:
        event_type_get(event_type)
    except UnknownEventType as error:
        raise ValidationError({"event_type": str(error)}) from error
    try:
        channels_validate(channels)
    except (InvalidChannels, TypeError) as error:
        raise ValidationError({"channels": str(error)}) from error


class Preference(TenantModel):
    """A member's channels for one event type. An empty list turns the type off."""

    member = models.ForeignKey(
        Membership, on_delete=models.CASCADE, related_name="notification_preferences"
    )
    event_type = models.CharField(max_length=60)
    channels = models.JSONField(default=list, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                "organization",
                "member",
                "event_type",
                name="preference_once_per_member_type",
            ),
        ]

    def clean(self) -> None:
        super().clean()
        _settings_clean(self.event_type, self.channels)


class OrganizationDefault(TenantModel):
    """The channels an admin set for one event type, for members with no preference."""

    event_type = models.CharField(max_length=60)
    channels = models.JSONField(default=list, blank=True)
    updated_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                "organization", "event_type", name="organization_default_once_per_type"
            ),
        ]

    def clean(self) -> None:
        super().clean()
        _settings_clean(self.event_type, self.channels)


def validate_time_zone(value: str) -> None:
    if value and value not in zoneinfo.available_timezones():
        raise ValidationError(f"Unknown time zone {value!r}; use an IANA name.")


class MemberSettings(TenantModel):
    """A member's notification settings that apply to every event type.

    Quiet hours run from ``quiet_start`` to ``quiet_end`` in the member's
    time zone, across midnight when the start is later than the end. Email
    that falls inside them waits for their end. An empty ``time_zone`` means
    the organisation's.
    """

    member = models.ForeignKey(
        Membership, on_delete=models.CASCADE, related_name="notification_settings"
    )
    time_zone = models.CharField(
        max_length=64,
        blank=True,
        validators=[validate_time_zone],
        help_text="Leave empty to use the organisation's time zone.",
    )
    quiet_start = models.TimeField(null=True, blank=True)
    quiet_end = models.TimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                "organization", "member", name="member_settings_once_per_member"
            ),
            models.CheckConstraint(
                condition=Q(quiet_start__isnull=True, quiet_end__isnull=True)
                | Q(quiet_start__isnull=False, quiet_end__isnull=False),
                name="member_settings_quiet_hours_both_or_neither",
                violation_error_message=(
                    "Set both the start and the end of quiet hours, or neither."
                ),
            ),
        ]
        verbose_name_plural = "member settings"

    def clean(self) -> None:
        super().clean()
        if self.quiet_start is not None and self.quiet_start == self.quiet_end:
            raise ValidationError(
                "Quiet hours must not start and end at the same time."
            )

    @property
    def has_quiet_hours(self) -> bool:
        return self.quiet_start is not None and self.quiet_end is not None
