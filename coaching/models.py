"""Coaching triggers: rules that watch each rep's numbers, and the alerts they raise.

A rule compares one metric of each rep in its scope with a threshold. The
threshold is a fixed value, a multiple of the rep's own target (coverage
target, activity benchmark or pace), or a multiple of a team figure (the
median or a percentile of the scope's reps). An alert is one rep failing one rule in one
period. The database keeps at most one unresolved alert per rule, rep and
period, so evaluating again updates the alert instead of adding another.
docs/coaching.md describes the behaviour.
"""

from __future__ import annotations

import uuid

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from activity.models import Activity
from spm.models import Membership, Team, User
from spm.tenancy import TenantModel

# Values of different metrics share these columns: a ratio (2.35x), a
# percentage (41.7), business minutes (95.5) or a count (3).
MEASURE = {"max_digits": 14, "decimal_places": 4}


class Metric(models.TextChoices):
    COVERAGE_VS_TARGET = "coverage_vs_target", "Pipeline coverage"
    WIN_RATE = "win_rate", "Win rate"
    RESPONSE_TIME_MEDIAN = "response_time_median", "Median lead response time"
    ACTIVITY_VS_BENCHMARK = "activity_vs_benchmark", "Activities logged"
    STALE_OPEN_DEALS = "stale_open_deals", "Open deals with no recent activity"
    ATTAINMENT = "attainment", "Quota attainment"
    ATTAINMENT_TO_PACE = "attainment_to_pace", "Attainment as a share of pace"


class Comparator(models.TextChoices):
    LT = "lt", "is below"
    LTE = "lte", "is at or below"
    GT = "gt", "is above"
    GTE = "gte", "is at or above"


class ThresholdKind(models.TextChoices):
    ABSOLUTE = "absolute", "a fixed value"
    TARGET_MULTIPLE = "target_multiple", "a multiple of the rep's own target"
    TEAM_MEDIAN_MULTIPLE = "team_median_multiple", "a multiple of the team median"
    TEAM_PERCENTILE = "team_percentile", "a multiple of a team percentile"


class Window(models.TextChoices):
    PERIOD = "period", "the current quota period"
    DAYS = "days", "the last N days"
    BUSINESS_DAYS = "business_days", "the last N business days"


class Severity(models.TextChoices):
    INFO = "info", "Info"
    WARNING = "warning", "Warning"
    CRITICAL = "critical", "Critical"


class Rule(TenantModel):
    """A condition on one metric, checked for every active rep in the scope.

    ``team`` is the scope; empty means the whole organisation. ``parameter``
    is the metric's extra setting: the idle days after which an open deal is
    stale, or for the attainment metrics the percentage of the period that
    must have passed before the rule fires.
    """

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(max_length=120)
    metric = models.CharField(max_length=30, choices=Metric)
    comparator = models.CharField(max_length=3, choices=Comparator)
    threshold_kind = models.CharField(
        max_length=24, choices=ThresholdKind, default=ThresholdKind.ABSOLUTE
    )
    threshold_value = models.DecimalField(
        max_digits=12,
        decimal_places=4,
        help_text=(
            "The value itself for a fixed threshold, else the multiplier: "
            "0.8 means 80% of the target or team figure."
        ),
    )
    percentile = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(99)],
        help_text="For a team percentile threshold: 1 to 99.",
    )
    min_sample = models.PositiveIntegerField(
        "minimum sample size",
        default=0,
        help_text=(
            "Closed deals for win rate, leads for response time. A rep with "
            "fewer is not judged."
        ),
    )
    window = models.CharField(max_length=13, choices=Window, default=Window.PERIOD)
    window_days = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(366)],
        help_text="N for the last N days or business days.",
    )
    parameter = models.DecimalField(
        max_digits=8, decimal_places=2, null=True, blank=True
    )
    activity_type = models.CharField(
        max_length=10,
        choices=Activity.Type,
        blank=True,
        help_text="Count one activity type only; empty counts every benchmarked type.",
    )
    cooldown_days = models.PositiveSmallIntegerField(
        default=7,
        help_text="Days after an alert is resolved before the rule may alert "
        "again on the same rep.",
    )
    recovery_window_days = models.PositiveSmallIntegerField(
        default=14,
        validators=[MinValueValidator(1)],
        help_text="Days after resolution at which the metric is measured again.",
    )
    team = models.ForeignKey(
        Team,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="coaching_rules",
    )
    severity = models.CharField(
        max_length=8, choices=Severity, default=Severity.WARNING
    )
    is_active = models.BooleanField(default=True)
    builtin_key = models.CharField(max_length=40, blank=True, editable=False)
    created_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                "organization",
                "builtin_key",
                name="coaching_rule_builtin_unique",
                condition=~Q(builtin_key=""),
            ),
            models.CheckConstraint(
                condition=Q(window="period") | Q(window_days__isnull=False),
                name="coaching_rule_window_days_set",
            ),
            models.CheckConstraint(
                condition=~Q(threshold_kind="team_percentile")
                | Q(percentile__gte=1, percentile__lte=99),
                name="coaching_rule_percentile_range",
            ),
        ]
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        from coaching.catalog import rule_errors

        super().clean()
        errors = rule_errors(self)
        if errors:
            raise ValidationError(errors)


class AlertStatus(models.TextChoices):
    OPEN = "open", "Open"
    ACKNOWLEDGED = "acknowledged", "Acknowledged"
    RESOLVED = "resolved", "Resolved"


class RecoveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RECOVERED = "recovered", "Recovered"
    NOT_RECOVERED = "not_recovered", "Not recovered"


class Alert(TenantModel):
    """One rep failing one rule in one period.

    ``period_key`` names the period: its start date for a rule on the quota
    period, ``rolling`` for a rule on the last N days, ``current`` for open
    deals. ``value``, ``threshold`` and ``team_value`` are from the latest
    evaluation, in the metric's unit. ``details`` contains the evidence (ids
    and labels of stale deals or slow leads), the first values seen, and
    ``cleared`` once the condition has stopped holding.
    """

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    rule = models.ForeignKey(Rule, on_delete=models.PROTECT, related_name="alerts")
    member = models.ForeignKey(
        Membership, on_delete=models.CASCADE, related_name="coaching_alerts"
    )
    period_key = models.CharField(max_length=40)
    period_label = models.CharField(max_length=80, blank=True)
    status = models.CharField(
        max_length=12, choices=AlertStatus, default=AlertStatus.OPEN
    )
    value = models.DecimalField(null=True, blank=True, **MEASURE)
    threshold = models.DecimalField(null=True, blank=True, **MEASURE)
    team_value = models.DecimalField(null=True, blank=True, **MEASURE)
    sample_size = models.PositiveIntegerField(null=True, blank=True)
    details = models.JSONField(default=dict, blank=True)
    first_seen_at = models.DateTimeField(default=timezone.now)
    last_evaluated_at = models.DateTimeField(default=timezone.now)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    recovery_status = models.CharField(
        max_length=13, choices=RecoveryStatus, blank=True
    )
    recovery_value = models.DecimalField(null=True, blank=True, **MEASURE)
    recovery_checked_at = models.DateTimeField(null=True, blank=True)
    recovered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                "organization",
                "rule",
                "member",
                "period_key",
                name="coaching_alert_one_unresolved",
                condition=~Q(status="resolved"),
            ),
        ]
        indexes = [
            models.Index(
                fields=["organization", "status", "member"],
                name="coaching_alert_status_member",
            ),
            models.Index(
                fields=["organization", "rule", "member", "status"],
                name="coaching_alert_rule_member",
            ),
        ]
        ordering = ["-first_seen_at", "-id"]

    def __str__(self) -> str:
        return f"{self.rule} · {self.member} · {self.period_label or self.period_key}"

    @property
    def is_cleared(self) -> bool:
        return bool(self.details.get("cleared"))


class NoteKind(models.TextChoices):
    NOTE = "note", "Note"
    CONVERSATION = "conversation", "Coaching conversation"


class AlertNote(TenantModel):
    """A manager's note on an alert, or a logged coaching conversation.

    The rep the alert is about sees the conversations, never the notes.
    """

    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="notes")
    author = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    kind = models.CharField(max_length=12, choices=NoteKind, default=NoteKind.NOTE)
    body = models.TextField(max_length=5000)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["organization", "alert", "created_at"])]


class DigestDelivery(TenantModel):
    """The daily alert digest sent to one member on one local day.

    The unique key makes a repeated or concurrent digest run send nothing
    twice.
    """

    recipient = models.ForeignKey(
        Membership, on_delete=models.CASCADE, related_name="+"
    )
    digest_date = models.DateField()
    sent_at = models.DateTimeField(default=timezone.now)
    alert_count = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                "organization",
                "recipient",
                "digest_date",
                name="coaching_digest_once_a_day",
            ),
        ]
