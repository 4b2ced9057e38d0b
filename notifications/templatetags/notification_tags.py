from django import template

from notifications.catalog import channels_sorted
from notifications.selectors import UNREAD_COUNT_LIMIT, unread_count

register = template.Library()


@register.simple_tag(takes_context=True)
def notification_unread_count(context) -> int:
    """Return the signed-in member's unread count: one query per request at most."""
    request = context.get("request")
    membership = context.get("membership")
    if request is None or membership is None:
        return 0
    cached = getattr(request, "_notification_unread_count", None)
    if cached is None:
        cached = unread_count(membership)
        request._notification_unread_count = cached
    return cached


@register.filter
def unread_label(count: int) -> str:
    """Show the count, or "99+" when the bell stopped counting."""
    if count >= UNREAD_COUNT_LIMIT:
        return f"{UNREAD_COUNT_LIMIT - 1}+"
    return str(count)


CHANNEL_WORDS = {"in_app": "in-app", "email": "email", "digest": "daily digest"}


@register.filter
def channel_labels(channels) -> str:
    """Name a set of channels in catalogue order, such as "in-app, email", or "off"."""
    words = [
        CHANNEL_WORDS.get(channel, channel) for channel in channels_sorted(channels)
    ]
    return ", ".join(words) or "off"
