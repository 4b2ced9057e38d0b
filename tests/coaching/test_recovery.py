"""The recovery check and each rule's recovery rate."""

import datetime as dt
from decimal import Decimal

import pytest

from coaching.models import Alert, RecoveryStatus
from coaching.selectors import rule_rows
from coaching.services import alert_resolve, recovery_check
from spm.models import Membership
from spm.tenancy import tenant_context
from tests.coaching.conftest import TODAY, at, evaluate, only_rule
from tests.measurement.builders import make_deal

D = dt.date
RESOLVED_AT = at(TODAY, 14)


@pytest.fixture
def resolved(personas):
    """Rita (20%) and Rob (30%) alerted below the median of 35, then resolved."""
    rule = only_rule(personas.org, "win_rate_below_team")
    reps = [personas.rep1, personas.rep2, personas.rep3, personas.rep4]
    for rep, won in zip(reps, (2, 3, 4, 5), strict=True):
        for number in range(10):
            stage = personas.stages["Won" if number < won else "Lost"]
            make_deal(rep, stage, "100.00", D(2024, 4, 10))
    evaluate(personas.org)
    with tenant_context(personas.org):
        for alert in Alert.objects.filter(rule=rule):
            alert_resolve(alert=alert, actor=personas.manager.user, now=RESOLVED_AT)
    return rule


def _statuses(rule) -> dict[str, str]:
    with tenant_context(rule.organization):
        return {
            alert.member.display_name: alert.recovery_status
            for alert in Alert.objects.filter(rule=rule).select_related("member")
        }


def _check(personas, day: dt.date, hour: int = 15):
    return recovery_check(organization=personas.org, today=day, now=at(day, hour))


def test_resolution_starts_pending_recovery(personas, resolved):
    assert _statuses(resolved) == {
        "Rita Rep": RecoveryStatus.PENDING,
        "Rob Rep": RecoveryStatus.PENDING,
    }


def test_not_checked_before_window_ends(personas, resolved):
    # Resolved on 15 May at 14:00; the 14-day window ends 29 May at 14:00.
    summary = _check(personas, D(2024, 5, 29), hour=13)
    assert summary.recovered + summary.not_recovered + summary.pending == 0
    assert set(_statuses(resolved).values()) == {RecoveryStatus.PENDING}


def test_metric_back_counts_as_recovered(personas, resolved):
    # Rita wins 8 more: 10 of 18 = 55.6%. Median of 30, 40, 50, 55.6 = 45;
    # Rita is above it, Rob (30%) still below.
    for _ in range(8):
        make_deal(personas.rep1, personas.stages["Won"], "100.00", D(2024, 5, 20))

    summary = _check(personas, D(2024, 5, 29))

    assert (summary.recovered, summary.not_recovered) == (1, 1)
    assert _statuses(resolved) == {
        "Rita Rep": RecoveryStatus.RECOVERED,
        "Rob Rep": RecoveryStatus.NOT_RECOVERED,
    }
    with tenant_context(personas.org):
        rita = Alert.objects.get(rule=resolved, member=personas.rep1)
    assert rita.recovery_value == Decimal("55.6")
    assert rita.recovered_at == at(D(2024, 5, 29), 15)

    # Recovery rate = recovered / (recovered + not recovered) = 1 / 2.
    with tenant_context(personas.org):
        row = next(r for r in rule_rows(personas.admin) if r.rule.pk == resolved.pk)
    assert row.recovered == 1
    assert row.not_recovered == 1
    assert row.recovery_rate == Decimal("50.0")


def test_checked_once(personas, resolved):
    _check(personas, D(2024, 5, 29))
    summary = _check(personas, D(2024, 5, 30))
    assert summary.recovered + summary.not_recovered + summary.pending == 0


def test_unmeasurable_rep_waits_then_counts_as_not_recovered(personas, resolved):
    with tenant_context(personas.org):
        Membership.objects.filter(pk=personas.rep1.pk).update(is_active=False)

    first = _check(personas, D(2024, 5, 29))
    assert first.pending == 1
    assert _statuses(resolved)["Rita Rep"] == RecoveryStatus.PENDING

    # Twice the window after resolution: 12 June at 14:00.
    last = _check(personas, D(2024, 6, 12))
    assert last.not_recovered == 1
    assert _statuses(resolved)["Rita Rep"] == RecoveryStatus.NOT_RECOVERED


def test_recovery_rate_without_judged_alerts(personas, resolved):
    with tenant_context(personas.org):
        row = next(r for r in rule_rows(personas.admin) if r.rule.pk == resolved.pk)
    assert row.recovery_rate is None
