"""My leads: a constant number of queries, first touches and pages of 50."""

from __future__ import annotations

import datetime as dt

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from activity.models import Activity, Lead
from routing.models import ResponseTimer
from spm.tenancy import tenant_context
from tests.conftest import login

URL = "/o/acme/leads/mine/"


def _lead(org, owner, number: int, assigned_at: dt.datetime) -> Lead:
    """Create an assigned lead with an open SLA timer and two activities."""
    lead = Lead.objects.create(
        organization=org,
        owner=owner,
        first_name=f"Lead{number:02d}",
        assigned_at=assigned_at,
    )
    ResponseTimer.objects.create(
        organization=org,
        lead=lead,
        member=owner,
        assigned_at=assigned_at,
        due_at=assigned_at + dt.timedelta(hours=1),
        minutes=60,
        on_breach="reassign",
    )
    for minutes in (30, 12):
        Activity.objects.create(
            organization=org,
            type="call",
            owner=owner,
            lead=lead,
            occurred_at=assigned_at + dt.timedelta(minutes=minutes),
        )
    return lead


def _leads(personas, first: int, count: int) -> None:
    start = timezone.now() - dt.timedelta(days=2)
    with tenant_context(personas.org):
        for number in range(first, first + count):
            assigned_at = start + dt.timedelta(minutes=number)
            _lead(personas.org, personas.rep1, number, assigned_at)


def _get(client) -> tuple[int, str]:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(URL)
    assert response.status_code == 200
    return len(queries), response.content.decode()


def test_my_leads_queries_same_for_3_and_30(client, personas):
    login(client, personas.rep1)
    _leads(personas, 0, 3)
    few, few_text = _get(client)
    _leads(personas, 3, 27)

    many, many_text = _get(client)

    assert few_text.count("first touch after 12\xa0minutes") == 3
    assert many_text.count("first touch after 12\xa0minutes") == 30
    assert many == few


def test_my_leads_first_touch_is_earliest(client, personas):
    """Of activities 30 and 12 minutes after assignment, the 12 counts."""
    login(client, personas.rep1)
    _leads(personas, 0, 1)
    with tenant_context(personas.org):
        untouched = Lead.objects.create(
            organization=personas.org,
            owner=personas.rep1,
            first_name="Untouched",
            assigned_at=timezone.now() - dt.timedelta(hours=3, minutes=1),
        )

    _queries, text = _get(client)

    assert "first touch after 12\xa0minutes" in text
    assert "first touch after 30" not in text
    assert "waiting 3\xa0hours" in text
    assert untouched.first_name in text


def test_my_leads_pages_of_50(client, personas):
    login(client, personas.rep1)
    _leads(personas, 0, 51)

    _queries, first_page = _get(client)
    response = client.get(URL, {"page": 2})

    assert first_page.count("first touch after") == 50
    assert "Page 1 of 2" in first_page
    # Newest assignment first, so the oldest lead is alone on page 2.
    second_page = response.content.decode()
    assert second_page.count("first touch after") == 1
    assert "Lead00" in second_page
