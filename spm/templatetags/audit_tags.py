"""Filters that show audited old and new values as text rather than Python reprs."""

from __future__ import annotations

from typing import Any

from django import template

register = template.Library()

MISSING = "—"
EMPTY = "none"


def _text(value: Any) -> Any:
    """Return a list or dict as "key: value" text, and any other value unchanged."""
    if value is None:
        return MISSING
    if isinstance(value, dict):
        pairs = [f"{key}: {_text(item)}" for key, item in value.items()]
        return ", ".join(pairs) or EMPTY
    if isinstance(value, list):
        return ", ".join(str(_text(item)) for item in value) or EMPTY
    return value


@register.filter
def audit_lines(value: Any) -> list[Any]:
    """Return the lines that show one audited value: one line per list item.

    A list of rules or steps reads one item a line. A nested dict reads
    "key: value, key: value", and None reads as a dash.
    """
    if isinstance(value, list) and value:
        return [_text(item) for item in value]
    return [_text(value)]
