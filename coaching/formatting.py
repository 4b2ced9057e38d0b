"""Metric values and rule conditions as text, for pages and emails."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from coaching.catalog import METRICS
from coaching.models import Rule, ThresholdKind, Window

SINGULAR_UNITS = {"deals": "deal", "activities": "activity"}
COMPARATOR_SYMBOLS = {"lt": "<", "lte": "≤", "gt": ">", "gte": "≥"}


def _number(value: Decimal, places: int) -> str:
    quantum = Decimal(1).scaleb(-places)
    return f"{value.quantize(quantum, ROUND_HALF_UP):,}"


def format_minutes(minutes: Decimal) -> str:
    """Return business minutes as "45 min" or "2 h 05 min"."""
    whole = int(minutes.quantize(Decimal(1), ROUND_HALF_UP))
    if whole < 60:
        return f"{whole} min"
    return f"{whole // 60} h {whole % 60:02d} min"


def format_value(value: Decimal | None, metric: str) -> str:
    """Return a value in the metric's unit: "2.35x", "41.7%", "3 deals"."""
    if value is None:
        return "no data"
    spec = METRICS[metric]
    if spec.unit == "x":
        return f"{_number(value, 2)}x"
    if spec.unit == "%":
        return f"{_number(value, 1)}%"
    if spec.unit == "business minutes":
        return format_minutes(value)
    places = 0 if value == value.to_integral_value() else 1
    unit = SINGULAR_UNITS.get(spec.unit, spec.unit) if value == 1 else spec.unit
    return f"{_number(value, places)} {unit}"


def _multiplier(value: Decimal) -> str:
    return format(value.normalize(), "f")


def _window(rule: Rule) -> str:
    if not METRICS[rule.metric].uses_window:
        return ""
    if rule.window == Window.DAYS:
        return f" over the last {rule.window_days} days"
    if rule.window == Window.BUSINESS_DAYS:
        return f" over the last {rule.window_days} business days"
    return " in the current quota period"


def rule_condition(rule: Rule) -> str:
    """Describe when the rule fires, for example "Win rate is below 1 × the team
    median over the last 90 days, with at least 10 closed deals"."""
    spec = METRICS[rule.metric]
    comparator = rule.get_comparator_display()
    if spec.plural:
        # The comparator labels read "is below" and so on.
        comparator = comparator.replace("is ", "are ", 1)
    multiple = _multiplier(rule.threshold_value)
    if rule.threshold_kind == ThresholdKind.ABSOLUTE:
        threshold = format_value(rule.threshold_value, rule.metric)
    elif rule.threshold_kind == ThresholdKind.TARGET_MULTIPLE:
        threshold = f"{multiple} × {spec.target}"
    elif rule.threshold_kind == ThresholdKind.TEAM_MEDIAN_MULTIPLE:
        threshold = f"{multiple} × the team median"
    else:
        threshold = f"{multiple} × the team's {rule.percentile}th percentile"
    text = f"{spec.label} {comparator} {threshold}{_window(rule)}"
    if spec.sample and rule.min_sample:
        text += f", with at least {rule.min_sample} {spec.sample}"
    if rule.metric == "stale_open_deals" and rule.parameter is not None:
        text += f" (idle {int(rule.parameter)} days or more)"
    elif spec.parameter and rule.parameter is not None:
        text += f", once {_multiplier(rule.parameter)}% of the period has passed"
    return text
