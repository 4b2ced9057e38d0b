"""The event catalogue: every event type that features raise, with its defaults.

A type's default channels apply to a member who has no preference for it,
in an organisation whose admins set no default for it. Urgency decides
what a daily digest may hold: only low-urgency events wait for the digest,
and a member who chose the digest gets other events as immediate email.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import models


class Urgency(models.TextChoices):
    LOW = "low", "Low"
    NORMAL = "normal", "Normal"
    HIGH = "high", "High"


class ChannelChoice(models.TextChoices):
    """The channels that a preference, an organisation default or the catalogue names.

    ``digest`` is email gathered into one message a day. ``chat`` is the
    organisation's Slack or Teams connection.
    """

    IN_APP = "in_app", "In-app"
    EMAIL = "email", "Email"
    DIGEST = "digest", "Daily digest"
    CHAT = "chat", "Chat"


IN_APP = ChannelChoice.IN_APP.value
EMAIL = ChannelChoice.EMAIL.value
DIGEST = ChannelChoice.DIGEST.value
CHAT = ChannelChoice.CHAT.value


@dataclass(frozen=True)
class EventType:
    key: str
    label: str
    description: str
    default_channels: frozenset[str]
    urgency: str


EVENT_TYPES: tuple[EventType, ...] = (
    EventType(
        key="lead.assigned",
        label="Lead assigned to you",
        description="Routing, a manager or an admin gave you a new lead.",
        default_channels=frozenset({IN_APP}),
        urgency=Urgency.NORMAL,
    ),
    EventType(
        key="lead.reassigned",
        label="Lead reassigned",
        description="A manager or an admin gave one of your leads to another rep.",
        default_channels=frozenset({IN_APP}),
        urgency=Urgency.NORMAL,
    ),
    EventType(
        key="lead.sla_warning",
        label="Response SLA about to be missed",
        description=(
            "80% of a lead's response time has passed with no first touch yet."
        ),
        default_channels=frozenset({IN_APP}),
        urgency=Urgency.HIGH,
    ),
    EventType(
        key="lead.sla_breached",
        label="Response SLA missed",
        description=(
            "A lead got no first touch in time and was reassigned to another rep."
        ),
        default_channels=frozenset({IN_APP, EMAIL}),
        urgency=Urgency.HIGH,
    ),
    EventType(
        key="lead.escalated",
        label="Lead escalated",
        description=(
            "A lead got no first touch in time and was escalated to the rep's manager."
        ),
        default_channels=frozenset({IN_APP, EMAIL}),
        urgency=Urgency.HIGH,
    ),
    EventType(
        key="coaching.alert_opened",
        label="Coaching alert opened",
        description="A rep you coach, or you yourself, failed a coaching rule.",
        default_channels=frozenset({IN_APP}),
        urgency=Urgency.LOW,
    ),
    EventType(
        key="import.finished",
        label="Import finished",
        description="A CSV import you started has finished.",
        default_channels=frozenset({IN_APP}),
        urgency=Urgency.LOW,
    ),
    EventType(
        key="import.failed",
        label="Import failed",
        description="A CSV import you started stopped with an error.",
        default_channels=frozenset({IN_APP, EMAIL}),
        urgency=Urgency.NORMAL,
    ),
    EventType(
        key="dispute.raised",
        label="Commission dispute raised",
        description="A rep you review disputed a line of their statement.",
        default_channels=frozenset({IN_APP, EMAIL}),
        urgency=Urgency.NORMAL,
    ),
    EventType(
        key="dispute.answered",
        label="Commission dispute answered",
        description="A reviewer replied to or resolved your statement dispute.",
        default_channels=frozenset({IN_APP, EMAIL}),
        urgency=Urgency.NORMAL,
    ),
    EventType(
        key="statement.approved",
        label="Statement approved",
        description="Your commission statement for a period was approved.",
        default_channels=frozenset({IN_APP, EMAIL}),
        urgency=Urgency.NORMAL,
    ),
    EventType(
        key="followup.task_due",
        label="Follow-up task due",
        description="A follow-up sequence created a task for you.",
        default_channels=frozenset({IN_APP}),
        urgency=Urgency.LOW,
    ),
    EventType(
        key="sync.failed",
        label="CRM sync failed",
        description="A sync of the organisation's CRM stopped with an error.",
        default_channels=frozenset({IN_APP, EMAIL}),
        urgency=Urgency.HIGH,
    ),
)

CATALOG: dict[str, EventType] = {
    event_type.key: event_type for event_type in EVENT_TYPES
}

# Membership roles, as stored in spm.models.Membership.role.
ADMIN, MANAGER, REP = "admin", "manager", "rep"
EVERY_ROLE = frozenset({ADMIN, MANAGER, REP})

# The roles whose members can receive each event type, and so the types that
# a member's preferences page offers. Every catalogue type needs an entry.
# Reps own leads, deals and statements, so they get those events. Disputes go
# to the rep's manager, or to the admins when the rep has none. Imports and
# CRM syncs are admin-only features.
# NOTE: reps get coaching alerts about themselves only in organisations that
# turn on reps_see_own_alerts, but the page offers the type to every rep.
RECIPIENT_ROLES: dict[str, frozenset[str]] = {
    "lead.assigned": EVERY_ROLE,
    "lead.reassigned": EVERY_ROLE,
    "lead.sla_warning": EVERY_ROLE,
    "lead.sla_breached": EVERY_ROLE,
    "lead.escalated": EVERY_ROLE,
    "coaching.alert_opened": EVERY_ROLE,
    "import.finished": frozenset({ADMIN}),
    "import.failed": frozenset({ADMIN}),
    "dispute.raised": frozenset({ADMIN, MANAGER}),
    "dispute.answered": EVERY_ROLE,
    "statement.approved": EVERY_ROLE,
    "followup.task_due": EVERY_ROLE,
    "sync.failed": frozenset({ADMIN}),
}


class UnknownEventType(ValueError):
    """An event type that the catalogue does not list."""


def event_type_get(key: str) -> EventType:
    """Return the catalogue entry of ``key``, or raise UnknownEventType."""
    try:
        return CATALOG[key]
    except KeyError:
        known = ", ".join(sorted(CATALOG))
        raise UnknownEventType(
            f"Unknown event type {key!r}; add it to notifications/catalog.py. "
            f"Known types: {known}."
        ) from None


def event_type_choices() -> list[tuple[str, str]]:
    return [(event_type.key, event_type.label) for event_type in EVENT_TYPES]


class InvalidChannels(ValueError):
    """A channel set with an unknown channel, or with both email and digest."""


def channels_validate(channels) -> frozenset[str]:
    """Return ``channels`` as a frozenset, or raise InvalidChannels.

    An empty set means "off". Email and digest exclude each other, because
    the digest is the email channel sent once a day.
    """
    values = frozenset(channels)
    unknown = values - set(ChannelChoice.values)
    if unknown:
        raise InvalidChannels(
            f"Unknown channel(s) {', '.join(sorted(unknown))}; "
            f"use {', '.join(ChannelChoice.values)}."
        )
    if EMAIL in values and DIGEST in values:
        raise InvalidChannels("Choose email or the daily digest, not both.")
    return values


def channels_sorted(channels) -> list[str]:
    """Return channels in catalogue order, for storage and display."""
    return [value for value in ChannelChoice.values if value in channels]
