"""Forms of the routing configuration pages: territories, pools, rules, test lead.

Conditions are typed in two ways. A territory has one condition per row of
a small formset (field, operator, value). A rule in the rule-set editor has
a text box with one condition per line, such as ``country in DE, AT`` or
``company_size range 200..1000``, because a formset of conditions inside
each rule row would be hard to use. Both name the row or line of an
invalid condition.

Select boxes offer public ids, never primary keys, and take their choices
from one ``RuleOptions`` load, so a page costs the same queries whatever
the number of rules.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal

from django import forms
from django.core.exceptions import ValidationError
from django.db.models import Q

from routing.configuration import RuleSpec
from routing.engine.conditions import OPERATORS, validate_conditions
from routing.models import (
    SLA_MINUTES_MAX,
    SLA_MINUTES_MAX_MESSAGE,
    SLA_MINUTES_MIN_MESSAGE,
    WEEKDAY_NAMES,
    Pool,
    PoolMember,
    RoutingRule,
    SlaAction,
    Territory,
    WorkingHours,
)
from routing.qualification_forms import parse_value, value_text
from spm.models import Membership


def _condition_message(error: ValidationError) -> str:
    """Return the reason of a one-condition validation error, without its number."""
    messages = error.message_dict.get("conditions", error.messages)
    return " ".join(message.removeprefix("Condition 1: ") for message in messages)


def validate_one_condition(field: str, operator: str, text: str) -> dict:
    """Return one condition in its stored form, or raise ValidationError.

    ``text`` is the value as typed: comma-separated for "in", ``min..max``
    for "range".
    """
    condition = {
        "field": field,
        "operator": operator,
        "value": parse_value(operator, text),
    }
    try:
        (stored,) = validate_conditions([condition])
    except ValidationError as error:
        raise ValidationError(_condition_message(error)) from None
    return stored


def condition_line(condition: dict) -> str:
    """Return a stored condition as one line of the rule editor."""
    operator = condition["operator"]
    return f"{condition['field']} {operator} {value_text(operator, condition['value'])}"


def parse_condition_lines(text: str) -> list[dict]:
    """Return the conditions typed one per line, or raise naming each bad line."""
    conditions, errors = [], []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split(None, 2)
        if len(parts) < 3:
            errors.append(
                f'Line {number}: write "field operator value", such as '
                '"country in DE, AT".'
            )
            continue
        field, operator, value = parts
        try:
            conditions.append(validate_one_condition(field, operator.lower(), value))
        except ValidationError as error:
            errors.append(f"Line {number}: {' '.join(error.messages)}")
    if errors:
        raise ValidationError(errors)
    return conditions


# Territories ------------------------------------------------------------------


class TerritoryForm(forms.Form):
    name = forms.CharField(max_length=120)


class ConditionRowForm(forms.Form):
    field = forms.CharField(
        max_length=80,
        required=False,
        widget=forms.TextInput(
            attrs={"list": "condition-fields", "aria-label": "Field"}
        ),
    )
    operator = forms.ChoiceField(
        choices=[("", "—")] + [(name, name) for name in OPERATORS],
        required=False,
        widget=forms.Select(attrs={"aria-label": "Operator"}),
    )
    value = forms.CharField(
        max_length=500,
        required=False,
        widget=forms.TextInput(attrs={"aria-label": "Value"}),
    )


class BaseConditionRowFormSet(forms.BaseFormSet):
    """Condition rows. Empty rows are skipped, and an error names its row number."""

    def clean(self) -> None:
        self.conditions: list[dict] = []
        for number, form in enumerate(self.forms, start=1):
            if not form.is_valid():
                continue
            data = form.cleaned_data
            field = (data.get("field") or "").strip()
            operator = data.get("operator") or ""
            value = (data.get("value") or "").strip()
            if not (field or operator or value):
                continue
            if not field or not operator:
                form.add_error(None, f"Row {number}: choose a field and an operator.")
                continue
            try:
                self.conditions.append(validate_one_condition(field, operator, value))
            except ValidationError as error:
                form.add_error(None, f"Row {number}: {' '.join(error.messages)}")
        if any(form.errors for form in self.forms):
            raise ValidationError("Correct the condition rows marked below.")


ConditionRowFormSet = forms.formset_factory(
    ConditionRowForm, formset=BaseConditionRowFormSet, extra=3
)


def condition_rows(conditions: list[dict]) -> list[dict]:
    """Return stored conditions as the initial data of the condition rows."""
    return [
        {
            "field": condition["field"],
            "operator": condition["operator"],
            "value": value_text(condition["operator"], condition["value"]),
        }
        for condition in conditions
    ]


# Pools ------------------------------------------------------------------------


SLA_MINUTES_HELP = (
    "Business minutes (09:00 to 17:00, Monday to Friday) for the first call, "
    f"email or meeting, from 1 to {SLA_MINUTES_MAX}. Empty for no SLA."
)


def sla_minutes_field(label: str, help_text: str) -> forms.IntegerField:
    """Return the minutes-to-first-touch box, with the model's bounds and messages."""
    return forms.IntegerField(
        label=label,
        min_value=1,
        max_value=SLA_MINUTES_MAX,
        required=False,
        help_text=help_text,
        error_messages={
            "min_value": SLA_MINUTES_MIN_MESSAGE,
            "max_value": SLA_MINUTES_MAX_MESSAGE,
        },
    )


class PoolForm(forms.Form):
    name = forms.CharField(max_length=120)
    method = forms.ChoiceField(choices=Pool.Method.choices)
    sla_minutes = sla_minutes_field("Minutes to first touch", SLA_MINUTES_HELP)
    sla_action = forms.ChoiceField(
        label="On breach",
        choices=SlaAction.choices,
        initial=SlaAction.REASSIGN,
        required=False,
    )

    def clean_sla_action(self) -> str:
        return self.cleaned_data["sla_action"] or SlaAction.REASSIGN


class PoolMemberForm(forms.Form):
    """A rep's values in a pool. ``member`` is offered only when adding a rep."""

    weight = forms.IntegerField(
        min_value=1,
        initial=1,
        help_text="Share of the leads in a weighted pool, relative to the others.",
    )
    cap_per_day = forms.IntegerField(
        label="Daily cap",
        min_value=1,
        required=False,
        help_text=(
            "Leads this pool may give the rep per day. Required in a capacity "
            "pool, which shares leads in proportion to it."
        ),
    )
    cap_open = forms.IntegerField(
        label="Open-lead cap",
        min_value=0,
        required=False,
        help_text="Skip the rep while they own this many open leads or more.",
    )

    def values(self) -> dict:
        return {
            name: self.cleaned_data[name]
            for name in ("weight", "cap_per_day", "cap_open")
        }


class PoolMemberAddForm(PoolMemberForm):
    member = forms.ChoiceField(help_text="Active members who are not in the pool.")

    field_order = ["member", "weight", "cap_per_day", "cap_open"]

    def __init__(self, *args, candidates: list[Membership], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.candidates = {str(member.public_id): member for member in candidates}
        self.fields["member"].choices = [("", "—")] + [
            (key, f"{member.display_name} ({member.get_role_display()})")
            for key, member in self.candidates.items()
        ]

    def chosen_member(self) -> Membership:
        return self.candidates[self.cleaned_data["member"]]


class PoolMemberEditForm(PoolMemberForm):
    """A rep's values in a pool. Position is shown from 1 and stored from 0."""

    position = forms.IntegerField(
        min_value=1,
        error_messages={"min_value": "Position must be 1 or more, not %(value)s."},
        help_text="Place in the rotation, from 1. Ties between reps go by it.",
    )
    paused = forms.BooleanField(
        required=False, help_text="A paused rep gets no leads from this pool."
    )

    field_order = ["position", "weight", "cap_per_day", "cap_open", "paused"]

    @classmethod
    def for_pool_member(cls, pool_member: PoolMember) -> PoolMemberEditForm:
        names = ("weight", "cap_per_day", "cap_open", "paused")
        initial = {name: getattr(pool_member, name) for name in names}
        initial["position"] = pool_member.position + 1
        return cls(initial=initial)

    def values(self) -> dict:
        return {
            **super().values(),
            "position": self.cleaned_data["position"] - 1,
            "paused": self.cleaned_data["paused"],
        }


def pool_member_candidates(pool: Pool) -> list[Membership]:
    """Return the active members who are not in ``pool``, by name, in one query."""
    in_pool = PoolMember.objects.filter(pool=pool).values("member_id")
    return list(
        Membership.objects.filter(is_active=True)
        .exclude(pk__in=in_pool)
        .order_by("display_name")
    )


# Rules ------------------------------------------------------------------------


@dataclass(frozen=True)
class RuleOptions:
    """The territories, pools and members that rules may name, by public id."""

    territories: dict[str, Territory]
    pools: dict[str, Pool]
    members: dict[str, Membership]

    @classmethod
    def load(cls, keep_member_ids: set[int] | None = None) -> RuleOptions:
        """Load the choices in three queries.

        Members are the active ones, plus ``keep_member_ids`` (those that
        live rules name), so republishing a rule whose member left stays
        possible. Routing queues such a rule's leads.
        """
        members = Membership.objects.filter(
            Q(is_active=True) | Q(pk__in=keep_member_ids or set())
        ).order_by("display_name")
        return cls(
            territories={str(t.public_id): t for t in Territory.objects.all()},
            pools={str(p.public_id): p for p in Pool.objects.all()},
            members={str(m.public_id): m for m in members},
        )


def _choices(objects: dict, label) -> list[tuple[str, str]]:
    return [("", "—")] + [(key, label(obj)) for key, obj in objects.items()]


def _member_label(member: Membership) -> str:
    return (
        member.display_name if member.is_active else f"{member.display_name} (inactive)"
    )


class RuleForm(forms.Form):
    order = forms.IntegerField(
        min_value=1,
        required=False,
        help_text=(
            "Rules are tried from the lowest number up. A rule without a number "
            "goes after the numbered ones."
        ),
    )
    name = forms.CharField(max_length=120)
    territory = forms.ChoiceField(required=False)
    conditions = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2, "cols": 36}),
    )
    action = forms.ChoiceField(choices=[("", "—")] + list(RoutingRule.Action.choices))
    pool = forms.ChoiceField(required=False)
    member = forms.ChoiceField(required=False)
    sla_minutes = sla_minutes_field(
        "SLA minutes", SLA_MINUTES_HELP + " A rule's SLA wins over its pool's."
    )
    sla_action = forms.ChoiceField(
        label="On breach",
        choices=[("", "—")] + list(SlaAction.choices),
        required=False,
        help_text="Reassign when left empty.",
    )

    def __init__(self, *args, options: RuleOptions, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.options = options
        self.fields["territory"].choices = _choices(options.territories, str)
        self.fields["pool"].choices = _choices(options.pools, str)
        self.fields["member"].choices = _choices(options.members, _member_label)

    def clean_conditions(self) -> list[dict]:
        return parse_condition_lines(self.cleaned_data["conditions"])

    def clean(self) -> dict:
        data = super().clean()
        action = data.get("action")
        if action == RoutingRule.Action.POOL and not data.get("pool"):
            self.add_error("pool", "A pool rule needs a pool.")
        if action == RoutingRule.Action.MEMBER and not data.get("member"):
            self.add_error("member", "A member rule needs a member.")
        return data

    def spec(self) -> RuleSpec:
        """Return the rule to publish, without a target that its action ignores."""
        data = self.cleaned_data
        action = data["action"]
        return RuleSpec(
            name=data["name"],
            action=action,
            conditions=data["conditions"],
            territory=self.options.territories.get(data["territory"]),
            pool=(
                self.options.pools[data["pool"]]
                if action == RoutingRule.Action.POOL
                else None
            ),
            member=(
                self.options.members[data["member"]]
                if action == RoutingRule.Action.MEMBER
                else None
            ),
            sla_minutes=data.get("sla_minutes"),
            sla_action=data.get("sla_action") or SlaAction.REASSIGN,
        )


def _marked_deleted(form: forms.Form) -> bool:
    return bool(getattr(form, "cleaned_data", {}).get("DELETE"))


class BaseRuleFormSet(forms.BaseFormSet):
    """The rows of the rule-set editor.

    Rows ticked for deletion and blank rows added below the rules are left
    out. A rule row that was on the page from the start is always kept.
    """

    def _publishes(self, index: int, form: forms.Form) -> bool:
        if _marked_deleted(form):
            return False
        return index < self.initial_form_count() or form.has_changed()

    def forms_to_publish(self) -> list[RuleForm]:
        """Return the forms of the rules to publish, in rule order.

        Call only on a valid formset. Rows with the same order number, or
        none, keep their order on the page, and rows without one go last.
        """
        rows = [
            (form.cleaned_data["order"] or math.inf, index, form)
            for index, form in enumerate(self.forms)
            if self._publishes(index, form)
        ]
        return [form for _, _, form in sorted(rows, key=lambda row: row[:2])]

    def specs(self) -> list[RuleSpec]:
        return [form.spec() for form in self.forms_to_publish()]

    def error_lines(self) -> list[str]:
        """Return each error of a row as "Row 3, Pool: ...", for the page's summary."""
        lines = list(self.non_form_errors())
        for number, form in enumerate(self.forms, start=1):
            if _marked_deleted(form):
                continue
            for name, messages in form.errors.items():
                label = "" if name == "__all__" else f", {form[name].label}"
                lines += [f"Row {number}{label}: {message}" for message in messages]
        return lines


RuleFormSet = forms.formset_factory(
    RuleForm, formset=BaseRuleFormSet, extra=1, can_delete=True
)


def rule_rows(rules: list[RoutingRule]) -> list[dict]:
    """Return published rules as the initial data of the editor's rows."""
    return [
        {
            "order": rule.order,
            "name": rule.name,
            "territory": str(rule.territory.public_id) if rule.territory else "",
            "conditions": "\n".join(condition_line(c) for c in rule.conditions),
            "action": rule.action,
            "pool": str(rule.pool.public_id) if rule.pool else "",
            "member": str(rule.member.public_id) if rule.member else "",
            "sla_minutes": rule.sla_minutes,
            "sla_action": rule.sla_action,
        }
        for rule in rules
    ]


class PublishForm(forms.Form):
    note = forms.CharField(
        max_length=200,
        required=False,
        help_text="What changed and why, shown in the version history.",
    )
    based_on = forms.IntegerField(min_value=0, widget=forms.HiddenInput)


# Test a lead ------------------------------------------------------------------


class LeadTestForm(forms.Form):
    """The fields of a lead to test, as intake takes them."""

    email = forms.CharField(max_length=254, required=False)
    company = forms.CharField(max_length=255, required=False)
    domain = forms.CharField(
        max_length=255,
        required=False,
        help_text="Company domain or website. Taken from the email when empty.",
    )
    country = forms.CharField(
        max_length=120, required=False, help_text="ISO code or English name."
    )
    region = forms.CharField(max_length=120, required=False)
    industry = forms.CharField(max_length=120, required=False)
    company_size = forms.IntegerField(
        min_value=0, required=False, help_text="Employees."
    )
    source = forms.CharField(max_length=120, required=False)
    estimated_value = forms.DecimalField(
        min_value=Decimal(0), max_digits=18, decimal_places=2, required=False
    )
    custom = forms.CharField(
        required=False,
        label="Custom fields",
        help_text="name=value pairs separated by commas, such as visits=7, plan=pro.",
    )

    def lead_fields(self) -> dict:
        """Return the typed fields as intake receives them, empty ones left out."""
        data = {
            name: value
            for name, value in self.cleaned_data.items()
            if value not in (None, "")
        }
        custom = {}
        for pair in (data.pop("custom", "") or "").split(","):
            name, _, value = pair.partition("=")
            if name.strip():
                custom[name.strip()] = value.strip()
        data["custom"] = custom
        return data

    def add_input_errors(self, errors: dict[str, list[str]]) -> None:
        """Show intake's normalisation errors on their fields."""
        for name, messages in errors.items():
            for message in messages:
                self.add_error(name if name in self.fields else None, message)


WEEKDAY_CHOICES = [(str(number), name) for number, name in enumerate(WEEKDAY_NAMES, 1)]


class WorkingHoursForm(forms.Form):
    """A rep's working hours: days, start and end, in their own time zone."""

    time_zone = forms.CharField(
        max_length=64, help_text="IANA name, such as Europe/Berlin."
    )
    days = forms.TypedMultipleChoiceField(
        choices=WEEKDAY_CHOICES,
        coerce=int,
        widget=forms.CheckboxSelectMultiple,
    )
    start = forms.TimeField(help_text="HH:MM, the first minute of work.")
    end = forms.TimeField(help_text="HH:MM, the first minute off; after the start.")

    @classmethod
    def for_hours(cls, hours: WorkingHours | None, organization) -> WorkingHoursForm:
        if hours is None:
            return cls(
                initial={
                    "time_zone": organization.time_zone,
                    "days": ["1", "2", "3", "4", "5"],
                    "start": "09:00",
                    "end": "17:00",
                }
            )
        return cls(
            initial={
                "time_zone": hours.time_zone,
                "days": [str(day) for day in hours.days],
                "start": hours.start.strftime("%H:%M"),
                "end": hours.end.strftime("%H:%M"),
            }
        )
