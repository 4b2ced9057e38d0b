"""The sequences page and the public unsubscribe link."""

from __future__ import annotations

from django.urls import reverse

from followups import services
from followups.models import Enrollment, OptOut
from tests.conftest import login
from tests.followups.conftest import MONDAY_10, make_deal, make_sequence

EMAIL_ONE = [(0, "business_days", "email")]


def test_list_shows_counts_and_reply_rate(
    acme, personas, client, django_assert_max_num_queries
):
    sequence = make_sequence(acme, EMAIL_ONE)
    outcomes = [
        ("finished", ""),
        ("exited", "replied"),
        ("exited", "replied"),
        ("active", ""),
    ]
    for number, (status, reason) in enumerate(outcomes):
        enrollment = services.enroll(
            sequence=sequence,
            target=make_deal(personas, email=f"b{number}@initech.test"),
            now=MONDAY_10,
        )
        Enrollment.objects.filter(pk=enrollment.pk).update(
            status=status, exit_reason=reason
        )
    login(client, personas.manager)

    with django_assert_max_num_queries(12):
        response = client.get(reverse("followups:list", args=["acme"]))

    assert response.status_code == 200
    sequence_row = response.context["sequences"][0]
    assert sequence_row.enrolled == 4
    assert sequence_row.finished == 1
    assert sequence_row.replied == 2
    # 2 replies of 4 enrollments.
    assert sequence_row.reply_rate == 50.0
    assert "50.0%" in response.content.decode()
    assert len(response.context["enrollments"]) == 4


def test_manager_counts_only_own_reps(acme, personas, client):
    sequence = make_sequence(acme, EMAIL_ONE)
    # rep4 reports to another manager, so Max Manager does not see it.
    services.enroll(sequence=sequence, target=make_deal(personas, owner=personas.rep4))
    login(client, personas.manager)

    response = client.get(reverse("followups:list", args=["acme"]))

    assert response.context["sequences"][0].enrolled == 0
    assert list(response.context["enrollments"]) == []


def test_unsubscribe_post_opts_out_and_exits(acme, personas, client):
    deal = make_deal(personas)
    enrollment = services.enroll(
        sequence=make_sequence(acme, EMAIL_ONE), target=deal, now=MONDAY_10
    )
    token = services.unsubscribe_token(acme.pk, "pat@initech.test")
    url = reverse("followups-public:unsubscribe", args=[token])

    assert client.get(url).status_code == 200
    assert OptOut.objects.count() == 0
    response = client.post(url)

    assert response.status_code == 200
    opt_out = OptOut.objects.get()
    assert opt_out.email == "pat@initech.test"
    assert opt_out.reason == "unsubscribed"
    enrollment.refresh_from_db()
    assert enrollment.exit_reason == "opted_out"


def test_forged_unsubscribe_token_is_rejected(acme, client):
    token = services.unsubscribe_token(acme.pk, "pat@initech.test")
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")

    response = client.post(reverse("followups-public:unsubscribe", args=[forged]))

    assert response.status_code == 400
    assert OptOut.objects.count() == 0
