"""The lead page, the fallback queue and My leads: access and query counts."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from activity.models import Activity, Lead
from routing import services
from routing.configuration import RuleSpec
from spm.tenancy import tenant_context
from tests.conftest import login
from tests.routing.conftest import make_pool, pending_lead, publish, publish_pool


def _routed_lead(org, **fields) -> Lead:
    lead = pending_lead(org, **fields)
    services.lead_route(lead_id=lead.pk)
    lead.refresh_from_db()
    return lead


@pytest.fixture
def leads(personas):
    """A lead of rep1 (routed by pool), one of rep4, and one in the queue."""
    org = personas.org
    with tenant_context(org):
        pool = make_pool(org, "round_robin", [personas.rep1])
        publish_pool(org, pool)
        rep1_lead = _routed_lead(org, first_name="Rita's", last_name="Lead")
        rep4_lead = Lead.objects.create(
            organization=org, owner=personas.rep4, first_name="Rex's", last_name="Lead"
        )
        publish(org, RuleSpec(name="Hold", action="fallback"))
        queued = _routed_lead(org, first_name="Queued", last_name="Lead")
    return {"rep1": rep1_lead, "rep4": rep4_lead, "queued": queued}


def _lead_url(lead: Lead) -> str:
    return f"/o/acme/leads/{lead.public_id}/"


@pytest.mark.parametrize(
    ("persona", "lead", "status"),
    [
        ("admin", "rep1", 200),
        ("admin", "rep4", 200),
        ("vp", "rep1", 200),
        ("manager", "rep1", 200),
        ("manager", "queued", 200),
        ("manager", "rep4", 404),
        ("rep1", "rep1", 200),
        ("rep1", "rep4", 404),
        ("rep1", "queued", 404),
        ("outsider", "rep1", 404),
    ],
)
def test_lead_page_access(client, personas, leads, persona, lead, status):
    login(client, getattr(personas, persona))

    assert client.get(_lead_url(leads[lead])).status_code == status


def test_lead_page_shows_decision_record(client, personas, leads):
    login(client, personas.manager)

    response = client.get(_lead_url(leads["rep1"]))

    text = response.content.decode()
    assert "Rita Rep" in text
    assert "1. Everyone" in text
    assert "rules version 1" in text
    assert "round robin" in text
    assert "<strong>chosen</strong>" in text
    assert "by the routing task" in text


def test_queue_lists_only_queued_leads(client, personas, leads):
    login(client, personas.manager)

    response = client.get("/o/acme/leads/queue/")

    assert response.status_code == 200
    text = response.content.decode()
    assert "Queued Lead" in text
    assert "rule Hold: fallback queue" in text
    assert "Rita&#x27;s Lead" not in text


@pytest.mark.parametrize(("persona", "status"), [("rep1", 404), ("admin", 200)])
def test_queue_is_for_managers_and_admins(client, personas, leads, persona, status):
    login(client, getattr(personas, persona))

    assert client.get("/o/acme/leads/queue/").status_code == status


def test_my_leads_lists_own_leads_with_response(client, personas, leads):
    org = personas.org
    lead = leads["rep1"]
    with tenant_context(org):
        Activity.objects.create(
            organization=org,
            type="call",
            owner=personas.rep1,
            lead=lead,
            occurred_at=lead.assigned_at + dt.timedelta(minutes=7),
        )
        waiting = _waiting_lead(org, personas.rep1)
    login(client, personas.rep1)

    response = client.get("/o/acme/leads/mine/")

    text = response.content.decode()
    assert "Rita&#x27;s Lead" in text
    assert "first touch after 7\xa0minutes" in text
    assert waiting.first_name in text
    assert "waiting 2\xa0hours" in text
    assert "Rex&#x27;s Lead" not in text


def _waiting_lead(org, owner) -> Lead:
    return Lead.objects.create(
        organization=org,
        owner=owner,
        first_name="Untouched",
        assigned_at=timezone.now() - dt.timedelta(hours=2, minutes=1),
    )


def _count_queries(client, url: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200
    return len(queries)


@pytest.mark.parametrize(
    ("persona", "url"),
    [("admin", "/o/acme/leads/queue/"), ("rep1", "/o/acme/leads/mine/")],
)
def test_list_queries_do_not_grow_with_leads(client, personas, leads, persona, url):
    login(client, getattr(personas, persona))
    few = _count_queries(client, url)
    org = personas.org
    with tenant_context(org):
        for number in range(20):
            _routed_lead(org, first_name=f"Queued {number}")
            _waiting_lead(org, personas.rep1)

    many = _count_queries(client, url)

    assert many == few


def test_lead_page_query_count(client, personas, leads, django_assert_max_num_queries):
    login(client, personas.manager)
    client.get(_lead_url(leads["rep1"]))

    # Session, user and membership (3); the lead, the members the manager
    # may see and the decision (3); the qualification and the merged
    # submissions (2); the response timers and the owner's first touch (2).
    # The changes of owner by hand, the reporting tree and the members for
    # the reassign form add 3, and the navigation bar's own reads 3 (with
    # the unread notifications).
    with django_assert_max_num_queries(16):
        client.get(_lead_url(leads["rep1"]))


@pytest.mark.parametrize("url", ["/o/acme/leads/queue/", "/o/acme/leads/mine/"])
def test_post_is_405(client, personas, url):
    login(client, personas.admin)

    assert client.post(url).status_code == 405


def test_rep_post_to_queue_is_404(client, personas):
    login(client, personas.rep1)

    assert client.post("/o/acme/leads/queue/").status_code == 404


def test_rep_sees_score_not_decision(client, personas, leads):
    login(client, personas.rep1)

    text = client.get(_lead_url(leads["rep1"])).content.decode()

    assert 'id="qualification"' in text
    assert 'id="sla-timers"' in text
    assert 'id="decision"' not in text
    assert 'id="assign-form"' not in text
    assert "Requalify" not in text


def test_my_leads_links_lead_pages(client, personas, leads):
    login(client, personas.rep1)

    text = client.get("/o/acme/leads/mine/").content.decode()

    assert f'href="{_lead_url(leads["rep1"])}"' in text
