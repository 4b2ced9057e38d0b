"""Sequence results and enrollments, manual enrolment, a rep's due follow-ups."""

from __future__ import annotations

import datetime as dt

from django.urls import reverse
from django.utils import timezone

from followups import services
from followups.models import Enrollment, Sequence
from spm.models import AuditLog
from tests.conftest import login
from tests.followups.conftest import MONDAY_10, make_deal, make_sequence

TASK_ONE = [(0, "business_days", "task")]


def enrol_with_outcome(sequence, deal, status: str, reason: str = "") -> Enrollment:
    enrollment = services.enroll(sequence=sequence, target=deal, now=MONDAY_10)
    Enrollment.objects.filter(pk=enrollment.pk).update(
        status=status, exit_reason=reason
    )
    return enrollment


def test_detail_shows_results_by_hand(
    acme, personas, client, django_assert_max_num_queries
):
    sequence = make_sequence(acme, TASK_ONE)
    outcomes = [
        ("active", ""),
        ("finished", ""),
        ("exited", "replied"),
        ("exited", "replied"),
        ("exited", "manual"),
    ]
    for number, (status, reason) in enumerate(outcomes):
        deal = make_deal(personas, email=f"c{number}@initech.test")
        enrol_with_outcome(sequence, deal, status, reason)
    # rep4 reports to another manager, so Max Manager's counts leave it out.
    hidden = make_deal(personas, owner=personas.rep4, email="hidden@initech.test")
    enrol_with_outcome(sequence, hidden, "exited", "replied")
    login(client, personas.manager)
    url = reverse("followups:detail", args=["acme", sequence.public_id])

    with django_assert_max_num_queries(16):
        response = client.get(url)

    assert response.status_code == 200
    results = response.context["results"]
    assert results["enrolled"] == 5
    assert results["active"] == 1
    assert results["finished"] == 1
    assert results["exited"] == 3
    assert results["replied"] == 2
    # 2 replies of 5 enrollments.
    assert results["reply_rate"] == 40.0
    assert "40.0%" in response.content.decode()
    assert len(response.context["enrollments"]) == 5


def test_admin_sees_every_rep_in_results(acme, personas, client):
    sequence = make_sequence(acme, TASK_ONE)
    enrol_with_outcome(sequence, make_deal(personas), "exited", "replied")
    deal4 = make_deal(personas, owner=personas.rep4, email="r4@initech.test")
    enrol_with_outcome(sequence, deal4, "finished")
    login(client, personas.admin)

    response = client.get(
        reverse("followups:detail", args=["acme", sequence.public_id])
    )

    assert response.context["results"]["enrolled"] == 2
    assert response.context["results"]["reply_rate"] == 50.0


def test_results_without_enrollments_have_no_rate(acme, personas, client):
    sequence = make_sequence(acme, TASK_ONE)
    login(client, personas.manager)

    response = client.get(
        reverse("followups:detail", args=["acme", sequence.public_id])
    )

    assert response.context["results"]["enrolled"] == 0
    assert response.context["results"]["reply_rate"] is None


def test_other_organisations_sequence_is_404(personas, client):
    other = Sequence.unscoped.create(organization=personas.other_org, name="Globex")
    login(client, personas.manager)

    for name in ("followups:detail", "followups:edit"):
        response = client.get(reverse(name, args=["acme", other.public_id]))
        assert response.status_code == 404
    response = client.post(
        reverse("followups:enroll", args=["acme", other.public_id]), {}
    )
    assert response.status_code == 404


def test_manual_enrol_and_unenrol_are_audited(acme, personas, client):
    sequence = make_sequence(acme, TASK_ONE)
    deal = make_deal(personas)
    login(client, personas.manager)
    detail = reverse("followups:detail", args=["acme", sequence.public_id])

    response = client.post(
        reverse("followups:enroll", args=["acme", sequence.public_id]),
        {"target": f"deal:{deal.public_id}"},
    )

    assert response.status_code == 302
    assert response["Location"] == detail
    enrollment = Enrollment.objects.get()
    assert enrollment.deal == deal
    assert enrollment.member == personas.rep1
    assert enrollment.status == "active"
    enrolled = AuditLog.unscoped.get(action="followups.enroll")
    assert enrolled.actor == personas.manager.user
    assert enrolled.new["target"] == f"deal:{deal.pk}"

    response = client.post(
        reverse(
            "followups:unenroll",
            args=["acme", sequence.public_id, enrollment.public_id],
        )
    )

    assert response.status_code == 302
    enrollment.refresh_from_db()
    assert enrollment.status == "exited"
    assert enrollment.exit_reason == "manual"
    unenrolled = AuditLog.unscoped.get(action="followups.unenroll")
    assert unenrolled.old["status"] == "active"
    assert unenrolled.new["status"] == "exited"


def test_enrol_twice_names_the_deal(acme, personas, client):
    sequence = make_sequence(acme, TASK_ONE)
    deal = make_deal(personas)
    services.enroll(sequence=sequence, target=deal)
    login(client, personas.manager)

    response = client.post(
        reverse("followups:enroll", args=["acme", sequence.public_id]),
        {"target": f"deal:{deal.public_id}"},
    )

    assert response.status_code == 400
    assert response.context["enroll_form"].errors["target"] == [
        "Initech renewal is already in this sequence."
    ]
    assert Enrollment.objects.count() == 1


def test_enrol_rejects_deal_of_unseen_rep(acme, personas, client):
    sequence = make_sequence(acme, TASK_ONE)
    deal = make_deal(personas, owner=personas.rep4)
    login(client, personas.manager)

    response = client.post(
        reverse("followups:enroll", args=["acme", sequence.public_id]),
        {"target": f"deal:{deal.public_id}"},
    )

    assert response.status_code == 400
    [message] = response.context["enroll_form"].errors["target"]
    assert f"deal:{deal.public_id}" in message
    assert Enrollment.objects.count() == 0


def test_unenrol_of_unseen_rep_is_404(acme, personas, client):
    sequence = make_sequence(acme, TASK_ONE)
    deal = make_deal(personas, owner=personas.rep4)
    enrollment = services.enroll(sequence=sequence, target=deal)
    login(client, personas.manager)

    response = client.post(
        reverse(
            "followups:unenroll",
            args=["acme", sequence.public_id, enrollment.public_id],
        )
    )

    assert response.status_code == 404
    enrollment.refresh_from_db()
    assert enrollment.status == "active"


def test_my_followups_lists_steps_due_today(
    acme, personas, client, django_assert_max_num_queries
):
    sequence = make_sequence(
        acme,
        [{"delay_amount": 0, "action": "task", "subject": "Call {{ first_name }}"}],
    )
    now = timezone.now()
    due = services.enroll(sequence=sequence, target=make_deal(personas))
    later = services.enroll(
        sequence=sequence, target=make_deal(personas, email="later@initech.test")
    )
    theirs = services.enroll(
        sequence=sequence,
        target=make_deal(personas, owner=personas.rep2, email="rob@initech.test"),
    )
    Enrollment.objects.filter(pk__in=[due.pk, theirs.pk]).update(next_due_at=now)
    # Three days on is never the same local day.
    Enrollment.objects.filter(pk=later.pk).update(
        next_due_at=now + dt.timedelta(days=3)
    )
    login(client, personas.rep1)

    with django_assert_max_num_queries(12):
        response = client.get(reverse("followups:mine", args=["acme"]))

    assert response.status_code == 200
    assert [enrollment.pk for enrollment in response.context["due"]] == [due.pk]
    assert response.context["due"][0].next_step_subject == "Call Pat"
    assert "Call Pat" in response.content.decode()
