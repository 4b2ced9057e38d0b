"""Judge every rep in a rule's scope: reading, threshold, team figure, verdict.

Nothing here writes. ``coaching.services`` turns the verdicts into alerts,
and the recovery check reuses them to see whether a metric came back.
"""

from __future__ import annotations

import datetime as dt
import operator
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from coaching.catalog import METRICS
from coaching.metrics import READERS
from coaching.models import Comparator, Rule, ThresholdKind, Window
from coaching.readings import EvaluationContext, Reading, RuleWindow
from goals.selectors import is_business_day
from measurement.periods import period_containing

ONE_DAY = dt.timedelta(days=1)
# Thresholds and team figures are stored, shown and compared at this precision.
PRECISION = Decimal("0.0001")

COMPARE = {
    Comparator.LT: operator.lt,
    Comparator.LTE: operator.le,
    Comparator.GT: operator.gt,
    Comparator.GTE: operator.ge,
}


@dataclass
class Verdict:
    """One rep's result for one rule.

    ``breached`` is True when the condition holds, False when it does not,
    and None when the rep cannot be judged, with the cause in ``reason``.
    """

    value: Decimal | None
    threshold: Decimal | None
    team_value: Decimal | None
    sample: int | None
    breached: bool | None
    evidence: dict[str, Any] = field(default_factory=dict)
    reason: str = ""


@dataclass
class RuleResult:
    window: RuleWindow
    team_value: Decimal | None
    verdicts: dict[int, Verdict]


def business_days_before(day: dt.date, count: int) -> dt.date:
    """Return the first of the ``count`` business days that end before ``day``."""
    found = 0
    while found < count:
        day -= ONE_DAY
        if is_business_day(day):
            found += 1
    return day


def rule_window(ctx: EvaluationContext, rule: Rule) -> RuleWindow:
    """Return the date range the rule measures on ``ctx.today``.

    A rolling window is made of whole days before today, so a rep is not
    judged on a day that has not finished. Its alerts share the key
    ``rolling``, so the same rep gets one open alert however the window moves.
    """
    if not METRICS[rule.metric].uses_window:
        return RuleWindow(None, None, "current", "open deals today")
    if rule.window == Window.DAYS:
        start = ctx.today - dt.timedelta(days=rule.window_days)
        return RuleWindow(start, ctx.today, "rolling", f"last {rule.window_days} days")
    if rule.window == Window.BUSINESS_DAYS:
        start = business_days_before(ctx.today, rule.window_days)
        label = f"last {rule.window_days} business days"
        return RuleWindow(start, ctx.today, "rolling", label)
    organization = ctx.organization
    period = period_containing(organization.quota_period, ctx.today, organization)
    return RuleWindow(period.start, period.end, period.start.isoformat(), period.label)


def percentile(values: list[Decimal], percent: Decimal) -> Decimal:
    """Return the ``percent``-th percentile, interpolating between closest ranks.

    The 50th percentile is the median: with an even count, the mean of the
    two middle values (20, 30, 40, 50 give 35).
    """
    ordered = sorted(values)
    rank = (len(ordered) - 1) * percent / 100
    below = int(rank)
    above = min(below + 1, len(ordered) - 1)
    fraction = rank - below
    return ordered[below] + (ordered[above] - ordered[below]) * fraction


def _counts(rule: Rule, reading: Reading | None) -> bool:
    """Say whether a reading joins the team figure: it has a value and enough sample."""
    if reading is None or reading.value is None or reading.skip_reason:
        return False
    return reading.sample is None or reading.sample >= rule.min_sample


def team_figure(rule: Rule, readings: dict[int, Reading]) -> Decimal | None:
    """Return the team median or percentile of the judged reps, if the rule uses one."""
    if rule.threshold_kind == ThresholdKind.TEAM_MEDIAN_MULTIPLE:
        percent = Decimal(50)
    elif rule.threshold_kind == ThresholdKind.TEAM_PERCENTILE:
        percent = Decimal(rule.percentile)
    else:
        return None
    values = [r.value for r in readings.values() if _counts(rule, r)]
    if not values:
        return None
    return percentile(values, percent).quantize(PRECISION, ROUND_HALF_UP)


def _threshold(
    rule: Rule, reading: Reading, team_value: Decimal | None
) -> Decimal | None:
    if rule.threshold_kind == ThresholdKind.ABSOLUTE:
        base = Decimal(1)
    elif rule.threshold_kind == ThresholdKind.TARGET_MULTIPLE:
        base = reading.target
    else:
        base = team_value
    if base is None:
        return None
    return (base * rule.threshold_value).quantize(PRECISION, ROUND_HALF_UP)


def _unjudged(rule: Rule, reading: Reading | None, team_value) -> str:
    """Return why the rep cannot be judged, or "" when they can."""
    spec = METRICS[rule.metric]
    if reading is None:
        return "no data"
    if reading.skip_reason:
        return reading.skip_reason
    if reading.value is None:
        return "no data"
    if spec.sample and (reading.sample or 0) < rule.min_sample:
        return f"{reading.sample or 0} {spec.sample}, fewer than {rule.min_sample}"
    if rule.threshold_kind == ThresholdKind.TARGET_MULTIPLE and reading.target is None:
        return f"no value for {spec.target}"
    if rule.threshold_kind in (
        ThresholdKind.TEAM_MEDIAN_MULTIPLE,
        ThresholdKind.TEAM_PERCENTILE,
    ) and (team_value is None):
        return "no team figure: no rep in the scope could be measured"
    return ""


def judge(rule: Rule, reading: Reading | None, team_value: Decimal | None) -> Verdict:
    sample = None if reading is None else reading.sample
    evidence = {} if reading is None else reading.evidence
    value = None if reading is None else reading.value
    if reading is not None and reading.met and value is None:
        return Verdict(None, None, team_value, sample, False, evidence, "target met")
    reason = _unjudged(rule, reading, team_value)
    if reason:
        return Verdict(value, None, team_value, sample, None, evidence, reason)
    threshold = _threshold(rule, reading, team_value)
    breached = COMPARE[rule.comparator](value, threshold)
    return Verdict(value, threshold, team_value, sample, breached, evidence)


def measure_rule(ctx: EvaluationContext, rule: Rule) -> RuleResult:
    """Read the rule's metric for every active rep in its scope and judge each.

    The number of queries depends on the metric, never on the number of reps.
    """
    window = rule_window(ctx, rule)
    members = ctx.reps_in_scope(rule.team_id)
    readings = READERS[rule.metric](ctx, rule, members, window) if members else {}
    team_value = team_figure(rule, readings)
    verdicts = {
        member.pk: judge(rule, readings.get(member.pk), team_value)
        for member in members
    }
    return RuleResult(window, team_value, verdicts)
