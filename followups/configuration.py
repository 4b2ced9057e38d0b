"""Create and edit sequences with their steps, writing each change to the audit log.

The builder page sends the whole sequence: its settings and its steps in
order. Steps are matched to the stored ones by position, so step 2 stays
step 2 when its text changes, and an active enrolment waiting for step 2
runs the edited step. Steps past the new last one are deleted with their
runs, and enrolments waiting for them finish at their next dispatch.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from activity.models import Deal, Lead
from followups.dispatch import UPDATABLE_FIELDS
from followups.messages import MergeTemplateError, merge_template
from followups.models import Sequence, Step
from spm.models import Organization, User
from spm.services import audit_log_write


@dataclass(frozen=True)
class StepSpec:
    """One step as the builder sends it; ``order`` comes from its position."""

    delay_amount: int
    delay_unit: str
    action: str
    subject: str = ""
    body: str = ""
    field_name: str = ""
    field_value: str = ""


@dataclass(frozen=True)
class SequenceSpec:
    name: str
    trigger: str
    trigger_stage_id: int | None
    trigger_days: int | None
    filters: dict
    is_active: bool
    steps: tuple[StepSpec, ...]


def template_error(text: str) -> str:
    """Return why ``text`` is not a valid merge template, or "" when it is."""
    try:
        merge_template(text)
    except MergeTemplateError as error:
        return str(error)
    return ""


def _validate(spec: SequenceSpec) -> None:
    """Raise ValidationError naming the field, and the step, of each problem."""
    errors: dict[str, list[str]] = {}
    triggers = Sequence.Trigger
    if spec.trigger == triggers.DEAL_ENTERS_STAGE and spec.trigger_stage_id is None:
        errors["trigger_stage"] = ["Choose the stage that starts the sequence."]
    days_triggers = (triggers.NO_ACTIVITY_DAYS, triggers.MEETING_WITHOUT_NEXT_STEP_DAYS)
    if spec.trigger in days_triggers and not spec.trigger_days:
        errors["trigger_days"] = ["Enter N, the number of days (1 or more)."]
    if not spec.steps:
        errors.setdefault("__all__", []).append("Add at least one step.")
    for order, step in enumerate(spec.steps, start=1):
        problems = [
            f"{field}: invalid template: {template_error(getattr(step, field))}"
            for field in ("subject", "body")
            if template_error(getattr(step, field))
        ]
        if step.action == Step.Action.EMAIL and not step.subject.strip():
            problems.append("subject: an email step needs a subject.")
        if step.action == Step.Action.FIELD_UPDATE:
            problems += _field_update_problems(spec.trigger, step)
        errors.setdefault("__all__", []).extend(
            f"Step {order}, {problem}" for problem in problems
        )
    errors = {key: messages for key, messages in errors.items() if messages}
    if errors:
        raise ValidationError(errors)


def _targets_of(trigger: str) -> list[type[Deal] | type[Lead]]:
    """Return the models a sequence with ``trigger`` may enrol."""
    if trigger == Sequence.Trigger.LEAD_ASSIGNED:
        return [Lead]
    if trigger == Sequence.Trigger.MANUAL:
        return [Deal, Lead]
    return [Deal]


def _field_update_problem(model: type[Deal] | type[Lead], step: StepSpec) -> str:
    kind = model.__name__.lower()
    allowed = sorted(UPDATABLE_FIELDS[model])
    if step.field_name not in allowed:
        return (
            f"field name: {step.field_name!r} cannot be set on a {kind}; "
            f"choose one of {', '.join(allowed)}."
        )
    try:
        # clean() checks choices, blank values and validators, not only the type.
        value = model._meta.get_field(step.field_name).clean(step.field_value, None)
    except ValidationError as error:
        return (
            f"field value: {step.field_value!r} is not a valid {kind} "
            f"{step.field_name}: {' '.join(error.messages)}"
        )
    if step.field_name == "name" and not str(value or "").strip():
        return "field value: a deal name cannot be empty."
    if step.field_name == "amount" and value is not None and value < 0:
        return (
            f"field value: {step.field_value!r} is not a valid deal amount: "
            "amounts are not negative."
        )
    return ""


def _field_update_problems(trigger: str, step: StepSpec) -> list[str]:
    """Return what is wrong with a field update, unless one target model takes it.

    A manual sequence may enrol deals and leads, so its field update needs to
    suit one of them. NOTE: such a step fails when it runs on the other kind.
    """
    problems = [_field_update_problem(model, step) for model in _targets_of(trigger)]
    return [] if "" in problems else problems


def _state(sequence: Sequence) -> dict:
    """Return the audited state of a sequence and its steps."""
    return {
        "name": sequence.name,
        "trigger": sequence.trigger,
        "trigger_stage": sequence.trigger_stage_id,
        "trigger_days": sequence.trigger_days,
        "filters": sequence.filters,
        "is_active": sequence.is_active,
        "steps": [
            {"order": step.order, **asdict(_spec_of(step))}
            for step in sequence.steps.order_by("order")
        ],
    }


def _spec_of(step: Step) -> StepSpec:
    return StepSpec(
        delay_amount=step.delay_amount,
        delay_unit=step.delay_unit,
        action=step.action,
        subject=step.subject,
        body=step.body,
        field_name=step.field_name,
        field_value=step.field_value,
    )


def _apply(sequence: Sequence, spec: SequenceSpec) -> None:
    sequence.name = spec.name.strip()
    sequence.trigger = spec.trigger
    sequence.trigger_stage_id = spec.trigger_stage_id
    sequence.trigger_days = spec.trigger_days
    sequence.filters = spec.filters
    sequence.is_active = spec.is_active
    try:
        with transaction.atomic():
            sequence.save()
    except IntegrityError:
        raise ValidationError(
            {"name": [f"A sequence named {sequence.name!r} already exists."]}
        ) from None


def _save_steps(sequence: Sequence, steps: tuple[StepSpec, ...]) -> None:
    """Make the stored steps match ``steps``, position by position."""
    stored = {step.order: step for step in sequence.steps.all()}
    for order, spec in enumerate(steps, start=1):
        step = stored.pop(order, None) or Step(
            organization_id=sequence.organization_id, sequence=sequence, order=order
        )
        for name, value in asdict(spec).items():
            setattr(step, name, value)
        step.save()
    if stored:
        Step.objects.filter(pk__in=[step.pk for step in stored.values()]).delete()


@transaction.atomic
def sequence_create(
    *, organization: Organization, actor: User | None, spec: SequenceSpec
) -> Sequence:
    """Create a sequence with its steps, or raise ValidationError and write nothing."""
    _validate(spec)
    sequence = Sequence(organization=organization)
    _apply(sequence, spec)
    _save_steps(sequence, spec.steps)
    audit_log_write(
        organization=organization,
        actor=actor,
        action="followups.sequence.create",
        obj=sequence,
        new=_state(sequence),
    )
    return sequence


@transaction.atomic
def sequence_update(
    *, sequence: Sequence, actor: User | None, spec: SequenceSpec
) -> Sequence:
    """Replace a sequence's settings and steps, or raise ValidationError."""
    _validate(spec)
    sequence = Sequence.objects.select_for_update().get(pk=sequence.pk)
    old = _state(sequence)
    _apply(sequence, spec)
    _save_steps(sequence, spec.steps)
    audit_log_write(
        organization=sequence.organization,
        actor=actor,
        action="followups.sequence.update",
        obj=sequence,
        old=old,
        new=_state(sequence),
    )
    return sequence
