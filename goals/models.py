"""Targets for each period: quotas, activity benchmarks and time off.

A quota is stored as the amount an admin set for a whole period. What a rep is
measured against (the amount prorated for the days they were active and not
away) is worked out when it is read, in goals/selectors.py, so a later change
to a start date or a holiday moves the figure without rewriting quotas.
"""

from __future__ import annotations

import uuid
from decimal import Decimal

from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import F, Q
from django.utils import timezone

from activity.models import Activity
from spm.models import Membership, Team
from spm.tenancy import TenantModel

MONEY = {"max_digits": 18, "decimal_places": 2}


class QuotaMetric(models.TextChoices):
    BOOKINGS = "bookings", "Bookings"
    DEAL_COUNT = "deal_count", "Deals won"
    NEW_PIPELINE = "new_pipeline", "New pipeline created"


class Quota(TenantModel):
    """A target for one rep or one team over ``[period_start, period_end)``.

    Exactly one of ``member`` and ``team`` is set. A team quota stands on its
    own: it may differ from the sum of its reps' quotas, and pages show both.
    For the deal count metric ``amount`` holds the number of deals and
    ``currency`` is empty.
    """

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    member = models.ForeignKey(
        Membership,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="quotas",
    )
    team = models.ForeignKey(
        Team, null=True, blank=True, on_delete=models.CASCADE, related_name="quotas"
    )
    metric = models.CharField(
        max_length=12, choices=QuotaMetric, default=QuotaMetric.BOOKINGS
    )
    period_start = models.DateField()
    period_end = models.DateField(help_text="The first day after the period.")
    amount = models.DecimalField(validators=[MinValueValidator(Decimal(0))], **MONEY)
    currency = models.CharField(max_length=3, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=(Q(member__isnull=False) & Q(team__isnull=True))
                | (Q(member__isnull=True) & Q(team__isnull=False)),
                name="quota_member_or_team",
            ),
            models.CheckConstraint(
                condition=Q(period_end__gt=F("period_start")),
                name="quota_period_not_empty",
            ),
            models.CheckConstraint(
                condition=Q(amount__gte=0), name="quota_amount_not_negative"
            ),
            models.UniqueConstraint(
                "organization",
                "member",
                "metric",
                "period_start",
                name="quota_unique_member_period",
                condition=Q(member__isnull=False),
            ),
            models.UniqueConstraint(
                "organization",
                "team",
                "metric",
                "period_start",
                name="quota_unique_team_period",
                condition=Q(team__isnull=False),
            ),
        ]
        indexes = [
            models.Index(
                fields=["organization", "metric", "period_start"],
                name="quota_org_metric_start",
            )
        ]

    def __str__(self) -> str:
        owner = self.member or self.team
        return f"{owner} {self.get_metric_display()} {self.period_start}"


class BenchmarkUnit(models.TextChoices):
    DAY = "day", "per business day"
    WEEK = "week", "per week"


class ActivityBenchmark(TenantModel):
    """How many activities of one type a rep is expected to log.

    A benchmark applies to a team, to a role, or to everyone when both are
    empty; the most specific one wins (team, then role, then everyone).
    ``ramp`` lists the percentage expected in each of a new hire's first
    months, counted from their start date: ``[50, 75]`` means half in month
    one, three quarters in month two and the full figure from month three.
    """

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    activity_type = models.CharField(max_length=10, choices=Activity.Type)
    unit = models.CharField(
        max_length=4, choices=BenchmarkUnit, default=BenchmarkUnit.DAY
    )
    target = models.DecimalField(
        max_digits=8,
        decimal_places=2,
        validators=[MinValueValidator(Decimal("0.01"))],
    )
    role = models.CharField(max_length=10, choices=Membership.Role, blank=True)
    team = models.ForeignKey(
        Team,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="benchmarks",
    )
    ramp = models.JSONField(default=list, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(target__gt=0), name="benchmark_target_positive"
            ),
            models.UniqueConstraint(
                "organization",
                "activity_type",
                "role",
                "team",
                name="benchmark_unique_team_scope",
                condition=Q(team__isnull=False),
            ),
            models.UniqueConstraint(
                "organization",
                "activity_type",
                "role",
                name="benchmark_unique_role_scope",
                condition=Q(team__isnull=True),
            ),
        ]

    def __str__(self) -> str:
        kind = self.get_activity_type_display()
        return f"{self.target} {kind} {self.get_unit_display()}"


class TimeOff(TenantModel):
    """Days a rep is away, ``start_date`` to ``end_date`` inclusive.

    Quotas and activity benchmarks are reduced for these days, and lead
    routing treats the rep as unavailable on them.
    """

    class Kind(models.TextChoices):
        VACATION = "vacation", "Vacation"
        LEAVE = "leave", "Leave"
        SICK = "sick", "Sick"
        OTHER = "other", "Other"

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    member = models.ForeignKey(
        Membership, on_delete=models.CASCADE, related_name="time_off"
    )
    kind = models.CharField(max_length=10, choices=Kind, default=Kind.VACATION)
    start_date = models.DateField()
    end_date = models.DateField(help_text="The last day away.")
    note = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(end_date__gte=F("start_date")),
                name="time_off_end_after_start",
            ),
        ]
        indexes = [
            models.Index(
                fields=["organization", "member", "start_date"],
                name="time_off_member_start",
            )
        ]
        ordering = ["start_date"]

    def __str__(self) -> str:
        days = f"{self.start_date}..{self.end_date}"
        return f"{self.member} {self.get_kind_display()} {days}"
