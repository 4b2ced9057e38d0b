"""Helpers of the coaching tests: one active rule at a time, leads, evaluation."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest

from activity.models import Activity, Lead
from coaching.models import Alert, AlertStatus, Rule
from coaching.services import EvaluationSummary, evaluate_rules
from spm.models import Membership, Organization
from spm.tenancy import tenant_context

D = dt.date
_numbers = itertools.count(1)

# A Wednesday. The rolling windows end the day before: the last 90 days are
# 2024-02-15 to 2024-05-14, the last 5 business days 2024-05-08 to 2024-05-14.
TODAY = D(2024, 5, 15)
NOON = dt.datetime(2024, 5, 15, 12, 0, tzinfo=dt.UTC)


def at(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=dt.UTC)


def only_rule(organization: Organization, key: str) -> Rule:
    """Disable every rule of the organisation but the built-in ``key``."""
    with tenant_context(organization):
        Rule.objects.exclude(builtin_key=key).update(is_active=False)
        return Rule.objects.get(builtin_key=key)


def evaluate(
    organization: Organization,
    today: dt.date = TODAY,
    now: dt.datetime | None = None,
) -> EvaluationSummary:
    return evaluate_rules(organization, today=today, now=now or NOON)


def alerts_by_name(rule: Rule, **filters) -> dict[str, Alert]:
    """Return the rule's alerts keyed by the rep's display name."""
    with tenant_context(rule.organization):
        alerts = Alert.objects.filter(rule=rule, **filters).select_related("member")
        return {alert.member.display_name: alert for alert in alerts}


def unresolved(rule: Rule) -> dict[str, Alert]:
    with tenant_context(rule.organization):
        return alerts_by_name(
            rule, status__in=[AlertStatus.OPEN, AlertStatus.ACKNOWLEDGED]
        )


def make_lead(owner: Membership, assigned_at: dt.datetime, name: str = "") -> Lead:
    number = next(_numbers)
    return Lead.unscoped.create(
        organization_id=owner.organization_id,
        owner=owner,
        first_name=name or f"Lead {number}",
        assigned_at=assigned_at,
        created_at=assigned_at,
        external_source="test",
        external_id=f"L{number}",
    )


def log_on_lead(owner: Membership, lead: Lead, occurred_at: dt.datetime) -> Activity:
    return Activity.unscoped.create(
        organization_id=owner.organization_id,
        owner=owner,
        lead=lead,
        type=Activity.Type.CALL,
        occurred_at=occurred_at,
        external_source="test",
        external_id=f"LA{next(_numbers)}",
    )


def log_on_deal(owner: Membership, deal, occurred_at: dt.datetime) -> Activity:
    return Activity.unscoped.create(
        organization_id=owner.organization_id,
        owner=owner,
        deal=deal,
        type=Activity.Type.EMAIL,
        occurred_at=occurred_at,
        external_source="test",
        external_id=f"DA{next(_numbers)}",
    )


@pytest.fixture
def reps(personas):
    """The four reps of Acme, all active, with no rule but the one a test enables."""
    return [personas.rep1, personas.rep2, personas.rep3, personas.rep4]
