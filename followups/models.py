"""Follow-up sequences: timed steps (emails, tasks, notices) run for a deal or lead.

An ``Enrollment`` puts one deal or lead in a ``Sequence``. Its
``next_due_at`` is the database's record of when the next ``Step`` runs: a
beat task picks due rows every minute (``followups.dispatch``), so no Celery
countdown has to survive hours in the broker. Each run of a step is a
``StepRun`` row, unique per (enrollment, step), so a step runs at most once
however often a task is delivered.
"""

from __future__ import annotations

import uuid

from django.core.validators import MinValueValidator
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone

from activity.models import Contact, Deal, Lead, Stage
from spm.models import Membership
from spm.tenancy import TenantModel


class Sequence(TenantModel):
    class Trigger(models.TextChoices):
        MANUAL = "manual", "Manual enrolment only"
        DEAL_ENTERS_STAGE = "deal_enters_stage", "Deal enters a stage"
        LEAD_ASSIGNED = "lead_assigned", "Lead assigned to a rep"
        NO_ACTIVITY_DAYS = "no_activity_days", "No activity for N days"
        MEETING_WITHOUT_NEXT_STEP_DAYS = (
            "meeting_without_next_step_days",
            "Meeting with no next step for N days",
        )

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(max_length=200)
    trigger = models.CharField(max_length=40, choices=Trigger, default=Trigger.MANUAL)
    trigger_stage = models.ForeignKey(
        Stage,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="The stage a deal enters, for the deal_enters_stage trigger.",
    )
    trigger_days = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text="N, in calendar days, for the two elapsed-time triggers.",
    )
    # Keys: "pipeline" (pipeline id), "owners" (membership ids), "teams" (team
    # ids), "amount_min" and "amount_max" (deal amount, as strings). A missing
    # key matches everything; followups.triggers.target_matches reads them.
    filters = models.JSONField(default=dict, blank=True)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        base_manager_name = "unscoped"
        constraints = [
            models.UniqueConstraint(
                "organization", Lower("name"), name="followup_sequence_name_unique"
            ),
            models.CheckConstraint(
                condition=~models.Q(trigger="deal_enters_stage")
                | models.Q(trigger_stage__isnull=False),
                name="followup_sequence_stage_trigger_has_stage",
            ),
            models.CheckConstraint(
                condition=~models.Q(
                    trigger__in=["no_activity_days", "meeting_without_next_step_days"]
                )
                | models.Q(trigger_days__isnull=False),
                name="followup_sequence_days_trigger_has_days",
            ),
        ]
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Step(TenantModel):
    class DelayUnit(models.TextChoices):
        BUSINESS_DAYS = "business_days", "Business days"
        BUSINESS_HOURS = "business_hours", "Business hours"
        HOURS = "hours", "Hours"
        DAYS = "days", "Calendar days"

    DELAY_UNIT_NOUNS = {
        DelayUnit.BUSINESS_DAYS: ("business day", "business days"),
        DelayUnit.BUSINESS_HOURS: ("business hour", "business hours"),
        DelayUnit.HOURS: ("hour", "hours"),
        DelayUnit.DAYS: ("calendar day", "calendar days"),
    }

    class Action(models.TextChoices):
        EMAIL = "email", "Send an email"
        TASK = "task", "Create a task for the rep"
        NOTIFY_MANAGER = "notify_manager", "Email the rep's manager"
        FIELD_UPDATE = "field_update", "Update a field"

    sequence = models.ForeignKey(
        Sequence, on_delete=models.CASCADE, related_name="steps"
    )
    order = models.PositiveSmallIntegerField(validators=[MinValueValidator(1)])
    delay_amount = models.PositiveIntegerField(
        default=0, help_text="Wait after the previous step (or the enrolment)."
    )
    delay_unit = models.CharField(
        max_length=20, choices=DelayUnit, default=DelayUnit.BUSINESS_DAYS
    )
    action = models.CharField(max_length=20, choices=Action)
    # Django templates with the merge fields first_name, company, deal and rep.
    subject = models.CharField(max_length=255, blank=True)
    body = models.TextField(blank=True)
    # field_update: the deal or lead field to set, and its new value.
    field_name = models.CharField(max_length=60, blank=True)
    field_value = models.CharField(max_length=255, blank=True)

    class Meta:
        base_manager_name = "unscoped"
        constraints = [
            models.UniqueConstraint(
                "organization", "sequence", "order", name="followup_step_order_unique"
            ),
        ]
        ordering = ["sequence_id", "order"]

    def __str__(self) -> str:
        return f"{self.sequence} step {self.order}"

    @property
    def delay_label(self) -> str:
        """Return the delay as words: "1 business day", "3 hours"."""
        singular, plural = self.DELAY_UNIT_NOUNS[self.delay_unit]
        noun = singular if self.delay_amount == 1 else plural
        return f"{self.delay_amount} {noun}"


class Enrollment(TenantModel):
    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        FINISHED = "finished", "Finished"
        EXITED = "exited", "Exited"

    class ExitReason(models.TextChoices):
        NONE = "", "None"
        REPLIED = "replied", "The contact replied"
        ACTIVITY = "activity", "Activity was logged"
        STAGE_CHANGED = "stage_changed", "The deal changed stage"
        DEAL_CLOSED = "deal_closed", "The deal was closed"
        OPTED_OUT = "opted_out", "The contact opted out"
        NO_EMAIL = "no_email", "No email address"
        MANUAL = "manual", "Removed by a user"
        STEP_FAILED = "step_failed", "A step failed"

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    sequence = models.ForeignKey(
        Sequence, on_delete=models.CASCADE, related_name="enrollments"
    )
    deal = models.ForeignKey(
        Deal, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    lead = models.ForeignKey(
        Lead, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    contact = models.ForeignKey(
        Contact, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    member = models.ForeignKey(
        Membership,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="The rep the steps act for.",
    )
    status = models.CharField(max_length=10, choices=Status, default=Status.ACTIVE)
    exit_reason = models.CharField(
        max_length=20, choices=ExitReason, default=ExitReason.NONE, blank=True
    )
    next_step = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="Order of the step to run next."
    )
    # Empty while a step is running (its StepRun is "started") and once ended.
    next_due_at = models.DateTimeField(null=True, blank=True)
    enrolled_at = models.DateTimeField(default=timezone.now)
    last_step_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    # The deal's stage at enrolment: a later change exits the enrollment.
    stage_at_enrollment = models.ForeignKey(
        Stage, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        base_manager_name = "unscoped"
        constraints = [
            models.CheckConstraint(
                condition=models.Q(deal__isnull=False, lead__isnull=True)
                | models.Q(deal__isnull=True, lead__isnull=False),
                name="followup_enrollment_one_target",
            ),
            models.UniqueConstraint(
                "organization",
                "sequence",
                "deal",
                condition=models.Q(status="active", deal__isnull=False),
                name="followup_enrollment_active_deal_unique",
            ),
            models.UniqueConstraint(
                "organization",
                "sequence",
                "lead",
                condition=models.Q(status="active", lead__isnull=False),
                name="followup_enrollment_active_lead_unique",
            ),
        ]
        indexes = [
            # The dispatcher reads the due rows of every organisation; the
            # partial index holds only active rows, so it stays small.
            models.Index(
                fields=["organization", "next_due_at"],
                condition=models.Q(status="active"),
                name="followup_enrollment_due",
            ),
            models.Index(
                fields=["organization", "sequence", "status"],
                name="followup_enrollment_status",
            ),
        ]
        ordering = ["-enrolled_at", "-id"]

    @property
    def target(self) -> Deal | Lead:
        return self.deal if self.deal_id else self.lead


class StepRun(TenantModel):
    """One run of one step for one enrollment; the unique key makes it at most one."""

    class Status(models.TextChoices):
        STARTED = "started", "Started"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    enrollment = models.ForeignKey(
        Enrollment, on_delete=models.CASCADE, related_name="runs"
    )
    step = models.ForeignKey(Step, on_delete=models.CASCADE, related_name="runs")
    status = models.CharField(max_length=10, choices=Status, default=Status.STARTED)
    started_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Set in the same transaction that follows a successful SMTP send: a run
    # with a message id has sent its email and never sends it again.
    message_id = models.CharField(max_length=255, blank=True)
    # Times the sweeper re-sent the run's task after a worker lost it.
    attempts = models.PositiveSmallIntegerField(default=0)
    error = models.TextField(blank=True)

    class Meta:
        base_manager_name = "unscoped"
        constraints = [
            models.UniqueConstraint(
                "organization", "enrollment", "step", name="followup_step_run_once"
            ),
        ]
        indexes = [
            models.Index(
                fields=["organization", "started_at"],
                condition=models.Q(status="started"),
                name="followup_step_run_started",
            ),
        ]


class OptOut(TenantModel):
    class Reason(models.TextChoices):
        UNSUBSCRIBED = "unsubscribed", "Unsubscribed"
        BOUNCED = "bounced", "Bounced"

    email = models.EmailField()
    reason = models.CharField(max_length=20, choices=Reason)
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        base_manager_name = "unscoped"
        constraints = [
            models.UniqueConstraint(
                "organization", Lower("email"), name="followup_opt_out_email_unique"
            ),
        ]


class RepDailySend(TenantModel):
    """Emails dispatched for a rep on one local calendar day, for the daily limit."""

    member = models.ForeignKey(Membership, on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    count = models.PositiveIntegerField(default=0)

    class Meta:
        base_manager_name = "unscoped"
        constraints = [
            models.UniqueConstraint(
                "organization", "member", "day", name="followup_rep_daily_send_unique"
            ),
        ]
