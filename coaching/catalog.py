"""Each metric's unit and options, and the rules every organisation starts with."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from coaching.models import Comparator, Metric, Severity, ThresholdKind, Window


@dataclass(frozen=True)
class MetricSpec:
    """Display unit and rule options of one metric.

    ``target`` names the rep's own figure that a target-multiple threshold
    multiplies (None when the metric has none). ``sample`` names what the
    minimum sample size counts (None when the metric has no sample).
    ``parameter`` describes the rule's extra setting, when the metric uses
    one. A metric with ``uses_window`` False looks at the present only.
    ``plural`` marks a label that takes "are" in a rule's description.
    """

    label: str
    unit: str
    places: int
    target: str | None = None
    sample: str | None = None
    parameter: str | None = None
    uses_window: bool = True
    plural: bool = False


METRICS: dict[str, MetricSpec] = {
    Metric.COVERAGE_VS_TARGET: MetricSpec(
        "Pipeline coverage", "x", 2, target="the rep's coverage target"
    ),
    Metric.WIN_RATE: MetricSpec("Win rate", "%", 1, sample="closed deals"),
    Metric.RESPONSE_TIME_MEDIAN: MetricSpec(
        "Median lead response time", "business minutes", 0, sample="leads"
    ),
    Metric.ACTIVITY_VS_BENCHMARK: MetricSpec(
        "Activities logged",
        "activities",
        0,
        target="the activity benchmark",
        plural=True,
    ),
    Metric.STALE_OPEN_DEALS: MetricSpec(
        "Open deals with no recent activity",
        "deals",
        0,
        parameter="Days without activity after which an open deal is stale.",
        uses_window=False,
        plural=True,
    ),
    Metric.ATTAINMENT: MetricSpec(
        "Quota attainment",
        "%",
        1,
        target="pace",
        parameter=(
            "Percentage of the period that must have passed before the rule "
            "fires; empty for no wait."
        ),
    ),
    Metric.ATTAINMENT_TO_PACE: MetricSpec(
        "Attainment as a share of pace",
        "%",
        1,
        parameter=(
            "Percentage of the period that must have passed before the rule "
            "fires; empty for no wait."
        ),
    ),
}

TEAM_KINDS = (ThresholdKind.TEAM_MEDIAN_MULTIPLE, ThresholdKind.TEAM_PERCENTILE)


def allowed_threshold_kinds(metric: str) -> list[str]:
    """Return the threshold kinds that make sense for ``metric``."""
    kinds = [ThresholdKind.ABSOLUTE]
    if METRICS[metric].target is not None:
        kinds.append(ThresholdKind.TARGET_MULTIPLE)
    return [*kinds, *TEAM_KINDS]


@dataclass(frozen=True)
class BuiltinRule:
    key: str
    name: str
    metric: str
    comparator: str
    threshold_kind: str
    threshold_value: Decimal
    window: str = Window.PERIOD
    window_days: int | None = None
    min_sample: int = 0
    parameter: Decimal | None = None
    severity: str = Severity.WARNING

    def fields(self) -> dict:
        """Return the rule's model fields, ``builtin_key`` included."""
        return {
            "builtin_key": self.key,
            "name": self.name,
            "metric": self.metric,
            "comparator": self.comparator,
            "threshold_kind": self.threshold_kind,
            "threshold_value": self.threshold_value,
            "window": self.window,
            "window_days": self.window_days,
            "min_sample": self.min_sample,
            "parameter": self.parameter,
            "severity": self.severity,
        }


BUILTIN_RULES = [
    BuiltinRule(
        key="coverage_below_target",
        name="Pipeline coverage below the rep's target",
        metric=Metric.COVERAGE_VS_TARGET,
        comparator=Comparator.LT,
        threshold_kind=ThresholdKind.TARGET_MULTIPLE,
        threshold_value=Decimal("1"),
    ),
    BuiltinRule(
        key="win_rate_below_team",
        name="Win rate below the team median",
        metric=Metric.WIN_RATE,
        comparator=Comparator.LT,
        threshold_kind=ThresholdKind.TEAM_MEDIAN_MULTIPLE,
        threshold_value=Decimal("1"),
        window=Window.DAYS,
        window_days=90,
        min_sample=10,
    ),
    BuiltinRule(
        key="slow_lead_response",
        name="Lead response slower than twice the team median",
        metric=Metric.RESPONSE_TIME_MEDIAN,
        comparator=Comparator.GT,
        threshold_kind=ThresholdKind.TEAM_MEDIAN_MULTIPLE,
        threshold_value=Decimal("2"),
        window=Window.DAYS,
        window_days=30,
        min_sample=5,
    ),
    BuiltinRule(
        key="activity_below_benchmark",
        name="Activity below 80% of benchmark",
        metric=Metric.ACTIVITY_VS_BENCHMARK,
        comparator=Comparator.LT,
        threshold_kind=ThresholdKind.TARGET_MULTIPLE,
        threshold_value=Decimal("0.8"),
        window=Window.BUSINESS_DAYS,
        window_days=5,
    ),
    BuiltinRule(
        key="stale_open_deal",
        name="Open deal with no activity for 14 days",
        metric=Metric.STALE_OPEN_DEALS,
        comparator=Comparator.GTE,
        threshold_kind=ThresholdKind.ABSOLUTE,
        threshold_value=Decimal("1"),
        parameter=Decimal("14"),
        severity=Severity.INFO,
    ),
    BuiltinRule(
        key="attainment_behind_pace",
        name="Attainment below 70% of pace",
        metric=Metric.ATTAINMENT,
        comparator=Comparator.LT,
        threshold_kind=ThresholdKind.TARGET_MULTIPLE,
        threshold_value=Decimal("0.7"),
        # After the first third of the period.
        parameter=Decimal("33.33"),
        severity=Severity.CRITICAL,
    ),
]


def rule_errors(rule) -> dict[str, str]:
    """Return what is wrong with a rule's settings, by field name."""
    spec = METRICS.get(rule.metric)
    if spec is None:
        return {"metric": f"Unknown metric {rule.metric!r}."}
    errors = {}
    kinds = allowed_threshold_kinds(rule.metric)
    if rule.threshold_kind not in kinds:
        errors["threshold_kind"] = (
            f"{spec.label} has no target of its own: use a fixed value or a "
            "team figure."
        )
    if rule.threshold_kind == ThresholdKind.TEAM_PERCENTILE and not rule.percentile:
        errors["percentile"] = "Enter the team percentile, from 1 to 99."
    if rule.threshold_value is not None and rule.threshold_value < 0:
        errors["threshold_value"] = (
            f"{rule.threshold_value} is negative: enter 0 or more."
        )
    if rule.window != Window.PERIOD and not rule.window_days:
        errors["window_days"] = f"Enter N for {rule.get_window_display()}."
    errors.update(_parameter_errors(rule, spec))
    if rule.activity_type and rule.metric != Metric.ACTIVITY_VS_BENCHMARK:
        errors["activity_type"] = "Only the activity metric counts one activity type."
    return errors


def _parameter_errors(rule, spec: MetricSpec) -> dict[str, str]:
    value = rule.parameter
    if spec.parameter is None:
        if value is not None:
            return {
                "parameter": f"{spec.label} takes no extra parameter: leave it empty."
            }
        return {}
    if rule.metric == Metric.STALE_OPEN_DEALS:
        if value is None:
            return {
                "parameter": "Enter the days without activity after which an open "
                "deal is stale: a whole number, 1 or more."
            }
        if value < 1 or value != int(value):
            return {
                "parameter": "Days without activity must be a whole number, 1 or "
                f"more, not {value}."
            }
        return {}
    if value is not None and not 0 <= value <= 100:
        return {"parameter": f"{value} is not a percentage: enter 0 to 100."}
    return {}
