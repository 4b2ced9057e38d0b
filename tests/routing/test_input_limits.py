"""Bounds on routing and scoring inputs, and routing with an SLA out of bounds."""

from __future__ import annotations

import datetime as dt
import logging

import pytest
from django.core.exceptions import ValidationError

from activity.models import Lead
from routing import configuration, services, sla
from routing.configuration import RuleSpec
from routing.models import (
    Pool,
    QualificationSettings,
    ResponseTimer,
    RoutingRule,
    ScoringRule,
)
from routing.qualification_services import (
    qualification_settings_update,
    scoring_rule_create,
)
from tests.conftest import login
from tests.routing.conftest import make_pool, make_rep, pending_lead, publish

BASE = "/o/acme/leads/routing"
SCORING = "/o/acme/leads/scoring/"
# 30 business days of 8 hours.
SLA_MAX = 14400
TOO_LONG = (
    "Minutes to first touch must be at most 14400 (30 business days of 8 hours), "
    "not {}."
)


@pytest.fixture
def admin_client(client, personas, in_org):
    return login(client, personas.admin)


# Response SLA minutes -----------------------------------------------------------


def test_pool_form_rejects_sla_above_maximum(admin_client, personas):
    response = admin_client.post(
        f"{BASE}/pools/",
        {"name": "Inbound", "method": "round_robin", "sla_minutes": "99999999999999"},
    )

    assert response.status_code == 400
    form = response.context["form"]
    assert form.errors["sla_minutes"] == [TOO_LONG.format(99999999999999)]
    assert not Pool.objects.exists()


def test_pool_form_rejects_sla_of_zero(admin_client, personas):
    response = admin_client.post(
        f"{BASE}/pools/",
        {"name": "Inbound", "method": "round_robin", "sla_minutes": "0"},
    )

    assert response.status_code == 400
    assert response.context["form"].errors["sla_minutes"] == [
        "Minutes to first touch must be 1 or more, not 0."
    ]


def test_pool_form_accepts_sla_maximum(admin_client, personas):
    response = admin_client.post(
        f"{BASE}/pools/",
        {"name": "Inbound", "method": "round_robin", "sla_minutes": str(SLA_MAX)},
    )

    assert response.status_code == 302
    assert Pool.objects.get().sla_minutes == SLA_MAX


def test_rule_editor_rejects_sla_above_maximum(admin_client, personas):
    pool = make_pool(personas.org, "round_robin", [personas.rep1])
    data = {
        "rules-TOTAL_FORMS": "1",
        "rules-INITIAL_FORMS": "0",
        "rules-0-order": "1",
        "rules-0-name": "All",
        "rules-0-action": "pool",
        "rules-0-pool": str(pool.public_id),
        "rules-0-sla_minutes": "14401",
        "based_on": "0",
        "note": "",
        "publish": "1",
    }

    response = admin_client.post(f"{BASE}/rules/edit/", data)

    page = response.content.decode()
    assert response.status_code == 400
    assert f"Row 1, SLA minutes: {TOO_LONG.format(14401)}" in page
    assert not RoutingRule.objects.exists()


def test_pool_service_rejects_sla_above_maximum(personas, in_org):
    with pytest.raises(ValidationError) as error:
        configuration.pool_create(
            organization=personas.org,
            actor=None,
            name="Inbound",
            method="round_robin",
            sla_minutes=SLA_MAX + 1,
        )

    assert error.value.message_dict == {"sla_minutes": [TOO_LONG.format(14401)]}


def test_rule_publish_rejects_sla_above_maximum(personas, in_org):
    pool = make_pool(personas.org, "round_robin", [personas.rep1])
    spec = RuleSpec(name="All", action="pool", pool=pool, sla_minutes=20000)

    with pytest.raises(ValidationError) as error:
        publish(personas.org, spec)

    assert error.value.messages == [
        f"Rule 1 (All): Minutes to first touch: {TOO_LONG.format(20000)}"
    ]


def test_stored_sla_above_maximum_routes_without_timer(personas, in_org, caplog):
    """An SLA saved before the bound existed must not leave the lead pending."""
    org = personas.org
    rep = make_rep(org, "Ann")
    pool = make_pool(org, "round_robin", [rep])
    # Past the bound but within the 32-bit column: about 16,000 years of
    # business days, so no due time fits in a datetime.
    Pool.objects.filter(pk=pool.pk).update(sla_minutes=2_000_000_000)
    publish(org, RuleSpec(name="All", action="pool", pool=pool))
    lead = pending_lead(org)

    with caplog.at_level(logging.ERROR, logger="routing.sla"):
        assignment = services.lead_route(lead_id=lead.pk)

    lead.refresh_from_db()
    assert assignment is not None
    assert assignment.member == rep
    assert lead.routing_status == Lead.RoutingStatus.ASSIGNED
    assert not ResponseTimer.objects.exists()
    (record,) = caplog.records
    assert record.getMessage() == (
        f"No response timer for lead {lead.pk} of organisation {org.pk}: no due "
        "time for an SLA of 2000000000 minutes from the pool (the maximum is 14400)"
    )
    assert record.lead_id == lead.pk
    assert record.organization_id == org.pk


def test_due_time_past_calendar_starts_no_timer(personas, in_org, caplog):
    org = personas.org
    rep = make_rep(org, "Ann")
    pool = make_pool(org, "round_robin", [rep])
    pool.sla_minutes = 60
    pool.save()
    lead = pending_lead(org)
    # Friday 31 December 9999: the next business day is past datetime.max.
    late = dt.datetime(9999, 12, 31, 16, 30, tzinfo=dt.UTC)

    with caplog.at_level(logging.ERROR, logger="routing.sla"):
        timer = sla.timer_start(
            lead=lead, member=rep, assigned_at=late, rule=None, pool=pool
        )

    assert timer is None
    assert not ResponseTimer.objects.exists()
    (record,) = caplog.records
    assert f"No response timer for lead {lead.pk} of organisation {org.pk}" in (
        record.getMessage()
    )


# Scoring points and thresholds ----------------------------------------------------


def _scoring_form(**values) -> dict:
    return {
        "name": "Big company",
        "kind": "fit",
        "field": "company_size",
        "operator": "range",
        "value": "1000..",
        "points": "10",
        "is_active": "on",
        **values,
    }


@pytest.mark.parametrize(
    ("points", "message"),
    [
        ("99999999999", "Points must be 1000 or less, not 99999999999."),
        ("1001", "Points must be 1000 or less, not 1001."),
        ("-1001", "Points must be -1000 or more, not -1001."),
    ],
)
def test_scoring_form_rejects_points_out_of_bounds(
    admin_client, personas, points, message
):
    response = admin_client.post(SCORING, _scoring_form(points=points))

    assert response.status_code == 200
    assert response.context["form"].errors["points"] == [message]
    assert not ScoringRule.objects.exists()


@pytest.mark.parametrize("points", ["1000", "-1000"])
def test_scoring_form_accepts_points_bounds(admin_client, personas, points):
    response = admin_client.post(SCORING, _scoring_form(points=points))

    assert response.status_code == 302
    assert ScoringRule.objects.get().points == int(points)


def test_scoring_service_rejects_points_out_of_bounds(personas, in_org):
    with pytest.raises(ValidationError) as error:
        scoring_rule_create(
            organization=personas.org,
            actor=None,
            name="Huge",
            kind="fit",
            field="industry",
            operator="equals",
            value="Software",
            points=99999999999,
            is_active=True,
        )

    assert error.value.message_dict == {
        "points": ["Points must be 1000 or less, not 99999999999."]
    }
    assert not ScoringRule.objects.exists()


@pytest.mark.parametrize(
    ("values", "field", "message"),
    [
        (
            {"mql_threshold": "-5"},
            "mql_threshold",
            "Marketing-qualified at must be 0 or more, not -5.",
        ),
        (
            {"sql_threshold": "100001"},
            "sql_threshold",
            "Sales-qualified at must be 100000 or less, not 100001.",
        ),
        (
            {"mql_threshold": "99999999999", "sql_threshold": "99999999999"},
            "mql_threshold",
            "Marketing-qualified at must be 100000 or less, not 99999999999.",
        ),
    ],
)
def test_settings_form_rejects_thresholds_out_of_bounds(
    admin_client, personas, values, field, message
):
    data = {
        "mql_threshold": "40",
        "sql_threshold": "70",
        "duplicate_window_days": "30",
        "competitor_domains": "",
        **values,
    }

    response = admin_client.post(f"{SCORING}settings/", data)

    assert response.status_code == 400
    assert response.context["settings_form"].errors[field] == [message]
    assert not QualificationSettings.objects.exists()


@pytest.mark.parametrize(
    ("values", "errors"),
    [
        (
            {"mql_threshold": -1},
            {"mql_threshold": ["Marketing-qualified at must be 0 or more, not -1."]},
        ),
        (
            {"mql_threshold": 90, "sql_threshold": 80},
            {
                "sql_threshold": [
                    "The sales-qualified score (80) must be at least the "
                    "marketing-qualified score (90)."
                ]
            },
        ),
    ],
)
def test_settings_service_rejects_bad_thresholds(personas, in_org, values, errors):
    with pytest.raises(ValidationError) as error:
        qualification_settings_update(organization=personas.org, actor=None, **values)

    assert error.value.message_dict == errors
    # The service's transaction is rolled back, the default row with it.
    assert not QualificationSettings.objects.exists()


def test_scoring_field_help_shows_custom_name(admin_client, personas):
    page = admin_client.get(SCORING).content.decode()

    assert "or custom.&lt;name&gt;." in page
    assert "custom.<name>" not in page


def test_scoring_condition_error_starts_with_capital(admin_client, personas):
    response = admin_client.post(SCORING, _scoring_form(value="500..100"))

    assert response.status_code == 200
    assert response.context["form"].errors["value"] == [
        "The range min of company_size (500) must be below its max (100)."
    ]
