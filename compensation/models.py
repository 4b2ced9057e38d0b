"""Compensation plans, their versions and components, assignments, rates and draws.

A plan is edited as numbered versions. A draft version can change; a
published one is read-only, so a statement can always be explained by the
terms it was calculated with. A change takes effect by publishing a new
version with a later ``effective_from``; a period that contains that date is
split there (compensation.engine.plans).

Component parameters are JSON, validated in ``PlanComponent.clean`` by the
component kind's module in compensation.engine, which is also what reads
them at calculation time. docs/compensation.md describes each kind.
"""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

import pycountry
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Lower
from django.utils import timezone

from activity.models import Deal
from compensation.engine.components import KINDS_WITH_DEAL_CAP, build_component
from compensation.engine.plans import FxRateDate, PayoutTiming
from compensation.engine.tiers import TierTable
from compensation.engine.types import ParamsError
from compensation.fields import CompactJSONField
from spm.models import Membership, User
from spm.tenancy import TenantModel, organization_key

MONEY = {"max_digits": 18, "decimal_places": 2}


def validate_currency(code: str) -> None:
    """Accept only ISO 4217 alphabetic codes, such as USD or EUR."""
    if not code or pycountry.currencies.get(alpha_3=code) is None:
        raise ValidationError(
            f"{code!r} is not an ISO 4217 currency code; use one such as USD."
        )


def currency_field(**options) -> models.CharField:
    return models.CharField(max_length=3, validators=[validate_currency], **options)


class CompPlan(TenantModel):
    """A compensation plan; its terms live in its versions."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(max_length=120)
    currency = currency_field(help_text="The currency the plan pays in.")
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                "organization", Lower("name"), name="comp_plan_name_unique"
            ),
        ]
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class PlanVersion(TenantModel):
    """The terms of a plan from ``effective_from`` until a later published version."""

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        PUBLISHED = "published", "Published"

    class Timing(models.TextChoices):
        AT_CLOSE = PayoutTiming.AT_CLOSE, "when the deal is credited"
        ON_PAYMENT = PayoutTiming.ON_PAYMENT, "pro rata as the customer pays"
        ON_FULL_PAYMENT = PayoutTiming.ON_FULL_PAYMENT, "when the deal is fully paid"

    class RateDate(models.TextChoices):
        CLOSE_DATE = FxRateDate.CLOSE_DATE, "the close date"
        MONTH_START = FxRateDate.MONTH_START, "the first day of the close month"

    class Clawback(models.TextChoices):
        NONE = "", "no clawback"
        FULL = "full", "all of it"
        PRORATED = "prorated", "the unserved share of the term"

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    plan = models.ForeignKey(
        CompPlan, on_delete=models.CASCADE, related_name="versions"
    )
    number = models.PositiveIntegerField(validators=[MinValueValidator(1)])
    effective_from = models.DateField()
    status = models.CharField(max_length=10, choices=Status, default=Status.DRAFT)
    published_at = models.DateTimeField(null=True, blank=True)
    published_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    cap_per_period = models.DecimalField(
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal(0))],
        help_text="The most the whole plan pays in one period; empty for no cap.",
        **MONEY,
    )
    payout_timing = models.CharField(
        "commission is paid", max_length=16, choices=Timing, default=Timing.AT_CLOSE
    )
    fx_rate_date = models.CharField(
        "exchange rates are taken on",
        max_length=12,
        choices=RateDate,
        default=RateDate.CLOSE_DATE,
    )
    clawback = models.CharField(
        "a cancelled deal takes back",
        max_length=10,
        choices=Clawback,
        default=Clawback.NONE,
        blank=True,
    )
    clawback_term_months = models.PositiveSmallIntegerField(
        "contract term for clawback, in months",
        default=12,
        validators=[MinValueValidator(1)],
    )
    year_payout_tiers = models.JSONField(
        default=list,
        blank=True,
        help_text=(
            'Share of gross commission paid by plan year, as [{"from": "0", '
            '"rate": "0.75"}, {"from": "100000", "rate": "1"}]; empty to pay 100%.'
        ),
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                "organization", "plan", "number", name="plan_version_number_unique"
            ),
            models.UniqueConstraint(
                "organization",
                "plan",
                "effective_from",
                condition=Q(status="published"),
                name="plan_version_published_date_unique",
            ),
            models.CheckConstraint(
                condition=Q(status="draft") | Q(published_at__isnull=False),
                name="plan_version_published_has_time",
            ),
            models.CheckConstraint(
                condition=Q(cap_per_period__isnull=True) | Q(cap_per_period__gte=0),
                name="plan_version_cap_not_negative",
            ),
            models.CheckConstraint(
                condition=Q(clawback_term_months__gte=1),
                name="plan_version_term_positive",
            ),
        ]
        indexes = [
            models.Index(
                fields=["organization", "plan", "effective_from"],
                name="plan_version_effective",
            )
        ]
        ordering = ["plan_id", "number"]

    def __str__(self) -> str:
        return self.label

    @property
    def label(self) -> str:
        return f"{self.plan.name} v{self.number}"

    @property
    def is_published(self) -> bool:
        return self.status == self.Status.PUBLISHED

    def year_payout_table(self) -> TierTable | None:
        if not self.year_payout_tiers:
            return None
        return TierTable.parse(self.year_payout_tiers, "year_payout_tiers")

    def clean(self) -> None:
        super().clean()
        try:
            self.year_payout_table()
        except ParamsError as error:
            raise ValidationError({"year_payout_tiers": str(error)}) from error

    def save(self, *args, **kwargs) -> None:
        # Publishing saves a draft as published; after that the row is final.
        if self.pk is not None and (
            PlanVersion.unscoped.filter(
                pk=self.pk, status=self.Status.PUBLISHED
            ).exists()
        ):
            raise ValidationError(
                f"{self.label} is published, so it is read-only. Create a new "
                "version to change it."
            )
        super().save(*args, **kwargs)


class PlanComponent(TenantModel):
    """One way a plan version pays: flat rate, tiers, bonus, SPIFF or override."""

    class Kind(models.TextChoices):
        FLAT = "flat", "Flat rate"
        TIERED = "tiered", "Tiered rates"
        BONUS = "bonus", "Milestone bonus"
        SPIFF = "spiff", "SPIFF"
        OVERRIDE = "override", "Manager override"

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    version = models.ForeignKey(
        PlanVersion, on_delete=models.CASCADE, related_name="components"
    )
    name = models.CharField(max_length=120)
    kind = models.CharField(max_length=10, choices=Kind)
    order = models.PositiveSmallIntegerField(default=0)
    params = models.JSONField(default=dict, blank=True)
    cap_per_deal = models.DecimalField(
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal(0))],
        help_text="The most one deal earns from this component, before any split.",
        **MONEY,
    )
    cap_per_period = models.DecimalField(
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal(0))],
        help_text="The most this component pays in one period.",
        **MONEY,
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                "organization",
                "version",
                Lower("name"),
                name="plan_component_name_unique",
            ),
            models.CheckConstraint(
                condition=Q(cap_per_deal__isnull=True) | Q(cap_per_deal__gte=0),
                name="plan_component_deal_cap_not_negative",
            ),
            models.CheckConstraint(
                condition=Q(cap_per_period__isnull=True) | Q(cap_per_period__gte=0),
                name="plan_component_period_cap_not_negative",
            ),
        ]
        ordering = ["version_id", "order", "id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_kind_display()})"

    def to_engine(self):
        """Return the engine's view of this component; raises ParamsError."""
        return build_component(
            name=self.name,
            kind=self.kind,
            params=self.params,
            cap_per_deal=self.cap_per_deal,
            cap_per_period=self.cap_per_period,
            id=self.pk,
        )

    def clean(self) -> None:
        super().clean()
        if self.cap_per_deal is not None and self.kind not in KINDS_WITH_DEAL_CAP:
            raise ValidationError(
                {"cap_per_deal": f"A {self.get_kind_display()} is not paid per deal."}
            )
        try:
            self.to_engine()
        except ParamsError as error:
            raise ValidationError({"params": str(error)}) from error

    def save(self, *args, **kwargs) -> None:
        if self.version.is_published:
            raise ValidationError(
                f"{self.version.label} is published, so its components are "
                "read-only. Create a new version to change them."
            )
        super().save(*args, **kwargs)


class PlanAssignment(TenantModel):
    """A member on a plan from ``start_date`` to ``end_date``, both included."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    member = models.ForeignKey(
        Membership, on_delete=models.CASCADE, related_name="plan_assignments"
    )
    plan = models.ForeignKey(
        CompPlan, on_delete=models.PROTECT, related_name="assignments"
    )
    start_date = models.DateField()
    end_date = models.DateField(
        null=True, blank=True, help_text="The last day on the plan; empty if open."
    )
    target_incentive = models.DecimalField(
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal(0))],
        help_text="Variable pay at 100% of quota for a year.",
        **MONEY,
    )
    target_incentive_currency = models.CharField(
        max_length=3, blank=True, validators=[validate_currency]
    )

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(end_date__isnull=True) | Q(end_date__gte=F("start_date")),
                name="plan_assignment_end_after_start",
            ),
            models.CheckConstraint(
                condition=Q(target_incentive__isnull=True, target_incentive_currency="")
                | Q(target_incentive__isnull=False) & ~Q(target_incentive_currency=""),
                name="plan_assignment_target_has_currency",
            ),
        ]
        indexes = [
            models.Index(
                fields=["organization", "member", "start_date"],
                name="plan_assignment_member_start",
            )
        ]
        ordering = ["start_date", "id"]

    def __str__(self) -> str:
        return f"{self.member} on {self.plan} from {self.start_date}"

    def clean(self) -> None:
        super().clean()
        if self.member_id is None or self.plan_id is None or self.start_date is None:
            return
        overlapping = PlanAssignment.unscoped.filter(
            organization_id=self.organization_id or self.member.organization_id,
            member_id=self.member_id,
            plan_id=self.plan_id,
        ).exclude(pk=self.pk)
        if self.end_date is not None:
            overlapping = overlapping.filter(start_date__lte=self.end_date)
        overlapping = overlapping.filter(
            Q(end_date__isnull=True) | Q(end_date__gte=self.start_date)
        )
        if overlapping.exists():
            raise ValidationError(
                f"{self.member} is already on {self.plan} for some of these days; "
                "end the other assignment first."
            )


class FxRate(TenantModel):
    """The price of one ``base_currency`` unit in ``quote_currency`` on ``date``."""

    base_currency = currency_field()
    quote_currency = currency_field()
    date = models.DateField()
    rate = models.DecimalField(
        max_digits=20,
        decimal_places=10,
        validators=[MinValueValidator(Decimal("0.0000000001"))],
    )
    source = models.CharField(max_length=80, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                "organization",
                "base_currency",
                "quote_currency",
                "date",
                name="fx_rate_unique_per_day",
            ),
            models.CheckConstraint(condition=Q(rate__gt=0), name="fx_rate_positive"),
            models.CheckConstraint(
                condition=~Q(base_currency=F("quote_currency")),
                name="fx_rate_two_currencies",
            ),
        ]
        ordering = ["-date", "base_currency", "quote_currency"]

    def __str__(self) -> str:
        return (
            f"1 {self.base_currency} = {self.rate} {self.quote_currency} on {self.date}"
        )


class Draw(TenantModel):
    """A minimum payment per period, from ``start_date`` to ``end_date`` inclusive.

    A recoverable draw is an advance the member pays back from later
    earnings over the draw; a non-recoverable one is a guarantee.
    """

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    member = models.ForeignKey(
        Membership, on_delete=models.CASCADE, related_name="draws"
    )
    start_date = models.DateField()
    end_date = models.DateField(null=True, blank=True)
    amount = models.DecimalField(
        validators=[MinValueValidator(Decimal("0.01"))], **MONEY
    )
    currency = currency_field()
    recoverable = models.BooleanField(default=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(amount__gt=0), name="draw_amount_positive"
            ),
            models.CheckConstraint(
                condition=Q(end_date__isnull=True) | Q(end_date__gte=F("start_date")),
                name="draw_end_after_start",
            ),
        ]
        indexes = [
            models.Index(
                fields=["organization", "member", "start_date"],
                name="draw_member_start",
            )
        ]
        ordering = ["start_date", "id"]

    def __str__(self) -> str:
        kind = "recoverable" if self.recoverable else "non-recoverable"
        return f"{self.amount} {self.currency} {kind} draw for {self.member}"

    def clean(self) -> None:
        super().clean()
        if self.member_id is None or self.start_date is None:
            return
        overlapping = Draw.unscoped.filter(
            organization_id=self.organization_id or self.member.organization_id,
            member_id=self.member_id,
        ).exclude(pk=self.pk)
        if self.end_date is not None:
            overlapping = overlapping.filter(start_date__lte=self.end_date)
        overlapping = overlapping.filter(
            Q(end_date__isnull=True) | Q(end_date__gte=self.start_date)
        )
        if overlapping.exists():
            raise ValidationError(
                f"{self.member} already has a draw on some of these days; "
                "end it before this one starts."
            )


class Payment(TenantModel):
    """Money a customer paid against a deal, in the deal's currency.

    Plans paid on payment release commission as these arrive. A refund is
    a negative amount.
    """

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    deal = models.ForeignKey(Deal, on_delete=models.CASCADE, related_name="payments")
    received_on = models.DateField()
    amount = models.DecimalField(**MONEY)
    currency = currency_field()
    external_source = models.CharField(max_length=40, blank=True)
    external_id = models.CharField(max_length=255, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                "organization",
                "external_source",
                "external_id",
                name="payment_external_unique",
                condition=~Q(external_id=""),
            ),
        ]
        indexes = [
            models.Index(
                fields=["organization", "deal", "received_on"], name="payment_deal_date"
            )
        ]
        ordering = ["received_on", "id"]

    def __str__(self) -> str:
        return f"{self.amount} {self.currency} on {self.received_on}"

    def clean(self) -> None:
        super().clean()
        if self.deal_id is None:
            return
        deal_currency = self.deal.currency or self.deal.organization.currency
        if self.currency != deal_currency:
            raise ValidationError(
                {
                    "currency": f"The deal is in {deal_currency}; record its "
                    f"payments in {deal_currency}, not {self.currency}."
                }
            )


class CalculationRun(TenantModel):
    """One calculation of the statements of a period, with its status and progress.

    The Celery task that calculates reads and updates this row, so the
    statements page can show a progress bar while the run is going.
    """

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    ACTIVE = (Status.QUEUED, Status.RUNNING)

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    period_start = models.DateField()
    period_end = models.DateField(help_text="The first day after the period.")
    status = models.CharField(max_length=10, choices=Status, default=Status.QUEUED)
    progress = models.PositiveSmallIntegerField(
        default=0, validators=[MaxValueValidator(100)], help_text="Percent, 0 to 100."
    )
    member_count = models.PositiveIntegerField(default=0)
    calculated_count = models.PositiveIntegerField(default=0)
    locked_count = models.PositiveIntegerField(
        default=0, help_text="Approved or paid statements, which are not rewritten."
    )
    adjustment_count = models.PositiveIntegerField(default=0)
    error_count = models.PositiveIntegerField(default=0)
    # [{"member": name, "message": text}] for members whose calculation failed.
    errors = models.JSONField(default=list, blank=True)
    batch_count = models.PositiveIntegerField(
        default=0, help_text="Batches of members that the run calculates."
    )
    # The numbers of the batches stored and counted so far, from 0.
    batches_done = models.JSONField(default=list, blank=True)
    failure = models.TextField(blank=True)
    created_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(period_end__gt=F("period_start")),
                name="calculation_run_period_not_empty",
            ),
        ]
        indexes = [
            models.Index(
                fields=["organization", "period_start", "created_at"],
                name="calculation_run_period",
            )
        ]
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"Calculation of {self.period_start:%B %Y} ({self.get_status_display()})"

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE


class ApprovalRun(TenantModel):
    """One "Approve all drafts" request for a period, with its status and progress.

    ``statement_ids`` are the drafts that the requester could approve when
    they clicked, so the run approves what the page offered. The Celery task
    approves them one at a time and saves its counts every few statements,
    so the statements page can show a progress bar.
    """

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    ACTIVE = (Status.QUEUED, Status.RUNNING)

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    period_start = models.DateField()
    period_end = models.DateField(help_text="The first day after the period.")
    status = models.CharField(max_length=10, choices=Status, default=Status.QUEUED)
    progress = models.PositiveSmallIntegerField(
        default=0, validators=[MaxValueValidator(100)], help_text="Percent, 0 to 100."
    )
    requested_by = models.ForeignKey(
        Membership,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The approver: their role and reporting tree are checked again "
        "for each statement.",
    )
    actor = models.ForeignKey(
        User,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The user recorded as approver and in the audit log.",
    )
    # The primary keys of the statements to approve, in the order of the list.
    statement_ids = models.JSONField(default=list, blank=True)
    statement_count = models.PositiveIntegerField(default=0)
    processed_count = models.PositiveIntegerField(
        default=0,
        help_text="Statements of statement_ids handled so far, approved or skipped.",
    )
    approved_count = models.PositiveIntegerField(default=0)
    skipped_count = models.PositiveIntegerField(default=0)
    # [{"member": name, "message": text}] for the statements not approved.
    skipped = models.JSONField(default=list, blank=True)
    failure = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(period_end__gt=F("period_start")),
                name="approval_run_period_not_empty",
            ),
        ]
        indexes = [
            models.Index(
                fields=["organization", "period_start", "created_at"],
                name="approval_run_period",
            )
        ]
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return (
            f"Approval of {self.period_start:%B %Y} drafts "
            f"({self.get_status_display()})"
        )

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE


class Statement(TenantModel):
    """A member's stored statement for one period: its lines pay ``total``.

    A draft is rewritten by every calculation of its period. An approved or
    paid statement is locked: a later change to what the period earns goes
    to the member's next draft statement as an adjustment line.
    """

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        APPROVED = "approved", "Approved"
        PAID = "paid", "Paid"

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    member = models.ForeignKey(
        Membership, on_delete=models.PROTECT, related_name="statements"
    )
    period_start = models.DateField()
    period_end = models.DateField(help_text="The first day after the period.")
    run = models.ForeignKey(
        CalculationRun,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="statements",
        help_text="The calculation that last wrote the statement's lines.",
    )
    status = models.CharField(max_length=10, choices=Status, default=Status.DRAFT)
    total = models.DecimalField(default=Decimal("0.00"), **MONEY)
    currency = currency_field()
    notes = models.JSONField(default=list, blank=True)
    calculated_at = models.DateTimeField(null=True, blank=True)
    approved_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    approved_at = models.DateTimeField(null=True, blank=True)
    paid_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    paid_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                "organization",
                "member",
                "period_start",
                "period_end",
                name="statement_unique_per_member_period",
            ),
            models.CheckConstraint(
                condition=Q(period_end__gt=F("period_start")),
                name="statement_period_not_empty",
            ),
            models.CheckConstraint(
                condition=Q(status="draft") | Q(approved_at__isnull=False),
                name="statement_approved_has_time",
            ),
            models.CheckConstraint(
                condition=~Q(status="paid") | Q(paid_at__isnull=False),
                name="statement_paid_has_time",
            ),
        ]
        indexes = [
            models.Index(
                fields=["organization", "period_start", "status"],
                name="statement_period_status",
            )
        ]
        ordering = ["-period_start", "member_id"]

    def __str__(self) -> str:
        return f"{self.member} {self.period_label}"

    @property
    def period_label(self) -> str:
        """The period as "March 2024", or "March 2024 to May 2024" for longer ones."""
        last_month = self.period_end - dt.timedelta(days=1)
        if (last_month.year, last_month.month) == (
            self.period_start.year,
            self.period_start.month,
        ):
            return f"{self.period_start:%B %Y}"
        return f"{self.period_start:%B %Y} to {last_month:%B %Y}"

    @property
    def is_locked(self) -> bool:
        return self.status != self.Status.DRAFT


class StatementLine(TenantModel):
    """One line of a stored statement, with the sentence that explains it.

    ``kind`` is the line's source: the calculation (normal), a
    change to an approved statement (adjustment), or a person (manual, with
    a reason). ``line_type`` is the calculation's own kind of line, such as
    commission, spiff or clawback.

    Lines are the largest table: a full run of 10,000 reps with 100 deals
    each, on a plan of two components, writes two million. So PostgreSQL
    checks only the statement key on insert, and the only indexes are those
    that lookups use. The other keys stay ORM relations:

    - The organisation is the statement's organisation.
    - Components and plan versions on lines are published, and no code path
      deletes a published one. The line also keeps their names.
    - A deal keeps its index, for the updates when sync merges or deletes
      it, and the line keeps its name.
    - ``created_by`` is set on manual lines only, with a partial index.
    """

    class Kind(models.TextChoices):
        NORMAL = "normal", "Calculated"
        ADJUSTMENT = "adjustment", "Adjustment"
        MANUAL = "manual", "Manual"

    organization = organization_key(db_index=False, db_constraint=False)
    # Looked up together with its statement, so it needs no index of its own.
    public_id = models.UUIDField(default=uuid.uuid4, editable=False)
    statement = models.ForeignKey(
        Statement, on_delete=models.CASCADE, related_name="lines"
    )
    order = models.PositiveIntegerField(default=0)
    kind = models.CharField(max_length=10, choices=Kind, default=Kind.NORMAL)
    line_type = models.CharField(max_length=20, blank=True)
    component = models.ForeignKey(
        PlanComponent,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        related_name="+",
        db_constraint=False,
        db_index=False,
    )
    component_name = models.CharField(max_length=120, blank=True)
    plan_version = models.ForeignKey(
        PlanVersion,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        related_name="+",
        db_constraint=False,
        db_index=False,
    )
    plan_version_label = models.CharField(max_length=140, blank=True)
    deal = models.ForeignKey(
        Deal,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_constraint=False,
    )
    deal_name = models.CharField(max_length=255, blank=True)
    credit_date = models.DateField(null=True, blank=True)
    credit_share = models.DecimalField(
        max_digits=9,
        decimal_places=6,
        null=True,
        blank=True,
        help_text="The member's fraction of the deal, 0.6 for a 60% split.",
    )
    base_amount = models.DecimalField(null=True, blank=True, **MONEY)
    rate = models.DecimalField(max_digits=12, decimal_places=6, null=True, blank=True)
    tier = models.CharField(max_length=255, blank=True)
    explanation = models.TextField()
    amount = models.DecimalField(**MONEY)
    reason = models.TextField(
        blank=True, help_text="Why a manual line was added; required for one."
    )
    # For an adjustment line: the locked period whose change it carries.
    adjusts_period_start = models.DateField(null=True, blank=True)
    adjusts_period_end = models.DateField(null=True, blank=True)
    created_by = models.ForeignKey(
        User,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_constraint=False,
        db_index=False,
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=~Q(kind="manual") | ~Q(reason=""),
                name="statement_line_manual_has_reason",
            ),
            models.CheckConstraint(
                condition=~Q(kind="adjustment") | Q(adjusts_period_start__isnull=False),
                name="statement_line_adjustment_has_period",
            ),
        ]
        indexes = [
            models.Index(
                fields=["created_by"],
                condition=Q(created_by__isnull=False),
                name="statement_line_created_by",
            ),
        ]
        ordering = ["statement_id", "order", "id"]

    def __str__(self) -> str:
        return f"{self.explanation} ({self.amount})"

    @property
    def label(self) -> str:
        """Name the line's source: its component, else its kind of line."""
        if self.component_name:
            return self.component_name
        if self.kind == self.Kind.NORMAL and self.line_type:
            return self.line_type.replace("_", " ").capitalize()
        return self.get_kind_display()


class StatementLineBlock(TenantModel):
    """The calculated lines of a draft statement, stored together in one row.

    ``lines`` contains one array per line, in line order, with the values of
    ``compensation.line_blocks.FIELDS``. Runs recalculate drafts many times
    in a period, and a row per line cost PostgreSQL about 12 µs, so a
    draft's calculated lines take one row, which a rerun skips when its
    ``digest`` is unchanged. The draft's manual and adjustment lines are
    ``StatementLine`` rows, ordered after these.

    A line gets a row of its own once something refers to it: the statement
    is approved, or a dispute is raised on one of its lines. The block is
    then replaced by ``StatementLine`` rows with the same public ids.
    """

    organization = organization_key()
    statement = models.OneToOneField(
        Statement,
        primary_key=True,
        on_delete=models.CASCADE,
        related_name="line_block",
    )
    line_count = models.PositiveIntegerField()
    total = models.DecimalField(**MONEY)
    digest = models.BinaryField(max_length=16)
    lines = models.BinaryField()
    # The deals of the block's clawback lines, which the archived-deal
    # payouts look up.
    clawback_deal_ids = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.line_count} lines ({self.total})"


# Disputes, run snapshots and the crediting policy for reassigned leads.


class Dispute(TenantModel):
    """A rep's question about one line of their statement, answered in a thread.

    A run replaces the calculated lines of a draft statement that changed,
    so the dispute keeps a copy of the line as it was raised (``line_*``
    fields) and ``line`` becomes empty once the line is gone.
    """

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        ANSWERED = "answered", "Answered"
        RESOLVED = "resolved", "Resolved"

    class RootCause(models.TextChoices):
        DATA = "data", "CRM data"
        PLAN_WORDING = "plan_wording", "Plan wording"
        RETROACTIVE_CHANGE = "retroactive_change", "Retroactive change"
        EDGE_CASE = "edge_case", "Edge case"

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    statement = models.ForeignKey(
        Statement, on_delete=models.CASCADE, related_name="disputes"
    )
    line = models.ForeignKey(
        StatementLine,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="disputes",
    )
    line_explanation = models.TextField()
    line_amount = models.DecimalField(**MONEY)
    deal = models.ForeignKey(
        Deal, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    plan = models.ForeignKey(
        CompPlan,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="disputes",
        help_text="The plan of the disputed line, for counts by plan.",
    )
    raised_by = models.ForeignKey(
        Membership, on_delete=models.PROTECT, related_name="disputes_raised"
    )
    status = models.CharField(max_length=10, choices=Status, default=Status.OPEN)
    root_cause = models.CharField(max_length=20, choices=RootCause, blank=True)
    resolution = models.TextField(blank=True)
    resolved_by = models.ForeignKey(
        Membership,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    resolved_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=~Q(status="resolved")
                | (Q(resolved_at__isnull=False) & ~Q(root_cause="")),
                name="dispute_resolved_has_cause",
            ),
        ]
        indexes = [
            models.Index(
                fields=["organization", "status", "created_at"],
                name="dispute_status_created",
            ),
            models.Index(
                fields=["organization", "statement"], name="dispute_statement"
            ),
        ]
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"Dispute on {self.line_explanation[:60]}"

    @property
    def is_resolved(self) -> bool:
        return self.status == self.Status.RESOLVED


class DisputeMessage(TenantModel):
    """One message of a dispute's thread, by the rep or a reviewer."""

    dispute = models.ForeignKey(
        Dispute, on_delete=models.CASCADE, related_name="messages"
    )
    author = models.ForeignKey(Membership, on_delete=models.PROTECT, related_name="+")
    body = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [
            models.Index(
                fields=["organization", "dispute", "created_at"],
                name="dispute_message_thread",
            )
        ]
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.author} on dispute {self.dispute_id}"


class StatementSnapshot(TenantModel):
    """A calculation run's result for one statement, kept for comparison.

    ``deals`` has one entry per credited deal: the deal's amount, currency,
    credit date, exchange rate, the member's share, the plan version and the
    commission the deal earned. ``other_lines`` has the lines that belong to
    no deal (bonus, override, draw), keyed by kind and component.
    compensation.payout_diff writes and compares these rows.
    """

    statement = models.ForeignKey(
        Statement, on_delete=models.CASCADE, related_name="snapshots"
    )
    run = models.ForeignKey(
        CalculationRun, on_delete=models.CASCADE, related_name="snapshots"
    )
    total = models.DecimalField(**MONEY)
    currency = models.CharField(max_length=3, blank=True)
    deals = CompactJSONField(default=list)
    other_lines = CompactJSONField(default=list)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                "organization",
                "statement",
                "run",
                name="statement_snapshot_unique_per_run",
            ),
        ]
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"Snapshot of statement {self.statement_id} by run {self.run_id}"


class CreditingPolicy(TenantModel):
    """The organisation's rule for deals whose lead routing reassigned.

    The owners of a lead are the reps routing gave it to, in order: the
    first assignment, then each reassignment after a missed response SLA.
    The rule chooses who is credited with a won deal that came from such a
    lead and has no splits of its own.
    """

    class Rule(models.TextChoices):
        LAST_OWNER = "last_owner", "The last owner gets 100%"
        FIRST_OWNER = "first_owner", "The first owner gets 100%"
        SPLIT_EVEN = "split_even", "First and last owner get 50% each"
        SPLIT_SHARE = "split_share", "First owner gets the share below, last the rest"

    reassigned_lead_rule = models.CharField(
        max_length=12, choices=Rule, default=Rule.LAST_OWNER
    )
    first_owner_percent = models.DecimalField(
        max_digits=7,
        decimal_places=4,
        default=Decimal(50),
        validators=[MinValueValidator(Decimal(0)), MaxValueValidator(Decimal(100))],
        help_text="Percent of the deal for the first owner, with the share rule.",
    )
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                "organization", name="crediting_policy_one_per_org"
            ),
            models.CheckConstraint(
                condition=Q(first_owner_percent__gte=0)
                & Q(first_owner_percent__lte=100),
                name="crediting_policy_percent_range",
            ),
        ]
        verbose_name_plural = "crediting policies"

    def __str__(self) -> str:
        return self.get_reassigned_lead_rule_display()


class DealLeadLink(TenantModel):
    """The lead a deal was converted from, which crediting follows to its owners.

    A Salesforce sync links converted leads (integrations.writers_salesforce).
    NOTE: the other CRM connectors and the CSV import do not fill this yet,
    and compensation.services_crediting.deal_lead_link creates a link by hand.
    """

    deal = models.OneToOneField(Deal, on_delete=models.CASCADE, related_name="+")
    lead = models.ForeignKey(
        "activity.Lead", on_delete=models.CASCADE, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [
            models.Index(fields=["organization", "lead"], name="deal_lead_link_lead")
        ]

    def __str__(self) -> str:
        return f"deal {self.deal_id} from lead {self.lead_id}"


class DealOwnerShare(TenantModel):
    """A lead owner's recorded share of a deal under the reassigned-lead rule.

    Shares of one deal add up to 100% and ``amount`` (in the deal's
    currency) to the deal amount exactly, by the largest-remainder method.
    Crediting reads them as the deal's splits when the deal has none.
    """

    deal = models.ForeignKey(
        Deal, on_delete=models.CASCADE, related_name="owner_shares"
    )
    member = models.ForeignKey(Membership, on_delete=models.PROTECT, related_name="+")
    percent = models.DecimalField(max_digits=7, decimal_places=4)
    amount = models.DecimalField(**MONEY)
    rule = models.CharField(max_length=12, choices=CreditingPolicy.Rule)
    position = models.PositiveSmallIntegerField(
        help_text="The owner's index in the lead's owners, 0 for the first."
    )
    recorded_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                "organization", "deal", "member", name="deal_owner_share_unique"
            ),
        ]
        ordering = ["deal_id", "position", "id"]

    def __str__(self) -> str:
        return f"{self.member} {self.percent}% of deal {self.deal_id}"
