"""Features raise events: lead assigned, SLA missed, lead escalated, alert opened."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from django.core import mail
from django.db import transaction

from notifications.models import Event, Notification
from routing import sla
from routing.configuration import RuleSpec
from routing.models import SlaAction
from spm.tenancy import tenant_context
from tests.coaching.conftest import evaluate, only_rule
from tests.measurement.builders import make_deal
from tests.notifications.conftest import prefer
from tests.routing.conftest import make_pool, make_rep, publish, route_new_lead

BERLIN = ZoneInfo("Europe/Berlin")


def berlin(day: int, hour: int, minute: int = 0) -> dt.datetime:
    """Return a moment of March 2024 in Berlin (19 March was a Tuesday)."""
    return dt.datetime(2024, 3, day, hour, minute, tzinfo=BERLIN)


def received(member) -> list[tuple[str, str, str]]:
    """Return (type, title, url) of each notification of ``member``, oldest first."""
    return [
        (n.event.type, n.event.title, n.event.url)
        for n in Notification.objects.filter(member=member)
        .select_related("event")
        .order_by("created_at", "id")
    ]


@pytest.fixture
def team(personas, in_org, clock):
    """Ann and Ben, under Max, in a round-robin pool with a 15-minute SLA."""
    in_org.time_zone = "Europe/Berlin"
    in_org.save()
    ann = make_rep(in_org, "Ann", reports_to=personas.manager)
    ben = make_rep(in_org, "Ben", reports_to=personas.manager)
    pool = make_pool(in_org, "round_robin", [ann, ben])
    pool.sla_minutes = 15
    pool.save()
    publish(in_org, RuleSpec(name="Everyone", action="pool", pool=pool))
    clock.set(berlin(19, 10))
    return ann, ben, pool


def test_rolled_back_assignment_notifies_no_one(team, personas):
    ann, _ben, _pool = team

    with transaction.atomic():
        route_new_lead(personas.org, first_name="Lea", last_name="Lind")
        transaction.set_rollback(True)

    assert received(ann) == []
    assert Event.objects.count() == 0


def test_assignment_notifies_rep(team, personas, django_capture_on_commit_callbacks):
    ann, ben, _pool = team

    with django_capture_on_commit_callbacks(execute=True):
        lead = route_new_lead(personas.org, first_name="Lea", last_name="Lind").lead
    # The rep is notified once the assignment is committed.

    assert received(ann) == [
        ("lead.assigned", "New lead assigned to you: Lea Lind", "/o/acme/leads/mine/")
    ]
    assert received(ben) == []
    event = Event.objects.get()
    assert event.object_type == "activity.lead"
    assert event.object_public_id == str(lead.public_id)
    assert event.payload == {
        "lead": "Lea Lind",
        "company": "",
        "email": lead.email,
        "rule": "Everyone",
        "sla_minutes": 15,
    }


def test_queued_lead_notifies_no_one(personas, in_org):
    publish(in_org, RuleSpec(name="Hold", action="fallback"))

    route_new_lead(in_org, first_name="Lea")

    assert Notification.objects.count() == 0


def test_sla_breach_notifies_old_and_new_rep(team, personas):
    ann, ben, _pool = team
    route_new_lead(personas.org, first_name="Lea", last_name="Lind")

    sla.response_timers_sweep(now=berlin(19, 10, 15))

    expected = (
        "lead.sla_breached",
        "Lead Lea Lind reassigned to Ben: SLA missed",
        "/o/acme/leads/mine/",
    )
    assert received(ann)[-1] == expected
    assert received(ben) == [expected]
    event = Event.objects.get(type="lead.sla_breached")
    assert event.urgency == "high"
    assert event.payload == {
        "lead": "Lea Lind",
        "previous_owner": "Ann",
        "new_owner": "Ben",
        "sla_minutes": 15,
    }
    assert received(personas.manager) == []


def test_escalation_notifies_rep_and_manager(team, personas):
    ann, _ben, pool = team
    pool.sla_action = SlaAction.ESCALATE
    pool.save()
    lead = route_new_lead(personas.org, first_name="Lea", last_name="Lind").lead

    sla.response_timers_sweep(now=berlin(19, 10, 15))

    title = "Lead Lea Lind escalated to Max Manager: SLA missed"
    assert received(ann)[-1] == ("lead.escalated", title, "/o/acme/leads/mine/")
    assert received(personas.manager) == [
        ("lead.escalated", title, f"/o/acme/leads/{lead.public_id}/")
    ]


def test_escalation_without_manager_notifies_rep(personas, in_org, clock):
    clock.set(berlin(19, 10))
    in_org.time_zone = "Europe/Berlin"
    in_org.save()
    solo = make_rep(in_org, "Solo")
    pool = make_pool(in_org, "round_robin", [solo])
    pool.sla_minutes = 15
    pool.sla_action = SlaAction.ESCALATE
    pool.save()
    publish(in_org, RuleSpec(name="Everyone", action="pool", pool=pool))
    route_new_lead(in_org, first_name="Lea")

    sla.response_timers_sweep(now=berlin(19, 10, 15))

    assert received(solo)[-1][:2] == (
        "lead.escalated",
        "Lead Lea escalated to no one (no manager): SLA missed",
    )
    assert Notification.objects.filter(event__type="lead.escalated").count() == 1


def test_breach_email_on_by_default(team, personas, django_capture_on_commit_callbacks):
    ann, ben, _pool = team
    for rep in (ann, ben):
        rep.email = f"{rep.display_name.lower()}@acme.test"
        rep.save()
    route_new_lead(personas.org, first_name="Lea", last_name="Lind")

    with django_capture_on_commit_callbacks(execute=True):
        sla.response_timers_sweep(now=berlin(19, 10, 15))

    subjects = sorted((m.to[0], m.subject) for m in mail.outbox)
    subject = "Lead Lea Lind reassigned to Ben: SLA missed · Acme"
    assert subjects == [("ann@acme.test", subject), ("ben@acme.test", subject)]
    assert "Ann did not touch the lead Lea Lind within the response SLA of 15" in (
        mail.outbox[0].body
    )


@pytest.fixture
def win_rule(personas):
    rule = only_rule(personas.org, "win_rate_below_team")
    reps = [personas.rep1, personas.rep2, personas.rep3, personas.rep4]
    # Median of 20, 30, 40 and 50 % is 35 %: Rita and Rob are below it.
    for rep, won in zip(reps, (2, 3, 4, 5), strict=True):
        for number in range(10):
            stage = personas.stages["Won" if number < won else "Lost"]
            make_deal(rep, stage, "100.00", dt.date(2024, 4, 10))
    return rule


def test_alert_opened_notifies_manager(personas, win_rule):
    evaluate(personas.org)

    with tenant_context(personas.org):
        titles = [title for _type, title, _url in received(personas.manager)]
        assert sorted(titles) == [
            "Win rate below the team median: Rita Rep",
            "Win rate below the team median: Rob Rep",
        ]
        assert received(personas.rep1) == []
        assert received(personas.vp) == []
        event = Event.objects.get(title="Win rate below the team median: Rita Rep")
        assert event.urgency == "low"
        assert event.url.startswith("/o/acme/coaching/alerts/")


def test_alert_reevaluated_notifies_once(personas, win_rule):
    evaluate(personas.org)
    evaluate(personas.org, now=dt.datetime(2024, 5, 15, 13, tzinfo=dt.UTC))

    with tenant_context(personas.org):
        assert Notification.objects.filter(member=personas.manager).count() == 2


def test_alert_to_rep_when_reps_see_own(personas, win_rule):
    personas.org.reps_see_own_alerts = True
    personas.org.save()

    evaluate(personas.org)

    with tenant_context(personas.org):
        [(event_type, title, _url)] = received(personas.rep1)
    assert (event_type, title) == (
        "coaching.alert_opened",
        "Win rate below the team median: Rita Rep",
    )


def test_alert_digest_preference(personas, win_rule):
    with tenant_context(personas.org):
        prefer(personas.manager, "coaching.alert_opened", "digest")

    evaluate(personas.org)

    with tenant_context(personas.org):
        notifications = Notification.objects.filter(member=personas.manager)
        assert notifications.count() == 2
        assert {n.in_app for n in notifications} == {False}
        digest_flags = {d.digest for n in notifications for d in n.deliveries.all()}
    assert digest_flags == {True}
