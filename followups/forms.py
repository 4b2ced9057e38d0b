"""Forms of the sequence builder and of manual enrolment.

Select boxes offer public ids, never primary keys. ``Sequence.filters``
stores primary keys, so the builder converts both ways.
"""

from __future__ import annotations

from decimal import Decimal

from django import forms
from django.core.validators import MaxValueValidator, MinValueValidator

from activity.models import Deal, Lead, Pipeline, Stage
from followups.configuration import SequenceSpec, StepSpec, template_error
from followups.models import Sequence, Step
from spm.form_errors import ValueErrorMessagesMixin
from spm.models import Membership, Team

STEPS_PREFIX = "steps"
# Deal and lead fields that a field-update step may set, as the builder
# offers them; followups.dispatch.UPDATABLE_FIELDS enforces the same list.
FIELD_CHOICES = [
    ("", "None"),
    ("name", "Deal name"),
    ("close_date", "Deal close date (YYYY-MM-DD)"),
    ("amount", "Deal amount"),
    ("status", "Lead status"),
]
# Maximum delay amount of a step, in any unit.
MAX_DELAY = 1000


class StageChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, stage: Stage) -> str:
        return f"{stage.pipeline.name}: {stage.name}"


class MemberChoiceField(forms.ModelMultipleChoiceField):
    def label_from_instance(self, member: Membership) -> str:
        return member.display_name


class SequenceForm(ValueErrorMessagesMixin, forms.Form):
    name = forms.CharField(max_length=200)
    trigger = forms.ChoiceField(choices=Sequence.Trigger.choices)
    trigger_stage = StageChoiceField(
        queryset=Stage.objects.none(),
        to_field_name="public_id",
        required=False,
        help_text="For the trigger 'Deal enters a stage'.",
    )
    trigger_days = forms.IntegerField(
        required=False,
        min_value=1,
        max_value=365,
        label="N days",
        help_text="For the two 'N days' triggers, in calendar days.",
    )
    pipeline = forms.ModelChoiceField(
        queryset=Pipeline.objects.none(),
        to_field_name="public_id",
        required=False,
        empty_label="Any pipeline",
    )
    owners = MemberChoiceField(
        queryset=Membership.objects.none(),
        to_field_name="public_id",
        required=False,
        help_text="Only deals or leads of these owners. None selected means any.",
    )
    teams = forms.ModelMultipleChoiceField(
        queryset=Team.objects.none(),
        to_field_name="public_id",
        required=False,
        help_text="Only deals or leads whose owner is in these teams.",
    )
    amount_min = forms.DecimalField(
        required=False, min_value=0, decimal_places=2, label="Deal amount from"
    )
    amount_max = forms.DecimalField(
        required=False, min_value=0, decimal_places=2, label="Deal amount up to"
    )
    is_active = forms.BooleanField(required=False, initial=True, label="Active")

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["trigger_stage"].queryset = Stage.objects.select_related(
            "pipeline"
        ).order_by("pipeline__name", "order", "name")
        self.fields["pipeline"].queryset = Pipeline.objects.order_by("name")
        self.fields["owners"].queryset = Membership.objects.filter(
            is_active=True
        ).order_by("display_name")
        self.fields["teams"].queryset = Team.objects.order_by("name")

    def clean(self) -> dict:
        data = super().clean()
        trigger = data.get("trigger")
        stage = data.get("trigger_stage")
        if trigger == Sequence.Trigger.DEAL_ENTERS_STAGE and stage is None:
            message = "Choose the stage that starts the sequence."
            self.add_error("trigger_stage", message)
        days_triggers = (
            Sequence.Trigger.NO_ACTIVITY_DAYS,
            Sequence.Trigger.MEETING_WITHOUT_NEXT_STEP_DAYS,
        )
        if trigger in days_triggers and not data.get("trigger_days"):
            self.add_error("trigger_days", "Enter N, the number of days (1 or more).")
        low, high = data.get("amount_min"), data.get("amount_max")
        if low is not None and high is not None and low > high:
            lower = self["amount_min"]
            reason = f"is less than {lower.label} ({str(lower.data).strip()})"
            self.add_error("amount_max", self.value_message("amount_max", reason))
        return data

    def filters(self) -> dict:
        """Return the cleaned filters in the stored form of ``Sequence.filters``."""
        data = self.cleaned_data
        filters: dict = {}
        if data.get("pipeline"):
            filters["pipeline"] = data["pipeline"].pk
        if data.get("owners"):
            filters["owners"] = sorted(member.pk for member in data["owners"])
        if data.get("teams"):
            filters["teams"] = sorted(team.pk for team in data["teams"])
        for key in ("amount_min", "amount_max"):
            if data.get(key) is not None:
                filters[key] = str(data[key])
        return filters


def sequence_initial(sequence: Sequence) -> dict:
    """Return the builder's initial values for a stored sequence."""
    filters = sequence.filters or {}
    initial = {
        "name": sequence.name,
        "trigger": sequence.trigger,
        "trigger_stage": sequence.trigger_stage,
        "trigger_days": sequence.trigger_days,
        "is_active": sequence.is_active,
        "pipeline": Pipeline.objects.filter(pk=filters.get("pipeline")).first()
        if filters.get("pipeline")
        else None,
        "owners": list(Membership.objects.filter(pk__in=filters.get("owners", []))),
        "teams": list(Team.objects.filter(pk__in=filters.get("teams", []))),
    }
    for key in ("amount_min", "amount_max"):
        if filters.get(key) not in (None, ""):
            initial[key] = Decimal(str(filters[key]))
    return initial


class StepForm(ValueErrorMessagesMixin, forms.Form):
    delay_amount = forms.IntegerField(
        initial=0,
        validators=[MinValueValidator(0), MaxValueValidator(MAX_DELAY)],
        label="Wait",
    )
    delay_unit = forms.ChoiceField(
        choices=Step.DelayUnit.choices,
        initial=Step.DelayUnit.BUSINESS_DAYS,
        label="Delay unit",
    )
    action = forms.ChoiceField(choices=[("", "Choose an action"), *Step.Action.choices])
    subject = forms.CharField(max_length=255, required=False)
    body = forms.CharField(widget=forms.Textarea(attrs={"rows": 4}), required=False)
    field_name = forms.ChoiceField(
        choices=FIELD_CHOICES, required=False, label="Field to update"
    )
    field_value = forms.CharField(max_length=255, required=False, label="New value")

    def __init__(self, *args, number: int, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.number = number
        # Every row has the same fields, so each gets a label naming its step.
        for name, field in self.fields.items():
            label = (field.label or name.replace("_", " ")).lower()
            field.widget.attrs["aria-label"] = f"Step {number} {label}"

    def clean(self) -> dict:
        data = super().clean()
        for field in ("subject", "body"):
            problem = template_error(data.get(field) or "")
            if problem:
                self.add_error(
                    field, f"Step {self.number}, {field}: invalid template: {problem}"
                )
        if data.get("action") == Step.Action.FIELD_UPDATE and not data.get(
            "field_name"
        ):
            self.add_error(
                "field_name", f"Step {self.number}: choose the field to update."
            )
        return data

    def spec(self) -> StepSpec:
        data = self.cleaned_data
        return StepSpec(
            delay_amount=data["delay_amount"],
            delay_unit=data["delay_unit"],
            action=data["action"],
            subject=data.get("subject") or "",
            body=data.get("body") or "",
            field_name=data.get("field_name") or "",
            field_value=data.get("field_value") or "",
        )


class BaseStepFormSet(forms.BaseFormSet):
    def get_form_kwargs(self, index: int) -> dict:
        return {"number": index + 1}

    def add_fields(self, form, index) -> None:
        super().add_fields(form, index)
        if "DELETE" in form.fields:
            attrs = form.fields["DELETE"].widget.attrs
            attrs["aria-label"] = f"Remove step {form.number}"

    def specs(self) -> tuple[StepSpec, ...]:
        """Return the stored and filled-in steps in page order, less deleted ones."""
        stored = self.initial_form_count()
        return tuple(
            form.spec()
            for index, form in enumerate(self.forms)
            if (index < stored or form.has_changed())
            and not self._should_delete_form(form)
        )


StepFormSet = forms.formset_factory(
    StepForm, formset=BaseStepFormSet, extra=1, can_delete=True, max_num=50
)


def step_initial(sequence: Sequence) -> list[dict]:
    return [
        {
            "delay_amount": step.delay_amount,
            "delay_unit": step.delay_unit,
            "action": step.action,
            "subject": step.subject,
            "body": step.body,
            "field_name": step.field_name,
            "field_value": step.field_value,
        }
        for step in sequence.steps.order_by("order")
    ]


def sequence_spec(form: SequenceForm, steps: BaseStepFormSet) -> SequenceSpec:
    """Return the builder's cleaned input as the spec that the services take."""
    data = form.cleaned_data
    stage = data.get("trigger_stage")
    uses_stage = data["trigger"] == Sequence.Trigger.DEAL_ENTERS_STAGE
    uses_days = data["trigger"] in (
        Sequence.Trigger.NO_ACTIVITY_DAYS,
        Sequence.Trigger.MEETING_WITHOUT_NEXT_STEP_DAYS,
    )
    return SequenceSpec(
        name=data["name"],
        trigger=data["trigger"],
        trigger_stage_id=stage.pk if stage and uses_stage else None,
        trigger_days=data.get("trigger_days") if uses_days else None,
        filters=form.filters(),
        is_active=data["is_active"],
        steps=steps.specs(),
    )


class EnrollForm(forms.Form):
    """Pick one open deal or one lead of the reps the viewer can see."""

    target = forms.ChoiceField(label="Deal or lead")

    def __init__(self, *args, deals: list[Deal], leads: list[Lead], **kwargs):
        super().__init__(*args, **kwargs)
        self.targets: dict[str, Deal | Lead] = {}
        deal_choices, lead_choices = [], []
        for deal in deals:
            key = f"deal:{deal.public_id}"
            self.targets[key] = deal
            label = f"{deal.name or 'Unnamed deal'} ({_owner(deal)})"
            deal_choices.append((key, label))
        for lead in leads:
            key = f"lead:{lead.public_id}"
            self.targets[key] = lead
            lead_choices.append((key, f"{_lead_label(lead)} ({_owner(lead)})"))
        self.fields["target"].choices = [
            ("", "Choose a deal or lead"),
            ("Deals", deal_choices),
            ("Leads", lead_choices),
        ]

    def clean_target(self) -> Deal | Lead:
        key = self.cleaned_data["target"]
        if key not in self.targets:
            raise forms.ValidationError(f"Deal or lead {key!r} was not found.")
        return self.targets[key]


def _owner(target: Deal | Lead) -> str:
    return target.owner.display_name if target.owner_id else "no owner"


def _lead_label(lead: Lead) -> str:
    name = f"{lead.first_name} {lead.last_name}".strip()
    return name or lead.email or lead.company or "Unnamed lead"
