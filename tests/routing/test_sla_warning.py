"""SLA warning: once per timer, when 80% of the business minutes have passed."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from activity.models import Activity, Lead
from notifications.models import Event, Notification
from notifications.services import notify
from routing import sla
from routing.configuration import RuleSpec
from routing.tasks import response_timers_sweep_task
from tests.routing.conftest import make_pool, make_rep, publish, route_new_lead

BERLIN = ZoneInfo("Europe/Berlin")


def berlin(day: int, hour: int, minute: int = 0, second: int = 0) -> dt.datetime:
    """Return a moment of March 2024 in Berlin (19 March was a Tuesday)."""
    return dt.datetime(2024, 3, day, hour, minute, second, tzinfo=BERLIN)


@pytest.fixture
def clock(monkeypatch):
    class Clock:
        def set(self, moment: dt.datetime) -> None:
            monkeypatch.setattr(timezone, "now", lambda: moment.astimezone(dt.UTC))

    return Clock()


@pytest.fixture
def team(acme, personas):
    """Ann, Ben and Cem in a round-robin pool with a 15-minute SLA, in Berlin."""
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


def warnings_of(member) -> list[Notification]:
    return list(
        Notification.objects.filter(
            member=member, event__type="lead.sla_warning"
        ).select_related("event")
    )


def test_warning_fires_once_at_80_percent(team, clock):
    acme, reps, _pool = team
    clock.set(berlin(19, 10))
    lead = route_new_lead(acme).lead

    # 80% of 15 minutes is 12: the warning is due at 10:12.
    assert sla.response_timers_warn(now=berlin(19, 10, 11, 59)) == 0
    assert sla.response_timers_warn(now=berlin(19, 10, 12)) == 1
    assert sla.response_timers_warn(now=berlin(19, 10, 13)) == 0
    assert sla.response_timers_warn(now=berlin(19, 10, 14, 59)) == 0

    [warning] = warnings_of(reps["Ann"])
    assert warning.event.title == f"Lead {lead}: 3 business minutes left to respond"
    assert warning.event.payload["minutes_left"] == "3.0"
    assert warning.event.payload["due_at"] == "2024-03-19 10:15 CET"
    assert warning.event.object_public_id == str(lead.public_id)
    assert warnings_of(reps["Ben"]) == []


def test_warning_counts_business_minutes(team, clock):
    acme, reps, pool = team
    pool.sla_minutes = 10
    pool.save()
    # Friday 16:55: five minutes on Friday, then the business day opens at
    # 09:00 on Monday. 80% of 10 minutes is 8, so the warning is due at 09:03.
    clock.set(berlin(22, 16, 55))
    route_new_lead(acme)

    assert sla.response_timers_warn(now=berlin(22, 17, 5)) == 0
    assert sla.response_timers_warn(now=berlin(25, 9, 2, 59)) == 0
    assert sla.response_timers_warn(now=berlin(25, 9, 3)) == 1
    assert len(warnings_of(reps["Ann"])) == 1


def test_no_warning_after_first_touch(team, clock):
    acme, reps, _pool = team
    clock.set(berlin(19, 10))
    lead = route_new_lead(acme).lead
    Activity.objects.create(
        organization=acme,
        type=Activity.Type.CALL,
        occurred_at=berlin(19, 10, 5),
        owner=reps["Ann"],
        lead=lead,
    )

    assert sla.response_timers_warn(now=berlin(19, 10, 12)) == 0
    assert sla.response_timers_warn(now=berlin(19, 10, 14)) == 0
    assert warnings_of(reps["Ann"]) == []


def test_no_warning_for_closed_lead(team, clock):
    acme, reps, _pool = team
    clock.set(berlin(19, 10))
    lead = route_new_lead(acme).lead
    Lead.objects.filter(pk=lead.pk).update(status=Lead.Status.DISQUALIFIED)

    assert sla.response_timers_warn(now=berlin(19, 10, 12)) == 0


def test_next_owner_gets_own_warning(team, clock):
    acme, reps, _pool = team
    clock.set(berlin(19, 10))
    route_new_lead(acme)
    sla.response_timers_warn(now=berlin(19, 10, 12))

    # The breach at 10:15 gives the lead to Ben, whose timer ends at 10:30.
    clock.set(berlin(19, 10, 15))
    sla.response_timers_sweep(now=berlin(19, 10, 15))

    assert sla.response_timers_warn(now=berlin(19, 10, 26, 59)) == 0
    assert sla.response_timers_warn(now=berlin(19, 10, 27)) == 1
    assert len(warnings_of(reps["Ann"])) == 1
    assert len(warnings_of(reps["Ben"])) == 1


def test_beat_task_warns(team, clock):
    acme, reps, _pool = team
    clock.set(berlin(19, 10))
    route_new_lead(acme)
    clock.set(berlin(19, 10, 12, 30))

    assert response_timers_sweep_task.delay().get() == 0

    assert len(warnings_of(reps["Ann"])) == 1


def test_dedup_key_allows_one_event(team):
    acme, reps, _pool = team

    first = notify(acme, "lead.sla_warning", [reps["Ann"]], title="A", dedup_key="k1")
    second = notify(acme, "lead.sla_warning", [reps["Ann"]], title="B", dedup_key="k1")

    assert first is not None
    assert second is None
    assert list(Event.objects.values_list("title", flat=True)) == ["A"]
