"""Response SLA: timers, the breach at the right minute, reassignment, escalation."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from activity.models import Activity, Lead
from routing import sla
from routing.configuration import RuleSpec
from routing.models import ResponseTimer, SlaAction
from spm.models import AuditLog
from tests.conftest import login
from tests.factories import UserFactory
from tests.routing.conftest import make_pool, make_rep, publish, route_new_lead

BERLIN = ZoneInfo("Europe/Berlin")
Status = ResponseTimer.Status
Handoff = ResponseTimer.Handoff


def berlin(day: int, hour: int, minute: int = 0, second: int = 0) -> dt.datetime:
    """Return a moment of March 2024 in Berlin (19 March was a Tuesday)."""
    return dt.datetime(2024, 3, day, hour, minute, second, tzinfo=BERLIN)


@pytest.fixture
def clock(monkeypatch):
    """Set timezone.now() to the moment given to ``clock.set``."""

    class Clock:
        def set(self, moment: dt.datetime) -> None:
            monkeypatch.setattr(timezone, "now", lambda: moment.astimezone(dt.UTC))

    return Clock()


@pytest.fixture
def team(acme, personas):
    acme.time_zone = "Europe/Berlin"
    acme.save()
    reps = {
        name: make_rep(acme, name, reports_to=personas.manager)
        for name in ("Ann", "Ben", "Cem")
    }
    pool = make_pool(acme, "round_robin", list(reps.values()))
    pool.sla_minutes = 15
    pool.save()
    publish(acme, RuleSpec(name="Everyone", action="pool", pool=pool))
    return acme, reps, pool


def touch(lead: Lead, member, moment: dt.datetime, kind=Activity.Type.CALL) -> None:
    Activity.objects.create(
        organization=lead.organization,
        type=kind,
        occurred_at=moment,
        owner=member,
        lead=lead,
    )


def timers(lead: Lead) -> list[ResponseTimer]:
    return sla.lead_timers(lead)


def test_assignment_starts_timer(team, clock):
    _org, reps, _pool = team
    clock.set(berlin(19, 10))

    lead = route_new_lead(team[0]).lead
    [timer] = timers(lead)

    assert timer.member == reps["Ann"]
    assert timer.minutes == 15
    assert timer.due_at == berlin(19, 10, 15)
    assert timer.status == Status.OPEN


def test_breach_reassigns_at_due_minute(team, clock):
    _org, reps, _pool = team
    clock.set(berlin(19, 10))
    lead = route_new_lead(team[0]).lead

    assert sla.response_timers_sweep(now=berlin(19, 10, 14, 59)) == 0
    lead.refresh_from_db()
    assert lead.owner == reps["Ann"]

    assert sla.response_timers_sweep(now=berlin(19, 10, 15)) == 1
    lead.refresh_from_db()
    first, second = timers(lead)
    assert first.status == Status.BREACHED
    assert first.handoff == Handoff.REASSIGNED
    assert first.handed_to == reps["Ben"]
    assert first.outcome == "reassigned to Ben"
    assert lead.owner == reps["Ben"]
    assert lead.assigned_at == berlin(19, 10, 15)
    assert second.member == reps["Ben"]
    assert second.status == Status.OPEN
    assert second.due_at == berlin(19, 10, 30)


def test_reassignment_is_audited(team, clock):
    clock.set(berlin(19, 10))
    lead = route_new_lead(team[0]).lead

    sla.response_timers_sweep(now=berlin(19, 10, 15))

    entry = AuditLog.objects.get(action="routing.lead.reassign")
    assert entry.old == {"owner": "Ann"}
    assert entry.new == {"owner": "Ben", "reason": "response SLA breached"}
    assert entry.object_id in (str(lead.pk), str(lead.public_id))


def test_call_in_time_meets_sla(team, clock):
    _org, reps, _pool = team
    clock.set(berlin(19, 10))
    lead = route_new_lead(team[0]).lead
    touch(lead, reps["Ann"], berlin(19, 10, 15))

    sla.response_timers_sweep(now=berlin(19, 10, 16))

    lead.refresh_from_db()
    [timer] = timers(lead)
    assert timer.status == Status.MET
    assert timer.first_touch_at == berlin(19, 10, 15)
    assert timer.handoff == Handoff.NONE
    assert lead.owner == reps["Ann"]


@pytest.mark.parametrize(
    ("kind", "who", "when"),
    [
        (Activity.Type.NOTE, "Ann", berlin(19, 10, 5)),
        (Activity.Type.CALL, "Ben", berlin(19, 10, 5)),
        (Activity.Type.CALL, "Ann", berlin(19, 10, 15, 1)),
    ],
    ids=["note is no touch", "another rep's call", "call after due"],
)
def test_touch_that_does_not_count(team, clock, kind, who, when):
    _org, reps, _pool = team
    clock.set(berlin(19, 10))
    lead = route_new_lead(team[0]).lead
    touch(lead, reps[who], when, kind)

    sla.response_timers_sweep(now=berlin(19, 10, 20))

    first = timers(lead)[0]
    assert first.status == Status.BREACHED
    assert first.handoff == Handoff.REASSIGNED


def test_escalation_keeps_owner(team, clock, personas):
    _org, reps, pool = team
    pool.sla_action = SlaAction.ESCALATE
    pool.save()
    clock.set(berlin(19, 10))
    lead = route_new_lead(team[0]).lead

    sla.response_timers_sweep(now=berlin(19, 10, 15))

    lead.refresh_from_db()
    [timer] = timers(lead)
    assert timer.status == Status.BREACHED
    assert timer.handoff == Handoff.ESCALATED
    assert timer.handed_to == personas.manager
    assert timer.outcome == "escalated to Max Manager"
    assert lead.owner == reps["Ann"]


def test_missed_lead_never_comes_back(acme, personas, clock):
    acme.time_zone = "Europe/Berlin"
    acme.save()
    ann = make_rep(acme, "Ann", reports_to=personas.manager)
    ben = make_rep(acme, "Ben", reports_to=personas.manager)
    pool = make_pool(acme, "round_robin", [ann, ben])
    pool.sla_minutes = 15
    pool.save()
    publish(acme, RuleSpec(name="Everyone", action="pool", pool=pool))
    clock.set(berlin(19, 10))
    lead = route_new_lead(acme).lead

    sla.response_timers_sweep(now=berlin(19, 10, 15))
    sla.response_timers_sweep(now=berlin(19, 10, 30))

    lead.refresh_from_db()
    first, second = timers(lead)
    assert first.handed_to == ben
    assert second.member == ben
    assert second.handoff == Handoff.ESCALATED
    assert second.handed_to == personas.manager
    assert second.outcome == (
        f"no other rep available in pool {pool.name}, so escalated to Max Manager"
    )
    assert lead.owner == ben


def test_rule_sla_wins_and_skips_weekend(team, clock):
    org, reps, pool = team
    publish(
        org,
        RuleSpec(name="Everyone", action="pool", pool=pool, sla_minutes=10),
    )
    # Friday 16:55: five minutes on Friday, five on Monday.
    clock.set(berlin(15, 16, 55))

    lead = route_new_lead(org).lead

    [timer] = timers(lead)
    assert timer.minutes == 10
    assert timer.due_at == berlin(18, 9, 5)
    assert sla.response_timers_sweep(now=berlin(16, 12)) == 0


def test_owner_change_stops_action(team, clock):
    org, reps, _pool = team
    clock.set(berlin(19, 10))
    lead = route_new_lead(org).lead
    lead.owner = reps["Cem"]
    lead.save()

    sla.response_timers_sweep(now=berlin(19, 10, 15))

    [timer] = timers(lead)
    assert timer.status == Status.BREACHED
    assert timer.handoff == Handoff.NONE
    assert timer.outcome == "no action: the lead had changed owner"


def test_no_sla_starts_no_timer(acme, clock):
    rep = make_rep(acme, "Solo")
    pool = make_pool(acme, "round_robin", [rep])
    publish(acme, RuleSpec(name="Everyone", action="pool", pool=pool))
    clock.set(berlin(19, 10))

    lead = route_new_lead(acme).lead

    assert timers(lead) == []


def test_second_sweep_closes_nothing(team, clock):
    clock.set(berlin(19, 10))
    route_new_lead(team[0])

    assert sla.response_timers_sweep(now=berlin(19, 10, 15)) == 1
    assert sla.response_timers_sweep(now=berlin(19, 10, 15)) == 0


def test_sla_states_minutes_left(team, clock):
    clock.set(berlin(19, 10))
    lead = route_new_lead(team[0]).lead

    states = sla.sla_states([lead], berlin(19, 10, 6))

    assert states[lead.pk].status == "open"
    assert states[lead.pk].minutes_left == 9


def test_my_leads_shows_minutes_left(client, team, clock):
    org, reps, _pool = team
    reps["Ann"].user = UserFactory(email="ann@example.test")
    reps["Ann"].save()
    clock.set(berlin(19, 10))
    route_new_lead(org)
    clock.set(berlin(19, 10, 6))

    client.force_login(reps["Ann"].user)
    html = client.get("/o/acme/leads/mine/").content.decode()

    assert "9.0 business min left" in html


def test_escalation_on_queue_page(client, team, clock, personas):
    org, _reps, pool = team
    pool.sla_action = SlaAction.ESCALATE
    pool.save()
    clock.set(berlin(19, 10))
    lead = route_new_lead(org).lead
    sla.response_timers_sweep(now=berlin(19, 10, 15))
    login(client, personas.manager)

    html = client.get("/o/acme/leads/queue/").content.decode()

    assert f"/o/acme/leads/{lead.public_id}/" in html
    assert "escalated to Max Manager" in html


def test_pool_sla_update_is_audited(team):
    from routing import configuration

    _org, _reps, pool = team
    configuration.pool_update(
        pool=pool,
        actor=None,
        name=pool.name,
        method=pool.method,
        sla_minutes=30,
        sla_action=SlaAction.ESCALATE,
    )

    entry = AuditLog.objects.get(action="routing.pool.update")
    assert entry.old["sla_minutes"] == 15
    assert entry.new["sla_minutes"] == 30
    assert entry.new["sla_action"] == "escalate"


def test_pool_sla_below_one_rejected(team):
    from django.core.exceptions import ValidationError

    from routing import configuration

    _org, _reps, pool = team
    with pytest.raises(ValidationError, match="1 or more, not 0"):
        configuration.pool_update(
            pool=pool, actor=None, name=pool.name, method=pool.method, sla_minutes=0
        )


def test_failing_timer_does_not_block_others(team, clock, monkeypatch):
    org, reps, _pool = team
    clock.set(berlin(19, 10))
    first = route_new_lead(org).lead
    second = route_new_lead(org).lead
    real_close = sla._close

    def close_or_fail(timer, now):
        if timer.lead_id == first.pk:
            raise RuntimeError("broken")
        real_close(timer, now)

    monkeypatch.setattr(sla, "_close", close_or_fail)

    assert sla.response_timers_sweep(now=berlin(19, 10, 15)) == 1
    assert timers(first)[0].status == Status.OPEN
    assert timers(second)[0].status == Status.BREACHED
