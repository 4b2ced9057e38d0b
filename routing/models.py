"""Lead routing: territories, pools of reps, rules, rotation state and decisions.

A published ``RuleSetVersion`` contains the ordered ``RoutingRule`` rows that
the engine (routing/engine/) evaluates top down for each lead. A rule sends
the lead to the owner of its account, to a ``Pool`` of reps, to one member,
or to the fallback queue. Each pool's ``RotationState`` row is the one the
engine locks while it picks the next rep, so concurrent workers share one
fair sequence. Every outcome is an ``Assignment``, one per lead, which also
records why each candidate rep was passed over.
"""

from __future__ import annotations

import datetime
import uuid
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone

from activity.models import Contact, Lead
from routing.engine.conditions import validate_conditions
from spm.models import Membership, User
from spm.tenancy import TenantModel

WEEKDAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


class SlaAction(models.TextChoices):
    """The action taken when a rep misses the time to first touch."""

    REASSIGN = "reassign", "Reassign to the next rep in the pool"
    ESCALATE = "escalate", "Escalate to the rep's manager"


# 30 business days of 8 hours. A longer time to first touch is no longer a
# response SLA, and the bound keeps the due time far inside the calendar.
SLA_MINUTES_MAX = 30 * 8 * 60
SLA_MINUTES_MIN_MESSAGE = "Minutes to first touch must be 1 or more, not %(value)s."
SLA_MINUTES_MAX_MESSAGE = (
    "Minutes to first touch must be at most %(limit_value)s (30 business days "
    "of 8 hours), not %(value)s."
)


def sla_minutes_validators() -> list:
    """Return the bounds of minutes to first touch, with messages naming the value."""
    return [
        MinValueValidator(1, message=SLA_MINUTES_MIN_MESSAGE),
        MaxValueValidator(SLA_MINUTES_MAX, message=SLA_MINUTES_MAX_MESSAGE),
    ]


def sla_fields() -> tuple[models.Field, models.Field]:
    """Return the two response SLA fields that pools and rules share."""
    minutes = models.PositiveIntegerField(
        "minutes to first touch",
        null=True,
        blank=True,
        validators=sla_minutes_validators(),
        help_text=(
            "Business minutes (09:00 to 17:00, Monday to Friday, in the "
            "organisation's time zone) a rep has for the first call, email or "
            f"meeting, from 1 to {SLA_MINUTES_MAX}. Empty for no SLA."
        ),
    )
    action = models.CharField(
        "on breach", max_length=8, choices=SlaAction, default=SlaAction.REASSIGN
    )
    return minutes, action


class Territory(TenantModel):
    """A named set of conditions on the lead (country, region, size, ...).

    A rule with a territory matches only leads that meet the territory's
    conditions as well as its own.
    """

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(max_length=120)
    conditions = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        base_manager_name = "unscoped"
        constraints = [
            models.UniqueConstraint(
                "organization", Lower("name"), name="territory_name_unique_per_org"
            ),
        ]
        ordering = ["name"]
        verbose_name_plural = "territories"

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs) -> None:
        self.conditions = validate_conditions(self.conditions)
        super().save(*args, **kwargs)


class Pool(TenantModel):
    """Reps who share leads by one distribution method."""

    class Method(models.TextChoices):
        ROUND_ROBIN = "round_robin", "Round robin"
        WEIGHTED = "weighted", "Weighted round robin"
        FEWEST_OPEN = "fewest_open", "Fewest open leads"
        CAPACITY = "capacity", "In proportion to daily capacity"
        VALUE_BALANCED = "value_balanced", "Balanced by expected lead value"

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(max_length=120)
    method = models.CharField(max_length=16, choices=Method, default=Method.ROUND_ROBIN)
    sla_minutes, sla_action = sla_fields()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        base_manager_name = "unscoped"
        constraints = [
            models.UniqueConstraint(
                "organization", Lower("name"), name="pool_name_unique_per_org"
            ),
        ]
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class PoolMember(TenantModel):
    """A rep's place in a pool: their share, their caps and whether they are paused.

    ``position`` orders the rotation: it breaks ties between reps who have
    waited equally long (at the start, everyone).
    """

    pool = models.ForeignKey(Pool, on_delete=models.CASCADE, related_name="members")
    member = models.ForeignKey(Membership, on_delete=models.CASCADE, related_name="+")
    position = models.PositiveIntegerField(default=0)
    weight = models.PositiveIntegerField(
        default=1,
        validators=[MinValueValidator(1)],
        help_text="Share of the leads in a weighted pool, relative to the others.",
    )
    cap_open = models.PositiveIntegerField(
        "open-lead cap",
        null=True,
        blank=True,
        help_text="Skip the rep while they own this many open leads or more.",
    )
    cap_per_day = models.PositiveIntegerField(
        "daily cap",
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text=(
            "Leads this pool may give the rep per day, in the organisation's "
            "time zone. A capacity pool shares leads in proportion to it."
        ),
    )
    paused = models.BooleanField(default=False)

    class Meta:
        base_manager_name = "unscoped"
        constraints = [
            models.UniqueConstraint(
                "organization", "pool", "member", name="pool_member_unique"
            ),
            models.CheckConstraint(
                condition=models.Q(weight__gte=1), name="pool_member_weight_positive"
            ),
        ]
        ordering = ["pool_id", "position", "id"]

    def __str__(self) -> str:
        return f"{self.member} in {self.pool}"


def default_working_days() -> list[int]:
    return [1, 2, 3, 4, 5]


class WorkingHours(TenantModel):
    """The hours in which a rep takes leads from pools, in their own time zone.

    A rep without a row takes pool leads at any hour. ``days`` lists ISO
    weekdays (1 is Monday). The hours are ``[start, end)`` on each of those
    days, so 09:00 to 17:00 takes a lead at 16:59 and not at 17:00.
    """

    member = models.OneToOneField(
        Membership, on_delete=models.CASCADE, related_name="working_hours"
    )
    time_zone = models.CharField(max_length=64)
    days = models.JSONField(default=default_working_days)
    start = models.TimeField(default=datetime.time(9, 0))
    end = models.TimeField(default=datetime.time(17, 0))

    class Meta:
        base_manager_name = "unscoped"
        verbose_name_plural = "working hours"
        constraints = [
            models.CheckConstraint(
                condition=models.Q(start__lt=models.F("end")),
                name="working_hours_start_before_end",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.member}: {self.describe()}"

    def clean(self) -> None:
        super().clean()
        try:
            ZoneInfo(self.time_zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValidationError(
                {"time_zone": f"Unknown time zone {self.time_zone!r}."}
            ) from None
        if not self.days or any(day not in range(1, 8) for day in self.days):
            raise ValidationError(
                {"days": f"Days must be ISO weekdays 1 to 7, not {self.days!r}."}
            )
        if self.start >= self.end:
            raise ValidationError({"end": "The end must be after the start."})

    def describe(self) -> str:
        days = ", ".join(WEEKDAY_NAMES[day - 1] for day in sorted(self.days))
        return f"{days} {self.start:%H:%M}-{self.end:%H:%M} {self.time_zone}"

    def is_open_at(self, moment: datetime.datetime) -> bool:
        """Return whether ``moment`` falls in these hours, in the rep's time zone."""
        local = moment.astimezone(ZoneInfo(self.time_zone))
        return local.isoweekday() in self.days and self.start <= local.time() < self.end


class RuleSetVersion(TenantModel):
    """A published, numbered set of routing rules. The highest number is live.

    A version is never edited once published: a change publishes the next
    number, so every decision names the exact rules that made it.
    """

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    number = models.PositiveIntegerField()
    published_at = models.DateTimeField(default=timezone.now)
    published_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    note = models.CharField(max_length=200, blank=True)

    class Meta:
        base_manager_name = "unscoped"
        constraints = [
            models.UniqueConstraint(
                "organization", "number", name="rule_set_version_unique"
            ),
        ]
        ordering = ["-number"]

    def __str__(self) -> str:
        return f"version {self.number}"


class RoutingRule(TenantModel):
    """One rule of a version: when the conditions match, take the action.

    ``conditions`` is a list of ``{"field", "operator", "value"}`` objects,
    all of which must match (routing/engine/conditions.py validates and
    normalises them on save). The target of the action is ``pool`` for
    "pool" and ``member`` for "member"; the other actions take none.
    """

    class Action(models.TextChoices):
        ACCOUNT_OWNER = "account_owner", "Owner of the matching account"
        POOL = "pool", "Pool"
        MEMBER = "member", "Member"
        FALLBACK = "fallback", "Fallback queue"

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    version = models.ForeignKey(
        RuleSetVersion, on_delete=models.CASCADE, related_name="rules"
    )
    order = models.PositiveIntegerField()
    name = models.CharField(max_length=120)
    territory = models.ForeignKey(
        Territory, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    conditions = models.JSONField(default=list, blank=True)
    action = models.CharField(max_length=13, choices=Action)
    pool = models.ForeignKey(
        Pool, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    member = models.ForeignKey(
        Membership, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # The rule's SLA, when set, wins over the pool's.
    sla_minutes, sla_action = sla_fields()

    class Meta:
        base_manager_name = "unscoped"
        constraints = [
            models.UniqueConstraint(
                "organization", "version", "order", name="routing_rule_order_unique"
            ),
            models.CheckConstraint(
                condition=(
                    models.Q(action="pool", pool__isnull=False, member__isnull=True)
                    | models.Q(action="member", member__isnull=False, pool__isnull=True)
                    | (
                        models.Q(action__in=["account_owner", "fallback"])
                        & models.Q(pool__isnull=True, member__isnull=True)
                    )
                ),
                name="routing_rule_target_matches_action",
            ),
        ]
        ordering = ["version_id", "order"]

    def __str__(self) -> str:
        return f"{self.order}. {self.name}"

    def clean(self) -> None:
        super().clean()
        if self.action == self.Action.POOL and self.pool_id is None:
            raise ValidationError({"pool": "A pool rule needs a pool."})
        if self.action == self.Action.MEMBER and self.member_id is None:
            raise ValidationError({"member": "A member rule needs a member."})

    def save(self, *args, **kwargs) -> None:
        self.conditions = validate_conditions(self.conditions)
        super().save(*args, **kwargs)


class RotationState(TenantModel):
    """The state of a pool's rotation. Routing locks this row to pick a rep.

    ``counters`` maps each pool member id (as a string) to its rotation
    values: ``turn`` (the ``turns`` number of the member's last lead, 0 for
    none yet), ``current`` (the smooth weighted round-robin score) and
    ``day``/``today`` (the organisation-local date and the leads given on it).
    """

    pool = models.OneToOneField(Pool, on_delete=models.CASCADE, related_name="state")
    turns = models.PositiveBigIntegerField(
        default=0, help_text="Leads this pool has assigned."
    )
    last_member = models.ForeignKey(
        PoolMember, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    counters = models.JSONField(default=dict, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        base_manager_name = "unscoped"


class Assignment(TenantModel):
    """The routing decision of one lead: who got it, by which rule, and why.

    The one-to-one key on the lead makes a second decision for the same lead
    impossible, whichever worker or sweeper tries. ``candidates`` lists each
    rep considered, in order, with the reason they were skipped (empty for
    the one chosen). ``trace`` lists each rule tried and why it did or did
    not apply.
    """

    class Outcome(models.TextChoices):
        ASSIGNED = "assigned", "Assigned"
        QUEUED = "queued", "Fallback queue"

    class Via(models.TextChoices):
        TASK = "task", "Routing task"
        SWEEPER = "sweeper", "Sweeper"

    lead = models.OneToOneField(Lead, on_delete=models.CASCADE, related_name="+")
    outcome = models.CharField(max_length=8, choices=Outcome)
    member = models.ForeignKey(
        Membership, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    version = models.ForeignKey(
        RuleSetVersion,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    rule = models.ForeignKey(
        RoutingRule, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    pool = models.ForeignKey(
        Pool, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    method = models.CharField(max_length=16, blank=True)
    reason = models.CharField(max_length=255, blank=True)
    candidates = models.JSONField(default=list, blank=True)
    trace = models.JSONField(default=list, blank=True)
    received_at = models.DateTimeField()
    routed_at = models.DateTimeField()
    via = models.CharField(max_length=8, choices=Via, default=Via.TASK)

    class Meta:
        base_manager_name = "unscoped"
        indexes = [
            models.Index(
                fields=["organization", "member", "routed_at"],
                name="assignment_member_routed",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.lead_id} -> {self.member_id or 'fallback queue'}"

    @property
    def latency_ms(self) -> float:
        """Milliseconds from intake to the decision."""
        return (self.routed_at - self.received_at).total_seconds() * 1000


class ResponseTimer(TenantModel):
    """The time one owner of a lead has for the first touch, and what came of it.

    A timer starts when a rep gets the lead with a response SLA. The sweeper
    (``routing.sla.response_timers_sweep``) closes it at ``due_at``: met when
    the rep logged a call, email or meeting on the lead by then, breached
    otherwise. A breach reassigns the lead, which starts the next owner's
    timer, or escalates it to the rep's manager. The timers of a lead are
    therefore the history of its owners.
    """

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        MET = "met", "Met"
        BREACHED = "breached", "Breached"
        # A manager gave the lead to someone else before the timer was due.
        ENDED = "ended", "Ended by reassignment"

    class Handoff(models.TextChoices):
        NONE = "", "None"
        REASSIGNED = "reassigned", "Reassigned"
        ESCALATED = "escalated", "Escalated"

    lead = models.ForeignKey(Lead, on_delete=models.CASCADE, related_name="+")
    member = models.ForeignKey(Membership, on_delete=models.CASCADE, related_name="+")
    assigned_at = models.DateTimeField()
    due_at = models.DateTimeField()
    minutes = models.PositiveIntegerField()
    on_breach = models.CharField(max_length=8, choices=SlaAction)
    rule = models.ForeignKey(
        RoutingRule, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    pool = models.ForeignKey(
        Pool, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    status = models.CharField(max_length=8, choices=Status, default=Status.OPEN)
    first_touch_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    handed_to = models.ForeignKey(
        Membership,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The rep who got the lead, or the manager it was escalated to.",
    )
    handoff = models.CharField(max_length=10, choices=Handoff, blank=True)
    outcome = models.CharField(max_length=255, blank=True)

    class Meta:
        base_manager_name = "unscoped"
        constraints = [
            models.UniqueConstraint(
                "organization",
                "lead",
                condition=models.Q(status="open"),
                name="response_timer_one_open_per_lead",
            ),
        ]
        indexes = [
            # The sweeper reads the open timers of every organisation by due time.
            models.Index(
                fields=["due_at"],
                condition=models.Q(status="open"),
                name="response_timer_open_due",
            ),
            models.Index(
                fields=["organization", "lead", "assigned_at"],
                name="response_timer_lead",
            ),
        ]
        ordering = ["assigned_at", "id"]

    def __str__(self) -> str:
        return f"{self.lead_id}: {self.member_id} due {self.due_at:%Y-%m-%d %H:%M}"


class Reassignment(TenantModel):
    """A manager's or admin's change of a lead's owner, by hand.

    ``from_member`` is empty for a lead taken from the fallback queue. With
    the routing decision and the response timers, these rows are the lead's
    owner history that crediting reads.
    """

    lead = models.ForeignKey(Lead, on_delete=models.CASCADE, related_name="+")
    from_member = models.ForeignKey(
        Membership, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    to_member = models.ForeignKey(
        Membership, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    by = models.ForeignKey(
        Membership, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    assigned_at = models.DateTimeField()
    reason = models.CharField(max_length=255, blank=True)

    class Meta:
        base_manager_name = "unscoped"
        indexes = [
            models.Index(
                fields=["organization", "lead", "assigned_at"],
                name="reassignment_lead",
            ),
        ]
        ordering = ["assigned_at", "id"]

    def __str__(self) -> str:
        return f"{self.lead_id}: {self.from_member_id} -> {self.to_member_id}"


class IntakeRequest(TenantModel):
    """A lead intake request made with an Idempotency-Key, and its response.

    The unique key per organisation is what makes a retry, even one racing
    the first request, return the first response instead of a second lead.
    """

    key = models.CharField(max_length=255)
    request_hash = models.CharField(
        max_length=64, help_text="SHA-256 of the request body, to detect key reuse."
    )
    lead = models.ForeignKey(Lead, on_delete=models.CASCADE, related_name="+")
    response_status = models.PositiveSmallIntegerField()
    response_body = models.JSONField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        base_manager_name = "unscoped"
        constraints = [
            models.UniqueConstraint(
                "organization", "key", name="intake_request_key_unique"
            ),
        ]


# Qualification ----------------------------------------------------------------


# Bounds of a rule's points and of the score thresholds. A score is the sum
# of the points of the active rules, so it fits the 32-bit integer columns
# (LeadQualification.score, Lead.lead_score) for up to about two million
# rules at the maximum.
POINTS_MIN = -1000
POINTS_MAX = 1000
POINTS_MIN_MESSAGE = "Points must be %(limit_value)s or more, not %(value)s."
POINTS_MAX_MESSAGE = "Points must be %(limit_value)s or less, not %(value)s."
THRESHOLD_MAX = 100_000


def threshold_messages(label: str) -> dict[str, str]:
    """Return the messages of a threshold out of bounds, by validator code."""
    return {
        "min_value": f"{label} must be 0 or more, not %(value)s.",
        "max_value": f"{label} must be %(limit_value)s or less, not %(value)s.",
    }


def threshold_validators(label: str) -> list:
    """Return the bounds of one score threshold, with messages naming ``label``."""
    messages = threshold_messages(label)
    return [
        MinValueValidator(0, message=messages["min_value"]),
        MaxValueValidator(THRESHOLD_MAX, message=messages["max_value"]),
    ]


class ScoringRule(TenantModel):
    """A point rule, or a disqualification rule, on one lead field.

    ``field``, ``operator`` and ``value`` form one condition of the routing
    condition language (routing/engine/conditions.py). A fit or engagement
    rule adds ``points`` (negative allowed) to a lead that meets it; a
    disqualify rule keeps such a lead out of routing, with the rule's name
    as the reason.
    """

    class Kind(models.TextChoices):
        FIT = "fit", "Fit"
        ENGAGEMENT = "engagement", "Engagement"
        DISQUALIFY = "disqualify", "Disqualify"

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(max_length=120)
    kind = models.CharField(max_length=10, choices=Kind, default=Kind.FIT)
    field = models.CharField(max_length=80)
    operator = models.CharField(max_length=10)
    value = models.JSONField()
    points = models.IntegerField(
        default=0,
        validators=[
            MinValueValidator(POINTS_MIN, message=POINTS_MIN_MESSAGE),
            MaxValueValidator(POINTS_MAX, message=POINTS_MAX_MESSAGE),
        ],
    )
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        base_manager_name = "unscoped"
        ordering = ["kind", "name", "id"]

    def __str__(self) -> str:
        return self.name

    @property
    def condition(self) -> dict:
        return {"field": self.field, "operator": self.operator, "value": self.value}

    def save(self, *args, **kwargs) -> None:
        (condition,) = validate_conditions([self.condition])
        self.field, self.operator, self.value = (
            condition["field"],
            condition["operator"],
            condition["value"],
        )
        super().save(*args, **kwargs)


class QualificationSettings(TenantModel):
    """An organisation's score thresholds, duplicate window and competitor domains.

    A score at or above a threshold is on the qualified side of it.
    """

    mql_threshold = models.IntegerField(
        "marketing-qualified at",
        default=50,
        validators=threshold_validators("Marketing-qualified at"),
    )
    sql_threshold = models.IntegerField(
        "sales-qualified at",
        default=80,
        validators=threshold_validators("Sales-qualified at"),
    )
    duplicate_window_days = models.PositiveIntegerField(default=90)
    competitor_domains = models.JSONField(default=list, blank=True)

    class Meta:
        base_manager_name = "unscoped"
        constraints = [
            models.UniqueConstraint(
                "organization", name="qualification_settings_one_per_org"
            ),
        ]

    def clean(self) -> None:
        super().clean()
        mql, sql = self.mql_threshold, self.sql_threshold
        if mql is not None and sql is not None and sql < mql:
            raise ValidationError(
                {
                    "sql_threshold": (
                        f"The sales-qualified score ({sql}) must be at least "
                        f"the marketing-qualified score ({mql})."
                    )
                }
            )


class LeadQualification(TenantModel):
    """A received lead's score with its parts, its status and why.

    ``parts`` lists each rule that added points:
    ``{"rule", "field", "value", "points"}``. ``intake`` keeps the fields as
    received, so later edits of the lead never change what a model learns
    from. ``email_key`` and ``phone_key`` are the forms that duplicates are
    matched on: the lowercased address, and the digits of the number with a
    leading "+" kept.
    """

    class Status(models.TextChoices):
        NEW = "new", "New"
        MQL = "mql", "Marketing-qualified"
        SQL = "sql", "Sales-qualified"
        DISQUALIFIED = "disqualified", "Disqualified"

    lead = models.OneToOneField(
        Lead, on_delete=models.CASCADE, related_name="qualification"
    )
    score = models.IntegerField(default=0)
    fit = models.IntegerField(default=0)
    engagement = models.IntegerField(default=0)
    parts = models.JSONField(default=list, blank=True)
    status = models.CharField(max_length=12, choices=Status, default=Status.NEW)
    reason = models.CharField(max_length=255, blank=True)
    customer_account = models.ForeignKey(
        "activity.Account",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Customer account whose owner gets the lead.",
    )
    known_contact = models.ForeignKey(
        Contact,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The existing contact with the lead's email, whose owner gets it.",
    )
    email_key = models.CharField(max_length=254, blank=True)
    phone_key = models.CharField(max_length=40, blank=True)
    intake = models.JSONField(default=dict, blank=True)
    model_version = models.PositiveIntegerField(null=True, blank=True)
    predicted_score = models.FloatField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        base_manager_name = "unscoped"
        indexes = [
            models.Index(fields=["organization", "phone_key"], name="lead_qual_phone"),
        ]


class LeadSubmission(TenantModel):
    """A later submission of a lead that intake merged into the existing lead."""

    lead = models.ForeignKey(Lead, on_delete=models.CASCADE, related_name="+")
    fields = models.JSONField(default=dict)
    source = models.CharField(max_length=120, blank=True)
    matched_by = models.CharField(max_length=8)
    received_at = models.DateTimeField(default=timezone.now)

    class Meta:
        base_manager_name = "unscoped"
        ordering = ["received_at", "id"]


# Predictive score -------------------------------------------------------------


class LeadModel(TenantModel):
    """A trained predictive lead-score model, its test report and its status.

    ``version`` counts up per organisation. At most one model per
    organisation is active. A new model becomes active when its test AUC
    is at least the active model's AUC on the same test split, or when the
    active model cannot be loaded, and the one it replaces is retired.
    Otherwise the new model is kept as rejected, with the comparison in
    ``reason``. ``artifact`` is the pickled
    ``routing.predictive.TrainedModel``, written by this application only.
    """

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        REJECTED = "rejected", "Rejected"
        RETIRED = "retired", "Retired"

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    version = models.PositiveIntegerField()
    status = models.CharField(max_length=8, choices=Status)
    reason = models.TextField(blank=True)
    trained_at = models.DateTimeField(default=timezone.now)
    trained_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    features = models.JSONField(
        default=list, help_text="Intake fields the model reads, in order."
    )
    excluded_fields = models.JSONField(
        default=list,
        blank=True,
        help_text='Intake fields left out, as {"field", "reason"} objects.',
    )
    training_rows = models.PositiveIntegerField()
    test_rows = models.PositiveIntegerField()
    converted_rows = models.PositiveIntegerField(
        help_text="Converted leads among the training and test rows."
    )
    auc = models.FloatField(help_text="ROC AUC on the test split.")
    compared_auc = models.FloatField(
        null=True,
        blank=True,
        help_text="ROC AUC of the model active at training time, on the same split.",
    )
    calibration = models.JSONField(
        default=list,
        help_text='Test split by decile: {"decile", "count", "predicted", "observed"}.',
    )
    importance = models.JSONField(
        default=list,
        help_text='Drop in test AUC when a field is shuffled: {"field", "drop"}.',
    )
    artifact = models.BinaryField()

    class Meta:
        base_manager_name = "unscoped"
        constraints = [
            models.UniqueConstraint(
                "organization", "version", name="lead_model_version_unique"
            ),
            models.UniqueConstraint(
                "organization",
                condition=models.Q(status="active"),
                name="lead_model_one_active_per_org",
            ),
        ]
        ordering = ["-version"]

    def __str__(self) -> str:
        return f"model version {self.version}"


class ConfigVersion(models.Model):
    """The version of an organisation's routing configuration, moved by triggers.

    PostgreSQL triggers on every table that routing reads its configuration
    from set ``version`` to the next value of a sequence on each insert,
    update and delete (migration 0007). Values are never reused, also after a
    rollback, so a version names one state of the configuration.
    routing/config_cache.py keeps the configuration in memory per version.
    The table holds only numbers, so it is shared by all organisations and
    has no foreign key: a trigger may still fire while an organisation's
    rows are deleted.
    """

    organization_id = models.BigIntegerField(primary_key=True)
    version = models.BigIntegerField()

    def __str__(self) -> str:
        return f"organisation {self.organization_id}: version {self.version}"
