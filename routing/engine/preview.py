"""Preview where a lead would go, without storing it or moving any rotation.

``lead_preview`` runs the steps of intake and routing on fields typed by an
admin: normalisation and qualification (score, disqualification, existing
customer), then the rules top down with ``decide(..., dry_run=True)``. It
writes nothing: no lead, no assignment, no rotation state, no lock. So
routing the same lead right afterwards picks the rep that the preview
named, unless another lead reaches the same pool first.

NOTE: duplicates are not checked. A lead that duplicates an open lead is
merged into it at intake and not routed, which the preview does not show.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.utils import timezone

from activity.models import Lead
from routing.configuration import RuleSpec
from routing.engine.decision import Decision, decide
from routing.models import LeadQualification, RoutingRule, RuleSetVersion
from routing.qualification import QualifiedLead, lead_qualify
from spm.models import Organization

# The lead fields that routing conditions and account matching read.
PREVIEW_FIELDS = (
    "email",
    "company",
    "domain",
    "country",
    "region",
    "industry",
    "company_size",
    "estimated_value",
    "source",
    "custom",
)


@dataclass(frozen=True)
class Preview:
    """The qualification of the typed lead and, unless disqualified, its decision."""

    qualified: QualifiedLead
    decision: Decision | None
    day: dt.date

    @property
    def routed(self) -> bool:
        return self.decision is not None

    @property
    def status_label(self) -> str:
        return LeadQualification.Status(self.qualified.status).label


def _unsaved_lead(organization: Organization, qualified: QualifiedLead) -> Lead:
    """Return the lead as intake would store it, with its qualification attached.

    Conditions on qualification fields (the predicted score) read the
    attached, unsaved ``LeadQualification``, as they read the stored one in
    real routing.
    """
    fields = qualified.fields
    values = {name: fields[name] for name in PREVIEW_FIELDS if name in fields}
    for name, value in values.items():
        if value is None and name not in ("company_size", "estimated_value"):
            values[name] = {} if name == "custom" else ""
    lead = Lead(organization=organization, **values)
    prediction = qualified.prediction
    lead.qualification = LeadQualification(
        organization=organization,
        score=qualified.score,
        status=qualified.status,
        model_version=prediction.version if prediction else None,
        predicted_score=prediction.score if prediction else None,
    )
    return lead


def lead_preview(
    *,
    organization: Organization,
    fields: dict,
    rules: list[RoutingRule] | None = None,
    day: dt.date | None = None,
) -> Preview:
    """Return where a lead with ``fields`` would go now, writing nothing.

    ``rules`` replaces the live rules, to try a draft before publishing it.
    ``day`` defaults to today in the organisation's time zone. Raises
    ``routing.normalization.LeadInputError`` naming each invalid field.
    """
    if day is None:
        day = timezone.localdate(timezone.now(), organization.zoneinfo)
    qualified = lead_qualify(organization=organization, fields=fields)
    if not qualified.route:
        return Preview(qualified, None, day)
    lead = _unsaved_lead(organization, qualified)
    decision = decide(
        lead,
        day,
        dry_run=True,
        rules=rules,
        customer_account=qualified.customer_account,
        known_contact=qualified.known_contact,
    )
    return Preview(qualified, decision, day)


def draft_rules(specs: list[RuleSpec], number: int) -> list[RoutingRule]:
    """Return unsaved rules for ``specs``, as version ``number`` would hold them."""
    version = RuleSetVersion(number=number, note="draft")
    return [
        RoutingRule(
            version=version,
            order=order,
            name=spec.name,
            action=spec.action,
            conditions=spec.conditions or [],
            territory=spec.territory,
            pool=spec.pool,
            member=spec.member,
        )
        for order, spec in enumerate(specs, start=1)
    ]
