"""Pages of qualification: scoring rules (admins) and requalifying a lead."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from routing import qualification_services as services
from routing import selectors
from routing.models import ScoringRule
from routing.qualification import describe_score, score_fields, settings_for
from routing.qualification_forms import (
    QualificationSettingsForm,
    SampleLeadForm,
    ScoringRuleForm,
)
from routing.views import managers_only
from spm.access import admin_required
from spm.tenancy import get_current_organization


def _rule_or_404(scoring_rule_id) -> ScoringRule:
    rule = ScoringRule.objects.filter(public_id=scoring_rule_id).first()
    if rule is None:
        raise Http404("Scoring rule not found.")
    return rule


def _save(request, form: ScoringRuleForm, rule: ScoringRule | None) -> bool:
    """Save the form's rule, or put each validation message on its box."""
    if not form.is_valid():
        return False
    try:
        if rule is None:
            services.scoring_rule_create(
                organization=request.organization,
                actor=request.user,
                **form.rule_values(),
            )
        else:
            services.scoring_rule_update(
                rule=rule, actor=request.user, **form.rule_values()
            )
    except ValidationError as error:
        for field, field_messages in error.message_dict.items():
            # The rule's one condition is typed in the value box.
            name = "value" if field == "conditions" else field
            for message in field_messages:
                form.add_error(
                    name if name in form.fields else None,
                    message.removeprefix("Condition 1: "),
                )
        return False
    return True


def _settings_form() -> QualificationSettingsForm:
    current = settings_for(get_current_organization())
    return QualificationSettingsForm(
        initial={
            "mql_threshold": current.mql_threshold,
            "sql_threshold": current.sql_threshold,
            "duplicate_window_days": current.duplicate_window_days,
            "competitor_domains": "\n".join(current.competitor_domains or []),
        }
    )


def _list_page(
    request, form=None, sample=None, result=None, settings_form=None, status=200
) -> HttpResponse:
    context = {
        "rules": ScoringRule.objects.all(),
        "form": form or ScoringRuleForm(),
        "sample": sample or SampleLeadForm(),
        "result": result,
        "settings_form": settings_form or _settings_form(),
    }
    return render(request, "routing/scoring_rules.html", context, status=status)


@login_required
@admin_required
@require_http_methods(["GET", "POST"])
def scoring_rules(request: HttpRequest, org_slug: str) -> HttpResponse:
    """List the scoring rules. A POST adds one."""
    if request.method == "POST":
        form = ScoringRuleForm(request.POST)
        if _save(request, form, None):
            messages.success(request, "Scoring rule added.")
            return redirect("routing:scoring", org_slug=org_slug)
        return _list_page(request, form=form)
    return _list_page(request)


@login_required
@admin_required
@require_http_methods(["GET", "POST"])
def scoring_rule_edit(
    request: HttpRequest, org_slug: str, scoring_rule_id
) -> HttpResponse:
    rule = _rule_or_404(scoring_rule_id)
    form = ScoringRuleForm.for_rule(rule)
    if request.method == "POST":
        form = ScoringRuleForm(request.POST)
        if _save(request, form, rule):
            messages.success(request, "Scoring rule saved.")
            return redirect("routing:scoring", org_slug=org_slug)
    return render(
        request, "routing/scoring_rule_form.html", {"form": form, "rule": rule}
    )


@login_required
@admin_required
@require_POST
def scoring_rule_delete(
    request: HttpRequest, org_slug: str, scoring_rule_id
) -> HttpResponse:
    rule = _rule_or_404(scoring_rule_id)
    services.scoring_rule_delete(rule=rule, actor=request.user)
    messages.success(request, "Scoring rule deleted.")
    return redirect("routing:scoring", org_slug=org_slug)


@login_required
@admin_required
@require_POST
def scoring_sample(request: HttpRequest, org_slug: str) -> HttpResponse:
    """Score a sample lead with the active rules and show the parts."""
    sample = SampleLeadForm(request.POST)
    if not sample.is_valid():
        return _list_page(request, sample=sample)
    rules = list(ScoringRule.objects.filter(is_active=True).order_by("id"))
    scored, disqualified_by = score_fields(sample.lead_fields(), rules)
    result = {
        **scored,
        "text": describe_score(scored["score"], scored["parts"]),
        "disqualified_by": disqualified_by,
    }
    return _list_page(request, sample=sample, result=result)


@login_required
@managers_only
@require_POST
def lead_requalify(request: HttpRequest, org_slug: str, lead_id) -> HttpResponse:
    """Clear a lead's disqualification and route it."""
    lead = selectors.lead_by_public_id(lead_id)
    if lead is None or not selectors.lead_visible_to(request.membership, lead):
        raise Http404("No such lead.")
    try:
        services.lead_requalify(lead_id=lead.pk, actor=request.user)
    except services.NotDisqualified as error:
        messages.error(request, str(error))
    else:
        messages.success(request, "Lead requalified and sent to routing.")
    return redirect("routing:lead", org_slug=org_slug, lead_id=lead.public_id)


@login_required
@admin_required
@require_POST
def qualification_settings(request: HttpRequest, org_slug: str) -> HttpResponse:
    """Save the thresholds, the duplicate window and the competitor domains."""
    form = QualificationSettingsForm(request.POST)
    if not form.is_valid():
        return _list_page(request, settings_form=form, status=400)
    services.qualification_settings_update(
        organization=request.organization, actor=request.user, **form.cleaned_data
    )
    messages.success(request, "Qualification settings saved.")
    return redirect("routing:scoring", org_slug=org_slug)
