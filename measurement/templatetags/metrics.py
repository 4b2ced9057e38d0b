"""Template filters that print metric values, with "no data" for ``None``."""

from __future__ import annotations

from decimal import Decimal

from django import template
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe
from django.utils.text import slugify

from measurement import formatting
from measurement.tables import Cell

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


def _cell_class(cell: Cell) -> str:
    classes = []
    if cell.numeric:
        classes.append("num")
    if cell.status:
        classes.append(f"status status-{slugify(cell.status)}")
    return " ".join(classes)


def _cell_content(cell: Cell) -> SafeString:
    if cell.is_no_data:
        return mark_safe('<span class="nodata">no&nbsp;data</span>')
    if cell.placeholder:
        return format_html('<span class="nodata">{}</span>', cell.text)
    if cell.parts:
        items = format_html_join(
            "",
            '<li class="status status-{}">{}</li>',
            ((part.status, part.text) for part in cell.parts),
        )
        return format_html('<ul class="statuses">{}</ul>', items)
    content = format_html("{}", cell.text)
    if cell.marker:
        content = format_html('{} <span class="marker">{}</span>', content, cell.marker)
    if cell.note:
        note = format_html('<span class="cell-note">{}</span>', cell.note)
        content = format_html("{} {}", content, note)
    return content


@register.filter
def table_cell(cell: Cell) -> SafeString:
    """Render a team-table cell as a ``<td>``.

    A filter rather than an included template: 50 reps make about a thousand
    cells, and an include for each cost about 20 ms per request on the
    benchmark tenant (bench/run.py).
    """
    css_class = _cell_class(cell)
    if css_class:
        return format_html('<td class="{}">{}</td>', css_class, _cell_content(cell))
    return format_html("<td>{}</td>", _cell_content(cell))
