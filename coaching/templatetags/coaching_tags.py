from decimal import Decimal

from django import template

from coaching import formatting
from coaching.selectors import open_alert_count
from measurement import formatting as measurement_formatting

register = template.Library()


@register.filter
def metric_value(value, metric: str) -> str:
    """Format a value (a Decimal, or its text as stored in alert details)."""
    if isinstance(value, str):
        value = Decimal(value)
    return formatting.format_value(value, metric)


@register.filter
def activity_count(value) -> str:
    """Format a stored activity count, such as "40.00", as "40", or "2.50" kept."""
    if value is None or value == "":
        return "—"
    return measurement_formatting.quantity(Decimal(str(value)))


@register.filter
def comparator_symbol(comparator: str) -> str:
    return formatting.COMPARATOR_SYMBOLS.get(comparator, comparator)


@register.filter
def rule_condition(rule) -> str:
    return formatting.rule_condition(rule)


@register.simple_tag(takes_context=True)
def coaching_open_count(context) -> int:
    """Return the open alerts the signed-in member may see. One query at most."""
    membership = context.get("membership")
    if membership is None:
        return 0
    return open_alert_count(membership)


MONEY_KEYS = {"bookings", "quota", "amount", "pipeline", "forecast"}
PERCENT_KEYS = {"attainment", "pace", "attainment_to_pace", "win_rate"}


@register.filter
def evidence_value(value, key: str) -> str:
    """Format one stored evidence value by its key: money grouped, percentages."""
    if value is None or value == "":
        return "—"
    try:
        number = Decimal(str(value))
    except ArithmeticError:
        return str(value)
    if key in MONEY_KEYS:
        return measurement_formatting.money(number)
    if key in PERCENT_KEYS:
        return measurement_formatting.percent(number)
    return str(value)


@register.filter
def evidence_label(key: str) -> str:
    return key.replace("_", " ").capitalize()
