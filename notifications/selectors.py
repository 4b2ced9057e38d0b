"""Reads of notifications: channel choice, the bell's count, the list, the settings.

A member sees only their own notifications. Another member's notification
id is a 404, for admins too.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.db.models import QuerySet
from django.http import Http404

from notifications.catalog import (
    EVENT_TYPES,
    EVERY_ROLE,
    RECIPIENT_ROLES,
    EventType,
    event_type_get,
)
from notifications.models import (
    ChatConnection,
    MemberSettings,
    Notification,
    OrganizationDefault,
    OutboundDelivery,
    OutboundSettings,
    Preference,
    WebhookEndpoint,
)
from routing.config_cache import cached, in_config_scope
from spm.models import Membership

# The bell counts at most this many unread notifications and shows "99+"
# above 99, so the count query stops early for a member who never reads them.
UNREAD_COUNT_LIMIT = 100


def channels_by_member(
    event_type: str, member_ids: Iterable[int]
) -> dict[int, frozenset]:
    """Return each member's channels for ``event_type``. Two queries.

    The member's preference wins, else the organisation's default, else the
    catalogue's default. Each source gives the whole set, so a preference
    with only email turns in-app off too.
    """
    member_ids = list(member_ids)
    if in_config_scope():
        # Routing notifies one rep per lead: every member's choice for the
        # type is read once per configuration version instead.
        preferences, fallback = cached(
            f"channels:{event_type}", lambda: _channels_of_everyone(event_type)
        )
    else:
        preferences = dict(
            Preference.objects.filter(
                event_type=event_type, member_id__in=member_ids
            ).values_list("member_id", "channels")
        )
        fallback = default_channels(event_type)
    return {
        member_id: frozenset(preferences[member_id])
        if member_id in preferences
        else fallback
        for member_id in member_ids
    }


def _channels_of_everyone(event_type: str) -> tuple[dict[int, list], frozenset]:
    preferences = dict(
        Preference.objects.filter(event_type=event_type).values_list(
            "member_id", "channels"
        )
    )
    return preferences, default_channels(event_type)


def default_channels(event_type: str) -> frozenset:
    """Return the organisation's default for the type, else the catalogue's.

    One query.
    """
    stored = (
        OrganizationDefault.objects.filter(event_type=event_type)
        .values_list("channels", flat=True)
        .first()
    )
    if stored is not None:
        return frozenset(stored)
    return event_type_get(event_type).default_channels


@dataclass(frozen=True)
class ChannelSetting:
    """One event type's channels on a settings page, and where they come from."""

    event_type: EventType
    channels: frozenset
    default: frozenset
    source: str  # "member", "organization" or "catalogue"

    @property
    def is_default(self) -> bool:
        return self.source != "member"


def organization_defaults() -> dict[str, frozenset]:
    """Return the organisation's stored defaults by event type. One query."""
    return {
        event_type: frozenset(channels)
        for event_type, channels in OrganizationDefault.objects.values_list(
            "event_type", "channels"
        )
    }


def organization_settings() -> list[ChannelSetting]:
    """Return every type's organisation default, against the catalogue's. One query."""
    stored = organization_defaults()
    rows = []
    for event_type in EVENT_TYPES:
        catalogue = event_type.default_channels
        if event_type.key in stored:
            rows.append(
                ChannelSetting(
                    event_type, stored[event_type.key], catalogue, "organization"
                )
            )
        else:
            rows.append(ChannelSetting(event_type, catalogue, catalogue, "catalogue"))
    return rows


def member_channel_settings(member: Membership) -> list[ChannelSetting]:
    """Return the channels in effect for ``member`` of each type their role gets.

    Types that ``catalog.RECIPIENT_ROLES`` gives to other roles only are
    left out, and a type missing from it is offered to every role. Two
    queries.
    """
    preferences = dict(
        Preference.objects.filter(member=member).values_list("event_type", "channels")
    )
    rows = []
    for organization_row in organization_settings():
        key = organization_row.event_type.key
        if member.role not in RECIPIENT_ROLES.get(key, EVERY_ROLE):
            continue
        if key in preferences:
            rows.append(
                ChannelSetting(
                    organization_row.event_type,
                    frozenset(preferences[key]),
                    organization_row.channels,
                    "member",
                )
            )
        else:
            rows.append(
                ChannelSetting(
                    organization_row.event_type,
                    organization_row.channels,
                    organization_row.channels,
                    organization_row.source,
                )
            )
    return rows


def member_settings(member: Membership) -> MemberSettings | None:
    return MemberSettings.objects.filter(member=member).first()


def unread_count(member: Membership) -> int:
    """Return the member's unread in-app notifications, up to UNREAD_COUNT_LIMIT."""
    unread = Notification.objects.filter(
        member=member, in_app=True, read_at__isnull=True
    )
    return unread.values("pk")[:UNREAD_COUNT_LIMIT].count()


def member_notifications(member: Membership, *, unread_only: bool = False) -> QuerySet:
    """Return the member's in-app notifications with their events, newest first."""
    notifications = Notification.objects.filter(member=member, in_app=True)
    if unread_only:
        notifications = notifications.filter(read_at__isnull=True)
    return notifications.select_related("event").order_by("-created_at", "-id")


def notification_for_member_or_404(member: Membership, public_id) -> Notification:
    """Load one of the member's own notifications, or raise 404."""
    try:
        return (
            Notification.objects.select_related("event")
            .filter(member=member)
            .get(public_id=public_id)
        )
    except (Notification.DoesNotExist, ValueError):
        raise Http404("No such notification.") from None


# Outbound: webhook endpoints, chat connections, their delivery logs ----------


def _get_or_404(queryset, public_id, message: str):
    try:
        return queryset.get(public_id=public_id)
    except (queryset.model.DoesNotExist, ValueError):
        raise Http404(message) from None


def webhook_endpoints() -> list[WebhookEndpoint]:
    return list(WebhookEndpoint.objects.order_by("created_at", "id"))


def webhook_endpoint_or_404(public_id) -> WebhookEndpoint:
    return _get_or_404(WebhookEndpoint.objects.all(), public_id, "No such endpoint.")


def chat_connections() -> list[ChatConnection]:
    return list(
        ChatConnection.objects.select_related("team").order_by("created_at", "id")
    )


def chat_connection_or_404(public_id) -> ChatConnection:
    return _get_or_404(
        ChatConnection.objects.select_related("team"),
        public_id,
        "No such chat connection.",
    )


def outbound_delivery_or_404(public_id) -> OutboundDelivery:
    return _get_or_404(
        OutboundDelivery.objects.select_related("event", "endpoint", "chat"),
        public_id,
        "No such delivery.",
    )


def outbound_log(*, endpoint=None, chat=None) -> QuerySet:
    """Return the deliveries of one endpoint or chat connection, newest first."""
    deliveries = OutboundDelivery.objects.select_related("event")
    if endpoint is not None:
        deliveries = deliveries.filter(endpoint=endpoint)
    else:
        deliveries = deliveries.filter(chat=chat)
    return deliveries.order_by("-created_at", "-id")


def outbound_settings() -> OutboundSettings | None:
    return OutboundSettings.objects.first()
