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
    # Set by a feature that must raise an event at most once, such as one SLA
    # warning per response timer. The unique constraint enforces it.
    dedup_key = models.CharField(max_length=120, blank=True, default="")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                "organization",
                "dedup_key",
                condition=~Q(dedup_key=""),
                name="event_dedup_key_once",
            ),
        ]
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


# Outbound: webhooks, Slack and Teams ------------------------------------------


class OutboundSettings(TenantModel):
    """The organisation's settings of outbound webhooks and chat connections."""

    allow_private_addresses = models.BooleanField(
        default=False,
        verbose_name="Allow private addresses for self-hosted installs",
        help_text=(
            "Lets webhook and chat URLs point at private, loopback and other "
            "non-public addresses. Turn it on only when Attain runs inside your "
            "own network."
        ),
    )
    updated_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint("organization", name="outbound_settings_once"),
        ]
        verbose_name_plural = "outbound settings"


class OutboundTarget(TenantModel):
    """Fields shared by webhook endpoints and chat connections.

    ``failing_since`` is the time of the first failed attempt after the last
    success. An attempt that fails 24 hours or more after it disables the
    target (``notifications.outbound``).
    """

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    is_active = models.BooleanField(default=True)
    consecutive_failures = models.PositiveIntegerField(default=0)
    failing_since = models.DateTimeField(null=True, blank=True)
    disabled_at = models.DateTimeField(null=True, blank=True)
    disabled_reason = models.TextField(blank=True)
    created_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta(TenantModel.Meta):
        abstract = True


class WebhookEndpoint(OutboundTarget):
    """A URL that gets a signed POST for each event of the chosen types.

    The signing secret is stored encrypted (integrations.crypto) because
    every delivery needs it in clear text to compute the HMAC.
    """

    url = models.CharField(max_length=500)
    description = models.CharField(max_length=200, blank=True)
    event_types = models.JSONField(default=list)
    secret_encrypted = models.TextField(editable=False)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return self.url

    @property
    def secret(self) -> str:
        from integrations import crypto

        return crypto.decrypt_json(self.secret_encrypted)["secret"]

    def secret_set(self, value: str) -> None:
        from integrations import crypto

        self.secret_encrypted = crypto.encrypt_json({"secret": value})


class ChatConnection(OutboundTarget):
    """A Slack or Microsoft Teams incoming-webhook URL, for a team or everyone.

    The URL works as a password, so it is stored encrypted and pages show
    only ``url_display``. A member who chose "chat" gets their events on
    their team's connections, or on the organisation-wide ones
    (``team`` empty) when their team has none.
    """

    class Kind(models.TextChoices):
        SLACK = "slack", "Slack"
        TEAMS = "teams", "Microsoft Teams"

    kind = models.CharField(max_length=5, choices=Kind.choices)
    team = models.ForeignKey(
        "spm.Team",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
        help_text="Leave empty for members of every team without a connection.",
    )
    url_encrypted = models.TextField(editable=False)
    url_display = models.CharField(max_length=120, editable=False)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.url_display}"

    @property
    def url(self) -> str:
        from integrations import crypto

        return crypto.decrypt_json(self.url_encrypted)["url"]

    def url_set(self, value: str) -> None:
        from integrations import crypto

        self.url_encrypted = crypto.encrypt_json({"url": value})
        # Only the host and the last four characters, which identify the
        # connection without giving away its token.
        host = value.split("://", 1)[-1].split("/", 1)[0]
        self.url_display = f"{host}/…{value[-4:]}"[:120]


class OutboundDelivery(TenantModel):
    """One event's POST to a webhook endpoint or chat connection, with its attempts.

    ``request_body`` is built once, so every retry sends the same body with
    the same event id. ``request_headers`` are those of the last attempt,
    whose timestamp and signature change on each attempt. A resend is a new
    row with ``resend_of`` set and the same body.
    """

    class Kind(models.TextChoices):
        WEBHOOK = "webhook", "Webhook"
        SLACK = "slack", "Slack"
        TEAMS = "teams", "Microsoft Teams"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    event = models.ForeignKey(
        Event, on_delete=models.CASCADE, related_name="outbound_deliveries"
    )
    kind = models.CharField(max_length=7, choices=Kind.choices)
    endpoint = models.ForeignKey(
        WebhookEndpoint,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="deliveries",
    )
    chat = models.ForeignKey(
        ChatConnection,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="deliveries",
    )
    resend_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    status = models.CharField(
        max_length=7, choices=Status.choices, default=Status.PENDING
    )
    request_body = models.TextField()
    request_headers = models.JSONField(default=dict, blank=True)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_excerpt = models.TextField(blank=True)
    error = models.TextField(blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(endpoint__isnull=False, chat__isnull=True)
                | Q(endpoint__isnull=True, chat__isnull=False),
                name="outbound_delivery_one_target",
            ),
            models.UniqueConstraint(
                "organization",
                "event",
                "endpoint",
                condition=Q(resend_of__isnull=True, endpoint__isnull=False),
                name="outbound_delivery_once_per_endpoint",
            ),
            models.UniqueConstraint(
                "organization",
                "event",
                "chat",
                condition=Q(resend_of__isnull=True, chat__isnull=False),
                name="outbound_delivery_once_per_chat",
            ),
        ]
        indexes = [
            models.Index(
                fields=["organization", "next_attempt_at"],
                condition=Q(status="pending"),
                name="outbound_delivery_waiting",
            ),
            models.Index(
                fields=["organization", "endpoint", "-created_at"],
                name="outbound_delivery_log",
            ),
            models.Index(
                fields=["organization", "chat", "-created_at"],
                name="outbound_delivery_chat_log",
            ),
        ]
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "outbound deliveries"

    @property
    def event_public_id(self) -> str:
        return str(self.event.public_id)

    @property
    def target(self) -> WebhookEndpoint | ChatConnection:
        return self.endpoint if self.endpoint_id is not None else self.chat
