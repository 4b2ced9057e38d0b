"""Forms of the scoring rule pages: a rule, a sample lead, and the settings."""

from __future__ import annotations

import re

from django import forms

from routing.engine.conditions import OPERATORS
from routing.models import (
    POINTS_MAX,
    POINTS_MAX_MESSAGE,
    POINTS_MIN,
    POINTS_MIN_MESSAGE,
    THRESHOLD_MAX,
    ScoringRule,
    threshold_messages,
)

VALUE_HELP = (
    "equals and contains: one value. in: values separated by commas. "
    'range: "min..max" (min included, max excluded; either may be left out).'
)


def parse_value(operator: str, text: str):
    """Parse the text of the value box into the condition value for ``operator``."""
    text = text.strip()
    if operator == "in":
        return [item.strip() for item in text.split(",") if item.strip()]
    if operator == "range":
        low, _, high = text.partition("..")
        bounds = {"min": low.strip(), "max": high.strip()}
        return {key: value for key, value in bounds.items() if value}
    return text


def value_text(operator: str, value) -> str:
    if operator == "in":
        return ", ".join(value)
    if operator == "range":
        return f"{value.get('min', '')}..{value.get('max', '')}"
    return str(value)


class ScoringRuleForm(forms.Form):
    name = forms.CharField(max_length=120)
    kind = forms.ChoiceField(choices=ScoringRule.Kind.choices)
    field = forms.CharField(
        max_length=80,
        # Django does not escape help text, so the angle brackets are entities.
        help_text=(
            "A lead field such as industry or company_size, or custom.&lt;name&gt;."
        ),
    )
    operator = forms.ChoiceField(choices=[(name, name) for name in OPERATORS])
    value = forms.CharField(max_length=500, help_text=VALUE_HELP)
    points = forms.IntegerField(
        initial=0,
        min_value=POINTS_MIN,
        max_value=POINTS_MAX,
        error_messages={
            "min_value": POINTS_MIN_MESSAGE,
            "max_value": POINTS_MAX_MESSAGE,
        },
        help_text=(
            f"Added to the score, from {POINTS_MIN} to {POINTS_MAX}. Ignored by "
            "disqualify rules."
        ),
    )
    is_active = forms.BooleanField(required=False, initial=True, label="Active")

    @classmethod
    def for_rule(cls, rule: ScoringRule) -> ScoringRuleForm:
        return cls(
            initial={
                "name": rule.name,
                "kind": rule.kind,
                "field": rule.field,
                "operator": rule.operator,
                "value": value_text(rule.operator, rule.value),
                "points": rule.points,
                "is_active": rule.is_active,
            }
        )

    def rule_values(self) -> dict:
        data = dict(self.cleaned_data)
        data["value"] = parse_value(data["operator"], data["value"])
        return data


class SampleLeadForm(forms.Form):
    industry = forms.CharField(required=False)
    company_size = forms.IntegerField(required=False, min_value=0)
    country = forms.CharField(required=False)
    source = forms.CharField(required=False)
    custom = forms.CharField(
        required=False,
        label="Custom fields",
        help_text=(
            "name=value pairs separated by commas, such as visits=7, time_on_site=300."
        ),
    )

    def lead_fields(self) -> dict:
        data = {k: v for k, v in self.cleaned_data.items() if v not in (None, "")}
        custom = {}
        for pair in (data.pop("custom", "") or "").split(","):
            name, _, value = pair.partition("=")
            if name.strip():
                custom[name.strip()] = value.strip()
        data["custom"] = custom
        return data


DOMAIN = re.compile(
    r"^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$"
)


class QualificationSettingsForm(forms.Form):
    """The organisation's score thresholds, duplicate window and competitors."""

    mql_threshold = forms.IntegerField(
        label="Marketing-qualified at",
        min_value=0,
        max_value=THRESHOLD_MAX,
        error_messages=threshold_messages("Marketing-qualified at"),
        help_text=f"Score at or above which a lead is MQL, from 0 to {THRESHOLD_MAX}.",
    )
    sql_threshold = forms.IntegerField(
        label="Sales-qualified at",
        min_value=0,
        max_value=THRESHOLD_MAX,
        error_messages=threshold_messages("Sales-qualified at"),
        help_text=(
            "Score at or above which a lead is SQL, from the MQL score to "
            f"{THRESHOLD_MAX}."
        ),
    )
    duplicate_window_days = forms.IntegerField(
        label="Duplicate window (days)",
        min_value=0,
        max_value=3650,
        help_text="A lead matching an open lead received this many days back or "
        "less is merged into it.",
    )
    competitor_domains = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 40}),
        help_text="Domains whose leads are disqualified, one per line or "
        "separated by commas, such as rival.com.",
    )

    def clean_competitor_domains(self) -> list[str]:
        text = self.cleaned_data["competitor_domains"]
        domains = []
        for item in re.split(r"[\s,]+", text):
            domain = item.strip().lower().removeprefix("www.")
            if not domain:
                continue
            if not DOMAIN.match(domain):
                raise forms.ValidationError(
                    f"{item!r} is not a domain name. Write it like rival.com."
                )
            if domain not in domains:
                domains.append(domain)
        return domains

    def clean(self) -> dict:
        data = super().clean()
        mql, sql = data.get("mql_threshold"), data.get("sql_threshold")
        if mql is not None and sql is not None and sql < mql:
            self.add_error(
                "sql_threshold",
                f"The sales-qualified score ({sql}) must be at least the "
                f"marketing-qualified score ({mql}).",
            )
        return data
