"""Routing a lead to a rep enrols it in the lead-assignment follow-up sequences."""

from __future__ import annotations

from followups.models import Enrollment, Sequence
from tests.followups.conftest import make_sequence
from tests.routing.conftest import make_pool, make_rep, publish_pool, route_new_lead


def test_assigned_lead_is_enrolled(acme):
    rep = make_rep(acme, "Solo")
    publish_pool(acme, make_pool(acme, "round_robin", [rep]))
    make_sequence(
        acme,
        [(1, "business_days", "email")],
        name="New lead",
        trigger=Sequence.Trigger.LEAD_ASSIGNED,
    )
    make_sequence(acme, [(1, "business_days", "email")], name="By hand")

    assignment = route_new_lead(acme)

    [enrollment] = Enrollment.objects.filter(lead=assignment.lead)
    assert enrollment.sequence.name == "New lead"
    assert enrollment.member == rep


def test_queued_lead_is_not_enrolled(acme):
    make_sequence(
        acme,
        [(1, "business_days", "email")],
        trigger=Sequence.Trigger.LEAD_ASSIGNED,
    )

    assignment = route_new_lead(acme)

    assert assignment.member is None
    assert not Enrollment.objects.filter(lead=assignment.lead).exists()
