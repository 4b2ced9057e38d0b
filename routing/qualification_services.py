"""Writes of qualification: scoring rules, settings and requalifying a lead.

Every change is written to the audit log with its old and new values, in
the change's transaction.
"""

from __future__ import annotations

from django.db import transaction

from activity.models import Lead
from routing.models import LeadQualification, QualificationSettings, ScoringRule
from routing.qualification import settings_for, status_for
from routing.services import _route_after_commit
from spm.models import Organization, User
from spm.services import audit_log_write

RULE_FIELDS = ("name", "kind", "field", "operator", "value", "points", "is_active")


def _rule_values(rule: ScoringRule) -> dict:
    return {name: getattr(rule, name) for name in RULE_FIELDS}


@transaction.atomic
def scoring_rule_create(
    *, organization: Organization, actor: User | None, **values
) -> ScoringRule:
    """Create a scoring rule. Raises ValidationError for an invalid condition."""
    rule = ScoringRule(organization=organization, **values)
    rule.full_clean(exclude=["value", "organization"])
    rule.save()
    audit_log_write(
        organization=organization,
        actor=actor,
        action="scoring_rule.create",
        obj=rule,
        new=_rule_values(rule),
    )
    return rule


@transaction.atomic
def scoring_rule_update(
    *, rule: ScoringRule, actor: User | None, **values
) -> ScoringRule:
    old = _rule_values(rule)
    for name, value in values.items():
        setattr(rule, name, value)
    rule.full_clean(exclude=["value", "organization"])
    rule.save()
    audit_log_write(
        organization=rule.organization,
        actor=actor,
        action="scoring_rule.update",
        obj=rule,
        old=old,
        new=_rule_values(rule),
    )
    return rule


@transaction.atomic
def scoring_rule_delete(*, rule: ScoringRule, actor: User | None) -> None:
    audit_log_write(
        organization=rule.organization,
        actor=actor,
        action="scoring_rule.delete",
        obj=rule,
        old=_rule_values(rule),
    )
    rule.delete()


@transaction.atomic
def qualification_settings_update(
    *, organization: Organization, actor: User | None, **values
) -> QualificationSettings:
    """Save the thresholds, window and competitors. Raises ValidationError when
    a threshold is out of bounds or the SQL one is below the MQL one."""
    settings, _ = QualificationSettings.objects.get_or_create(organization=organization)
    names = (
        "mql_threshold",
        "sql_threshold",
        "duplicate_window_days",
        "competitor_domains",
    )
    old = {name: getattr(settings, name) for name in names}
    for name, value in values.items():
        setattr(settings, name, value)
    settings.full_clean(exclude=["organization"], validate_constraints=False)
    settings.save()
    audit_log_write(
        organization=organization,
        actor=actor,
        action="qualification_settings.update",
        obj=settings,
        object_id=str(settings.pk),
        old=old,
        new={name: getattr(settings, name) for name in names},
    )
    return settings


class NotDisqualified(ValueError):
    """Only a disqualified lead can be requalified."""


def lead_requalify(*, lead_id: int, actor: User | None) -> Lead:
    """Clear a lead's disqualification and route it once committed.

    The status goes back to what its score gives. Raises
    ``NotDisqualified`` for a lead that is not disqualified.
    """
    with transaction.atomic():
        lead = Lead.objects.select_for_update().get(pk=lead_id)
        qualification = LeadQualification.objects.filter(lead=lead).first()
        if (
            qualification is None
            or qualification.status != LeadQualification.Status.DISQUALIFIED
        ):
            raise NotDisqualified("This lead is not disqualified.")
        old = {"status": qualification.status, "reason": qualification.reason}
        organization = lead.organization
        qualification.status = status_for(
            qualification.score, settings_for(organization)
        )
        qualification.reason = ""
        qualification.save(update_fields=["status", "reason"])
        lead.status = Lead.Status.NEW
        lead.routing_status = Lead.RoutingStatus.PENDING
        lead.save(update_fields=["status", "routing_status"])
        audit_log_write(
            organization=organization,
            actor=actor,
            action="lead.requalify",
            obj=lead,
            old=old,
            new={"status": qualification.status, "reason": ""},
        )
        _route_after_commit(organization.pk, lead.pk)
    return lead
