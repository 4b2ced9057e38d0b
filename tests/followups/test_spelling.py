"""Follow-up pages spell enrol and enrolment the British way, as the product does."""

from __future__ import annotations

import re

from django.contrib.messages import get_messages
from django.urls import reverse

from followups import services
from tests.conftest import login
from tests.followups.conftest import MONDAY_10, make_deal, make_sequence

AMERICAN = re.compile(r"\b[Ee]nroll(s|ment|ments)?\b")


def _visible_text(response) -> str:
    """Return the page's text outside HTML tags, where ids and URLs live."""
    assert response.status_code == 200
    return re.sub(r"<[^>]*>", " ", response.content.decode())


def test_pages_say_enrolment(acme, personas, client):
    sequence = make_sequence(acme, [(0, "business_days", "task")])
    services.enroll(sequence=sequence, target=make_deal(personas), now=MONDAY_10)
    login(client, personas.manager)
    urls = [
        reverse("followups:list", args=["acme"]),
        reverse("followups:detail", args=["acme", sequence.public_id]),
    ]

    for url in urls:
        text = _visible_text(client.get(url))

        assert AMERICAN.findall(text) == [], url
        assert "Enrolments" in text, url


def test_empty_list_says_no_enrolments(acme, personas, client):
    login(client, personas.manager)

    text = _visible_text(client.get(reverse("followups:list", args=["acme"])))

    assert "No enrolments yet." in text


def test_rep_page_says_enrolments(acme, personas, client):
    login(client, personas.rep1)

    text = _visible_text(client.get(reverse("followups:mine", args=["acme"])))

    assert AMERICAN.findall(text) == []
    assert "each of your enrolments" in text


def test_unenrol_message_says_enrolment(acme, personas, client):
    sequence = make_sequence(acme, [(0, "business_days", "task")])
    enrollment = services.enroll(
        sequence=sequence, target=make_deal(personas), now=MONDAY_10
    )
    login(client, personas.manager)
    url = reverse(
        "followups:unenroll", args=["acme", sequence.public_id, enrollment.public_id]
    )

    response = client.post(url)

    assert response.status_code == 302
    texts = [str(message) for message in get_messages(response.wsgi_request)]
    assert texts == ["Enrolment removed from the sequence."]
