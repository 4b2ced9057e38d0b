"""Giving a lead to a rep by hand: from the fallback queue and between reps."""

from __future__ import annotations

import datetime as dt
import threading
from zoneinfo import ZoneInfo

import pytest
from django.db import connections
from django.utils import timezone

from activity.models import Activity, Lead
from compensation.services_crediting import lead_owners
from notifications.models import Notification
from routing import services, sla
from routing.configuration import RuleSpec
from routing.models import Reassignment, ResponseTimer
from routing.reassignment import ReassignmentError, lead_reassign
from spm.models import AuditLog
from spm.tenancy import tenant_context
from tests.conftest import login
from tests.routing.conftest import make_pool, pending_lead, publish

BERLIN = ZoneInfo("Europe/Berlin")
Status = ResponseTimer.Status


def berlin(day: int, hour: int, minute: int = 0) -> dt.datetime:
    """Return a moment of March 2024 in Berlin (19 March was a Tuesday)."""
    return dt.datetime(2024, 3, day, hour, minute, tzinfo=BERLIN)


@pytest.fixture
def clock(monkeypatch):
    class Clock:
        def set(self, moment: dt.datetime) -> None:
            monkeypatch.setattr(timezone, "now", lambda: moment.astimezone(dt.UTC))

    return Clock()


@pytest.fixture
def setup(acme, personas):
    """A pool of rep1 with a 15-minute SLA behind a rule, in Berlin."""
    acme.time_zone = "Europe/Berlin"
    acme.save()
    pool = make_pool(acme, "round_robin", [personas.rep1])
    pool.sla_minutes = 15
    pool.save()
    publish(acme, RuleSpec(name="Everyone", action="pool", pool=pool))
    return pool


def routed_lead(org, **fields) -> Lead:
    lead = pending_lead(org, **fields)
    services.lead_route(lead_id=lead.pk)
    lead.refresh_from_db()
    return lead


def manager_moves_to_rep2(lead: Lead, personas) -> None:
    """Max Manager gives rep1's lead to rep2."""
    lead_reassign(
        lead_id=lead.pk,
        member=personas.rep2,
        actor=personas.manager,
        expected_owner_id=personas.rep1.pk,
    )


def rep1_calls(lead: Lead, personas, moment: dt.datetime) -> None:
    Activity.objects.create(
        organization=lead.organization,
        type=Activity.Type.CALL,
        occurred_at=moment,
        owner=personas.rep1,
        lead=lead,
    )


def queued_lead(org) -> Lead:
    publish(org, RuleSpec(name="Hold", action="fallback"))
    return routed_lead(org, first_name="Queued", last_name="Lead")


def test_queued_lead_assigned_by_hand(acme, personas, clock):
    clock.set(berlin(19, 9))
    lead = queued_lead(acme)
    clock.set(berlin(19, 10))

    lead_reassign(
        lead_id=lead.pk,
        member=personas.rep2,
        actor=personas.manager,
        expected_owner_id=None,
        reason="Speaks German",
    )

    lead.refresh_from_db()
    assert lead.owner == personas.rep2
    assert lead.routing_status == Lead.RoutingStatus.ASSIGNED
    assert lead.assigned_at == berlin(19, 10)
    change = Reassignment.objects.get(lead=lead)
    assert change.from_member is None
    assert change.to_member == personas.rep2
    assert change.by == personas.manager
    assert change.reason == "Speaks German"
    entry = AuditLog.objects.get(action="routing.lead.assign")
    assert entry.old == {"owner": "fallback queue"}
    assert entry.new == {"owner": "Rob Rep", "reason": "Speaks German"}


def test_queued_lead_without_sla_gets_no_timer(acme, personas):
    lead = queued_lead(acme)

    lead_reassign(
        lead_id=lead.pk,
        member=personas.rep2,
        actor=personas.admin,
        expected_owner_id=None,
    )

    assert sla.lead_timers(lead) == []


def test_reassign_ends_open_timer(acme, personas, setup, clock):
    clock.set(berlin(19, 10))
    lead = routed_lead(acme)
    assert lead.owner == personas.rep1
    clock.set(berlin(19, 10, 5))

    manager_moves_to_rep2(lead, personas)

    first, second = sla.lead_timers(lead)
    assert first.member == personas.rep1
    assert first.status == Status.ENDED
    assert first.closed_at == berlin(19, 10, 5)
    assert first.handed_to == personas.rep2
    assert first.outcome == "reassigned by Max Manager before the SLA was due"
    # The pool's SLA moves with the lead: 15 business minutes from 10:05.
    assert second.member == personas.rep2
    assert second.status == Status.OPEN
    assert second.due_at == berlin(19, 10, 20)
    assert AuditLog.objects.get(action="routing.lead.reassign").old == {
        "owner": "Rita Rep"
    }


def test_reassign_after_touch_keeps_timer_met(acme, personas, setup, clock):
    clock.set(berlin(19, 10))
    lead = routed_lead(acme)
    rep1_calls(lead, personas, berlin(19, 10, 3))
    clock.set(berlin(19, 10, 5))

    manager_moves_to_rep2(lead, personas)

    first = sla.lead_timers(lead)[0]
    assert first.status == Status.MET
    assert first.first_touch_at == berlin(19, 10, 3)


def test_reassign_after_due_time_breaches(acme, personas, setup, clock):
    clock.set(berlin(19, 10))
    lead = routed_lead(acme)
    # A call after the 10:15 due time, and the sweeper has not run.
    rep1_calls(lead, personas, berlin(19, 10, 17))
    clock.set(berlin(19, 10, 20))

    manager_moves_to_rep2(lead, personas)

    first = sla.lead_timers(lead)[0]
    assert first.status == Status.BREACHED
    assert first.first_touch_at is None
    assert first.outcome == "no first touch in time, then reassigned by Max Manager"


def test_sweep_leaves_ended_timer_alone(acme, personas, setup, clock):
    clock.set(berlin(19, 10))
    lead = routed_lead(acme)
    clock.set(berlin(19, 10, 5))
    manager_moves_to_rep2(lead, personas)

    # rep1's timer was due at 10:15 but has ended; rep2's is due at 10:20.
    assert sla.response_timers_sweep(now=berlin(19, 10, 16)) == 0
    lead.refresh_from_db()
    assert lead.owner == personas.rep2


def test_notifications_reach_both_reps(
    acme, personas, setup, django_capture_on_commit_callbacks
):
    lead = routed_lead(acme)
    Notification.objects.all().delete()

    with django_capture_on_commit_callbacks(execute=True):
        manager_moves_to_rep2(lead, personas)

    assigned = Notification.objects.get(event__type="lead.assigned")
    assert assigned.member == personas.rep2
    previous_owner_notice = Notification.objects.get(event__type="lead.reassigned")
    assert previous_owner_notice.member == personas.rep1
    assert previous_owner_notice.event.title == f"Lead {lead} reassigned to Rob Rep"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("stale", "moved to Rita Rep while you were choosing"),
        ("same", "is already owned by Rita Rep"),
        ("converted", "is converted, so it keeps its owner"),
    ],
)
def test_reassign_rejected(acme, personas, setup, change, message):
    lead = routed_lead(acme)
    expected = personas.rep1.pk
    member = personas.rep2
    if change == "stale":
        expected = None
    elif change == "same":
        member = personas.rep1
    else:
        Lead.objects.filter(pk=lead.pk).update(status=Lead.Status.CONVERTED)

    with pytest.raises(ReassignmentError, match=message):
        lead_reassign(
            lead_id=lead.pk,
            member=member,
            actor=personas.admin,
            expected_owner_id=expected,
        )

    lead.refresh_from_db()
    assert lead.owner == personas.rep1
    assert not Reassignment.objects.exists()


def test_pending_lead_is_not_assigned_by_hand(acme, personas):
    lead = pending_lead(acme)

    with pytest.raises(ReassignmentError, match="still being routed"):
        lead_reassign(
            lead_id=lead.pk,
            member=personas.rep1,
            actor=personas.admin,
            expected_owner_id=None,
        )


def test_owner_history_includes_changes_by_hand(acme, personas, clock):
    clock.set(berlin(19, 9))
    pool = make_pool(acme, "round_robin", [personas.rep1])
    publish(acme, RuleSpec(name="Everyone", action="pool", pool=pool))
    lead = routed_lead(acme)
    clock.set(berlin(19, 10))
    manager_moves_to_rep2(lead, personas)
    clock.set(berlin(19, 11))
    lead_reassign(
        lead_id=lead.pk,
        member=personas.rep1,
        actor=personas.manager,
        expected_owner_id=personas.rep2.pk,
    )

    assert lead_owners([lead.pk]) == {
        lead.pk: [personas.rep1.pk, personas.rep2.pk, personas.rep1.pk]
    }


# Pages ------------------------------------------------------------------------


def _assign_url(lead: Lead) -> str:
    return f"/o/acme/leads/{lead.public_id}/assign/"


def test_queue_form_assigns_lead(client, personas):
    with tenant_context(personas.org):
        lead = queued_lead(personas.org)
    login(client, personas.manager)
    page = client.get("/o/acme/leads/queue/").content.decode()
    assert f'value="{personas.rep2.public_id}"' in page
    # Rex Rep reports to another manager, so Max may not give him leads.
    assert f'value="{personas.rep4.public_id}"' not in page

    response = client.post(
        _assign_url(lead),
        {"member": str(personas.rep2.public_id), "from_queue": "on"},
        follow=True,
    )

    assert response.redirect_chain[-1][0] == "/o/acme/leads/queue/"
    text = response.content.decode()
    assert f"Lead {lead} assigned to Rob Rep." in text
    assert "The queue is empty." in text
    with tenant_context(personas.org):
        lead.refresh_from_db()
    assert lead.owner == personas.rep2


def test_assign_query_count(client, personas, django_assert_max_num_queries):
    with tenant_context(personas.org):
        lead = queued_lead(personas.org)
    login(client, personas.admin)

    # Session, user and membership (3); the lead and the chosen member (2);
    # savepoint and release (2); the locked lead, its timers and its decision
    # (3); the lead's update, the change, the actor's user and the audit
    # entry (4); the follow-up sequences (1).
    with django_assert_max_num_queries(15):
        response = client.post(
            _assign_url(lead), {"member": str(personas.rep2.public_id)}
        )

    assert response.status_code == 302


def test_member_outside_tree_is_rejected(client, personas):
    with tenant_context(personas.org):
        lead = queued_lead(personas.org)
    login(client, personas.manager)

    response = client.post(
        _assign_url(lead), {"member": str(personas.rep4.public_id)}, follow=True
    )

    text = response.content.decode()
    assert (
        f"Rep: {personas.rep4.public_id} is not a member you can give leads to." in text
    )
    with tenant_context(personas.org):
        lead.refresh_from_db()
    assert lead.owner is None
    assert lead.routing_status == Lead.RoutingStatus.QUEUED


def test_stale_page_shows_error(client, personas):
    with tenant_context(personas.org):
        lead = queued_lead(personas.org)
        lead_reassign(
            lead_id=lead.pk,
            member=personas.rep1,
            actor=personas.admin,
            expected_owner_id=None,
        )
    login(client, personas.manager)

    # The form was read while the lead was queued: no expected owner.
    response = client.post(
        _assign_url(lead), {"member": str(personas.rep2.public_id)}, follow=True
    )

    assert "moved to Rita Rep while you were choosing" in response.content.decode()
    with tenant_context(personas.org):
        lead.refresh_from_db()
    assert lead.owner == personas.rep1


def test_lead_page_shows_history(client, personas):
    with tenant_context(personas.org):
        lead = queued_lead(personas.org)
        lead_reassign(
            lead_id=lead.pk,
            member=personas.rep1,
            actor=personas.admin,
            expected_owner_id=None,
            reason="Knows the account",
        )
    login(client, personas.manager)

    text = client.get(f"/o/acme/leads/{lead.public_id}/").content.decode()

    assert "Reassign to" in text
    assert f'name="expected_owner" value="{personas.rep1.public_id}"' in text
    assert "<td>fallback queue</td>" in text
    assert "<td>Knows the account</td>" in text


@pytest.mark.parametrize("persona", ["rep1", "outsider"])
def test_assign_is_404_for_rep_and_outsider(client, personas, persona):
    with tenant_context(personas.org):
        lead = queued_lead(personas.org)
    login(client, getattr(personas, persona))

    response = client.post(_assign_url(lead), {"member": str(personas.rep1.public_id)})

    assert response.status_code == 404
    with tenant_context(personas.org):
        assert not Reassignment.objects.exists()


def test_assign_other_org_lead_is_404(client, personas):
    with tenant_context(personas.other_org):
        lead = pending_lead(personas.other_org)
    login(client, personas.admin)

    response = client.post(_assign_url(lead), {"member": str(personas.rep1.public_id)})

    assert response.status_code == 404


def test_get_assign_is_405(client, personas):
    with tenant_context(personas.org):
        lead = queued_lead(personas.org)
    login(client, personas.admin)

    assert client.get(_assign_url(lead)).status_code == 405


# Concurrency ------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_two_managers_assign_one_lead_once(personas):
    with tenant_context(personas.org):
        lead = queued_lead(personas.org)
    barrier = threading.Barrier(2)
    outcomes: dict[str, str] = {}

    def assign(name: str, member) -> None:
        try:
            with tenant_context(personas.org):
                barrier.wait()
                lead_reassign(
                    lead_id=lead.pk,
                    member=member,
                    actor=personas.admin,
                    expected_owner_id=None,
                )
            outcomes[name] = "assigned"
        except ReassignmentError:
            outcomes[name] = "rejected"
        finally:
            connections.close_all()

    threads = [
        threading.Thread(target=assign, args=("rep1", personas.rep1)),
        threading.Thread(target=assign, args=("rep2", personas.rep2)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert sorted(outcomes.values()) == ["assigned", "rejected"]
    winner = next(name for name, outcome in outcomes.items() if outcome == "assigned")
    with tenant_context(personas.org):
        lead.refresh_from_db()
        assert lead.owner == getattr(personas, winner)
        assert Reassignment.objects.count() == 1
