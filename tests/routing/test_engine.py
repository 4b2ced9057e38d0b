"""Rules top down, first match wins; account owners; the decision record."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from activity.models import Account, Lead
from goals.models import TimeOff
from routing import configuration, services
from routing.configuration import RuleSpec
from routing.models import Assignment
from tests.routing.conftest import (
    local_day,
    make_pool,
    make_rep,
    pending_lead,
    publish,
    route_new_lead,
)


@pytest.fixture
def setup(acme):
    """Reps, a German territory pool, a US pool, and a catch-all pool."""
    reps = {name: make_rep(acme, name) for name in ("Dora", "Dirk", "Uma", "Ugo", "Al")}
    dach = configuration.territory_create(
        organization=acme,
        actor=None,
        name="DACH",
        conditions=[
            {"field": "country", "operator": "in", "value": ["DEU", "Austria"]}
        ],
    )
    pools = {
        "dach": make_pool(acme, "round_robin", [reps["Dora"], reps["Dirk"]]),
        "us": make_pool(acme, "round_robin", [reps["Uma"], reps["Ugo"]]),
        "rest": make_pool(acme, "round_robin", [reps["Al"]]),
    }
    return acme, reps, dach, pools


def _standard_rules(acme, dach, pools, *, with_account_rule=True):
    rules = []
    if with_account_rule:
        rules.append(RuleSpec(name="Existing customers", action="account_owner"))
    rules += [
        RuleSpec(name="DACH", action="pool", territory=dach, pool=pools["dach"]),
        RuleSpec(
            name="US enterprise",
            action="pool",
            pool=pools["us"],
            conditions=[
                {"field": "country", "operator": "equals", "value": "US"},
                {"field": "company_size", "operator": "range", "value": {"min": 500}},
            ],
        ),
        RuleSpec(name="Rest", action="pool", pool=pools["rest"]),
    ]
    return publish(acme, *rules)


def test_first_matching_rule_wins(setup):
    acme, reps, dach, pools = setup
    _standard_rules(acme, dach, pools)

    german = route_new_lead(acme, country="DE")
    us_big = route_new_lead(acme, country="US", company_size=500)
    us_small = route_new_lead(acme, country="US", company_size=499)

    assert german.member == reps["Dora"]
    assert german.rule.name == "DACH"
    assert us_big.member == reps["Uma"]
    assert us_small.member == reps["Al"]
    assert us_small.rule.name == "Rest"


def test_trace_names_why_each_rule_failed(setup):
    acme, reps, dach, pools = setup
    version = _standard_rules(acme, dach, pools)

    assignment = route_new_lead(acme, country="US", company_size=120)

    assert assignment.version == version
    assert [(step["rule"], step["result"]) for step in assignment.trace] == [
        ("Existing customers", "passed"),
        ("DACH", "no match"),
        ("US enterprise", "no match"),
        ("Rest", "applied"),
    ]
    assert assignment.trace[0]["detail"] == "no account matches the lead"
    assert assignment.trace[1]["detail"] == (
        "territory DACH: country in [DE, AT] failed: the lead has 'US'"
    )
    assert assignment.trace[2]["detail"] == (
        "company_size range [500, …) failed: the lead has '120'"
    )


def test_account_match_wins_over_territory_rule(setup, personas):
    acme, reps, dach, pools = setup
    _standard_rules(acme, dach, pools)
    Account.objects.create(
        organization=acme,
        name="Bosch",
        domain="https://www.bosch.de/",
        owner=reps["Al"],
    )

    assignment = route_new_lead(acme, country="DE", domain="bosch.de")

    assert assignment.member == reps["Al"]
    assert assignment.rule.name == "Existing customers"
    assert assignment.method == "account_owner"
    assert assignment.trace[0]["detail"] == ("account Bosch (by domain), owner Al")


def test_account_matched_by_normalised_company_name(setup):
    acme, reps, dach, pools = setup
    _standard_rules(acme, dach, pools)
    Account.objects.create(organization=acme, name="Acme, Inc.", owner=reps["Ugo"])

    assignment = route_new_lead(acme, country="DE", company="ACME inc")

    assert assignment.member == reps["Ugo"]
    assert "by name" in assignment.trace[0]["detail"]


def test_account_owner_away_falls_through(setup):
    acme, reps, dach, pools = setup
    _standard_rules(acme, dach, pools)
    Account.objects.create(
        organization=acme, name="Bosch", domain="bosch.de", owner=reps["Al"]
    )
    TimeOff.objects.create(
        organization=acme,
        member=reps["Al"],
        start_date=local_day(acme),
        end_date=local_day(acme),
    )

    assignment = route_new_lead(acme, country="DE", domain="bosch.de")

    assert assignment.member == reps["Dora"]
    assert assignment.trace[0]["result"] == "passed"
    assert assignment.trace[0]["detail"] == (
        "account Bosch (by domain): owner Al is on time off"
    )
    assert [(c["name"], c["skipped"]) for c in assignment.candidates][0] == (
        "Al",
        "on time off",
    )


def test_account_without_owner_falls_through(setup):
    acme, reps, dach, pools = setup
    _standard_rules(acme, dach, pools)
    Account.objects.create(organization=acme, name="Bosch", domain="bosch.de")

    assignment = route_new_lead(acme, country="DE", domain="bosch.de")

    assert assignment.member == reps["Dora"]
    assert assignment.trace[0]["detail"] == "account Bosch (by domain) has no owner"


def test_member_rule_and_unavailable_member(setup):
    acme, reps, dach, pools = setup
    publish(
        acme,
        RuleSpec(
            name="Partners",
            action="member",
            member=reps["Uma"],
            conditions=[{"field": "source", "operator": "equals", "value": "partner"}],
        ),
        RuleSpec(name="Rest", action="fallback"),
    )
    assert route_new_lead(acme, source="Partner").member == reps["Uma"]

    TimeOff.objects.create(
        organization=acme,
        member=reps["Uma"],
        start_date=local_day(acme),
        end_date=local_day(acme),
    )
    queued = route_new_lead(acme, source="partner")
    assert queued.outcome == Assignment.Outcome.QUEUED
    assert queued.reason == "rule Partners: Uma is on time off"


def test_no_matching_rule_goes_to_fallback(setup):
    acme, reps, dach, pools = setup
    publish(
        acme, RuleSpec(name="DACH", action="pool", territory=dach, pool=pools["dach"])
    )

    assignment = route_new_lead(acme, country="FR")

    assert assignment.outcome == "queued"
    assert assignment.rule is None
    assert assignment.reason == "no rule took the lead"
    assert assignment.lead.owner is None


def test_no_published_rules_goes_to_fallback(acme):
    assignment = route_new_lead(acme)

    assert assignment.outcome == "queued"
    assert assignment.version is None
    assert assignment.reason == "no routing rules are published"


def test_latest_version_is_live(setup):
    acme, reps, dach, pools = setup
    publish(acme, RuleSpec(name="All to US", action="pool", pool=pools["us"]))
    publish(acme, RuleSpec(name="All to rest", action="pool", pool=pools["rest"]))

    assignment = route_new_lead(acme)

    assert assignment.member == reps["Al"]
    assert assignment.version.number == 2


def test_custom_field_and_value_conditions(setup):
    acme, reps, dach, pools = setup
    publish(
        acme,
        RuleSpec(
            name="Big SaaS",
            action="pool",
            pool=pools["us"],
            conditions=[
                {"field": "custom.product", "operator": "in", "value": ["saas", "api"]},
                {
                    "field": "estimated_value",
                    "operator": "range",
                    "value": {"min": "50000", "max": "250000"},
                },
                {"field": "industry", "operator": "contains", "value": "software"},
            ],
        ),
        RuleSpec(name="Rest", action="pool", pool=pools["rest"]),
    )
    big = {"custom": {"product": "SaaS"}, "industry": "Enterprise Software"}

    # The range includes its min and excludes its max.
    assert route_new_lead(acme, estimated_value="50000", **big).member == reps["Uma"]
    assert (
        route_new_lead(acme, estimated_value="249999.99", **big).member == reps["Ugo"]
    )
    assert route_new_lead(acme, estimated_value="250000", **big).member == reps["Al"]
    assert route_new_lead(acme, estimated_value="60000").member == reps["Al"]


def test_region_condition_ignores_case(setup):
    acme, reps, dach, pools = setup
    publish(
        acme,
        RuleSpec(
            name="West coast",
            action="pool",
            pool=pools["us"],
            conditions=[
                {"field": "country", "operator": "equals", "value": "United States"},
                {"field": "region", "operator": "in", "value": ["CA", "Oregon"]},
            ],
        ),
        RuleSpec(name="Rest", action="fallback"),
    )

    assert route_new_lead(acme, country="US", region="oregon").member == reps["Uma"]
    assert route_new_lead(acme, country="US", region="Texas").member is None


def test_lead_is_routed_once(setup):
    acme, reps, dach, pools = setup
    _standard_rules(acme, dach, pools, with_account_rule=False)
    lead = pending_lead(acme, country="DE")

    first = services.lead_route(lead_id=lead.pk)
    second = services.lead_route(lead_id=lead.pk)

    assert first is not None
    assert second is None
    assert Assignment.objects.filter(lead=lead).count() == 1
    lead.refresh_from_db()
    assert lead.owner == reps["Dora"]
    assert lead.routing_status == Lead.RoutingStatus.ASSIGNED
    assert lead.assigned_at == first.routed_at


def test_second_assignment_row_is_rejected(setup):
    from django.db import IntegrityError, transaction

    acme, reps, dach, pools = setup
    assignment = route_new_lead(acme)

    with pytest.raises(IntegrityError), transaction.atomic():
        Assignment.objects.create(
            lead=assignment.lead,
            outcome="assigned",
            member=reps["Al"],
            received_at=assignment.received_at,
            routed_at=assignment.routed_at,
        )


def test_invalid_rule_publishes_nothing(setup):
    acme, reps, dach, pools = setup

    with pytest.raises(ValidationError) as error:
        publish(
            acme,
            RuleSpec(name="Good", action="pool", pool=pools["us"]),
            RuleSpec(
                name="Bad",
                action="pool",
                pool=pools["us"],
                conditions=[{"field": "colour", "operator": "equals", "value": "red"}],
            ),
        )

    assert "Rule 2 (Bad)" in str(error.value)
    assert "Unknown field 'colour'" in str(error.value)
    assert configuration.live_version() is None


def test_publish_writes_audit_log(setup):
    from spm.models import AuditLog

    acme, reps, dach, pools = setup
    publish(acme, RuleSpec(name="All", action="pool", pool=pools["us"]))
    publish(acme, RuleSpec(name="None", action="fallback"))

    entry = AuditLog.objects.filter(action="routing.rules.publish").first()
    assert entry.old["version"] == 1
    assert entry.old["rules"][0]["name"] == "All"
    assert entry.old["rules"][0]["pool"] == pools["us"].name
    assert entry.new == {
        "version": 2,
        "rules": [
            {
                "order": 1,
                "name": "None",
                "action": "fallback",
                "conditions": [],
                "territory": None,
                "pool": None,
                "member": None,
                "sla_minutes": None,
                "sla_action": "reassign",
            }
        ],
    }
