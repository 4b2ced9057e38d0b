"""Evaluating again: no duplicates, cooldown, cleared conditions, query counts."""

import datetime as dt
from decimal import Decimal

import pytest
from django.core.cache import cache
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext

from coaching.models import Alert, AlertStatus, Rule
from coaching.services import alert_resolve, rule_update
from spm.models import Membership
from spm.tenancy import tenant_context
from tests.coaching.conftest import (
    TODAY,
    at,
    evaluate,
    log_on_lead,
    make_lead,
    only_rule,
    unresolved,
)
from tests.factories import MembershipFactory
from tests.measurement.builders import make_deal

D = dt.date


def _win_rates(personas, rates):
    """Give the reps 10 closed deals each, with ``rates`` wins out of 10."""
    reps = [personas.rep1, personas.rep2, personas.rep3, personas.rep4]
    for rep, won in zip(reps, rates, strict=True):
        for number in range(10):
            stage = personas.stages["Won" if number < won else "Lost"]
            make_deal(rep, stage, "100.00", D(2024, 4, 10))


@pytest.fixture
def win_rule(personas):
    rule = only_rule(personas.org, "win_rate_below_team")
    # Median of 20, 30, 40, 50 is 35: Rita and Rob are below it.
    _win_rates(personas, (2, 3, 4, 5))
    return rule


def test_reevaluation_updates_instead_of_duplicating(personas, win_rule):
    first = evaluate(personas.org)
    second = evaluate(personas.org, now=at(TODAY, 13))

    assert first.created == 2
    assert second.created == 0
    assert second.updated == 2
    with tenant_context(personas.org):
        assert Alert.objects.filter(rule=win_rule).count() == 2
        rita = Alert.objects.get(rule=win_rule, member=personas.rep1)
    assert rita.first_seen_at == at(TODAY, 12)
    assert rita.last_evaluated_at == at(TODAY, 13)


def test_database_rejects_second_unresolved_alert(personas, win_rule):
    evaluate(personas.org)
    with tenant_context(personas.org):
        rita = Alert.objects.get(rule=win_rule, member=personas.rep1)
        copy = {
            "organization": personas.org,
            "rule": win_rule,
            "member": personas.rep1,
            "period_key": rita.period_key,
        }
        with pytest.raises(IntegrityError), transaction.atomic():
            Alert.objects.create(**copy, status=AlertStatus.ACKNOWLEDGED)

        # A resolved alert does not count against the constraint.
        Alert.objects.create(**copy, status=AlertStatus.RESOLVED)
        assert Alert.objects.filter(**copy).count() == 2


def test_cooldown_after_resolution(personas, win_rule):
    evaluate(personas.org)
    with tenant_context(personas.org):
        rita = Alert.objects.get(rule=win_rule, member=personas.rep1)
        alert_resolve(alert=rita, actor=personas.manager.user, now=at(TODAY, 14))

    # The default cooldown is 7 days: 6 days later Rita is still below the
    # median, but gets no new alert; 7 days and one hour later she does.
    evaluate(personas.org, today=D(2024, 5, 21), now=at(D(2024, 5, 21), 14))
    assert set(unresolved(win_rule)) == {"Rob Rep"}

    evaluate(personas.org, today=D(2024, 5, 22), now=at(D(2024, 5, 22), 15))
    assert set(unresolved(win_rule)) == {"Rita Rep", "Rob Rep"}


def test_zero_cooldown_alerts_again_at_once(personas, win_rule):
    with tenant_context(personas.org):
        rule_update(rule=win_rule, actor=None, cooldown_days=0)
    evaluate(personas.org)
    with tenant_context(personas.org):
        rita = Alert.objects.get(rule=win_rule, member=personas.rep1)
        alert_resolve(alert=rita, actor=None, now=at(TODAY, 12, 30))

    evaluate(personas.org, now=at(TODAY, 13))

    assert set(unresolved(win_rule)) == {"Rita Rep", "Rob Rep"}


def test_cleared_condition_is_marked_not_resolved(personas, win_rule):
    evaluate(personas.org)
    # Rita wins 8 more deals: 10 of 18 is 55.6%. The median of 30, 40, 50 and
    # 55.6 is 45, so only Rob (30%) is below it now.
    for _ in range(8):
        make_deal(personas.rep1, personas.stages["Won"], "100.00", D(2024, 5, 1))

    summary = evaluate(personas.org, now=at(TODAY, 13))

    assert summary.cleared == 1
    rita = unresolved(win_rule)["Rita Rep"]
    assert rita.status == AlertStatus.OPEN
    assert rita.resolved_by is None
    assert rita.is_cleared
    assert rita.details["cleared"]["value"] == "55.6"
    assert rita.value == Decimal("55.6")
    assert rita.details["first"]["value"] == "20.0"
    assert [e["event"] for e in rita.details["events"]] == ["cleared"]

    # The condition returns before anyone resolved the alert: the mark goes.
    for _ in range(20):
        make_deal(personas.rep1, personas.stages["Lost"], "100.00", D(2024, 5, 2))
    evaluate(personas.org, now=at(TODAY, 14))

    rita = unresolved(win_rule)["Rita Rep"]
    assert not rita.is_cleared
    assert [e["event"] for e in rita.details["events"]] == ["cleared", "returned"]


def test_disabled_rule_is_not_evaluated(personas, win_rule):
    with tenant_context(personas.org):
        rule_update(rule=win_rule, actor=None, is_active=False)
    assert evaluate(personas.org).rules == 0
    assert unresolved(win_rule) == {}


def test_team_scope_uses_team_median(personas, win_rule):
    with tenant_context(personas.org):
        rule_update(rule=win_rule, actor=None, team=personas.rep1.team)
    evaluate(personas.org)

    # East has Rita (20%) and Rob (30%): median 25, so only Rita is below.
    alerts = unresolved(win_rule)
    assert set(alerts) == {"Rita Rep"}
    assert alerts["Rita Rep"].team_value == Decimal("25")


def test_managers_and_inactive_reps_are_not_judged(personas, win_rule):
    with tenant_context(personas.org):
        Membership.objects.filter(pk=personas.rep2.pk).update(is_active=False)
    # The manager's own deals do not make a manager a judged rep.
    for _ in range(10):
        make_deal(personas.manager, personas.stages["Lost"], "1.00", D(2024, 4, 1))

    evaluate(personas.org)

    # Median of 20, 40 and 50 is 40: Rita only.
    assert set(unresolved(win_rule)) == {"Rita Rep"}


def _add_reps(personas, count: int) -> None:
    """Add reps with deals, leads and an idle open deal each."""
    stages = personas.stages
    for number in range(count):
        rep = MembershipFactory(
            organization=personas.org,
            user=None,
            display_name=f"Load Rep {Membership.unscoped.count()}-{number}",
            role=Membership.Role.REP,
            reports_to=personas.manager,
            team=personas.manager.team,
        )
        for won in range(10):
            stage = stages["Won" if won < number % 10 else "Lost"]
            make_deal(rep, stage, "100.00", D(2024, 4, 10))
        make_deal(rep, stages["Engaging"], "100.00", D(2024, 6, 1), D(2024, 1, 1))
        for day in (6, 7, 8, 9, 10):
            lead = make_lead(rep, at(D(2024, 5, day), 10))
            log_on_lead(rep, lead, at(D(2024, 5, day), 10 + number % 5))


def _evaluation_queries(personas, minute: int) -> int:
    cache.clear()
    with CaptureQueriesContext(connection) as queries:
        evaluate(personas.org, now=at(TODAY, 12, minute))
    return len(queries)


def test_query_count_does_not_grow_with_reps(personas, win_rule):
    with tenant_context(personas.org):
        Rule.objects.update(is_active=True)
    _add_reps(personas, 4)
    few_creating = _evaluation_queries(personas, 1)
    few_updating = _evaluation_queries(personas, 2)

    Alert.unscoped.all().delete()
    _add_reps(personas, 20)
    many_creating = _evaluation_queries(personas, 3)
    many_updating = _evaluation_queries(personas, 4)

    assert few_creating == many_creating
    assert few_updating == many_updating
