"""Template filters that print metric values, with "no data" for ``None``."""

from __future__ import annotations

from decimal import Decimal

from django import template
from django.utils.html import format_html

from measurement import formatting

register = template.Library()


def _or_no_data(text: str):
    if text == formatting.NO_DATA:
        return format_html('<span class="nodata">{}</span>', text)
    return text


@register.filter
def money(value: Decimal | None):
    return _or_no_data(formatting.money(value))


@register.filter
def percent(value: Decimal | None):
    return _or_no_data(formatting.percent(value))


@register.filter
def days(value: Decimal | None):
    return _or_no_data(formatting.days(value))


@register.filter
def quantity(value: Decimal | None):
    return _or_no_data(formatting.quantity(value))


@register.filter
def multiple(value: Decimal | None):
    return _or_no_data(formatting.multiple(value))


@register.filter
def get_item(mapping: dict, key: str):
    """Look up ``mapping[key]``, for keys held in a template variable."""
    return mapping.get(key)
