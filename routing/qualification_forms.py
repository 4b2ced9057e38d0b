"""Forms of the scoring rule pages: a rule, and a sample lead to score."""

from __future__ import annotations

from django import forms

from routing.engine.conditions import OPERATORS
from routing.models import ScoringRule

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
        help_text="A lead field such as industry or company_size, or custom.<name>.",
    )
    operator = forms.ChoiceField(choices=[(name, name) for name in OPERATORS])
    value = forms.CharField(max_length=500, help_text=VALUE_HELP)
    points = forms.IntegerField(
        initial=0,
        help_text="Added to the score; may be negative. Ignored by disqualify rules.",
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
