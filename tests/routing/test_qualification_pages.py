"""Pages of qualification: the lead's score, requalify, and the scoring rules."""

from __future__ import annotations

import pytest

from activity.models import Lead
from routing.models import ScoringRule
from routing.qualification_services import scoring_rule_create
from spm.models import AuditLog
from spm.services import api_key_create
from spm.tenancy import tenant_context
from tests.conftest import login
from tests.routing.conftest import make_pool, make_rep, publish_pool


@pytest.fixture
def api_key(personas):
    _, key = api_key_create(organization=personas.org, name="intake")
    return key


def _post_lead(client, key, body) -> str:
    response = client.post(
        "/api/v1/leads/",
        body,
        content_type="application/json",
        headers={"authorization": f"Bearer {key}"},
    )
    assert response.status_code == 201
    return response.json()["id"]


def _rule(org, name, field, operator, value, points, kind="fit"):
    return scoring_rule_create(
        organization=org,
        actor=None,
        name=name,
        kind=kind,
        field=field,
        operator=operator,
        value=value,
        points=points,
    )


def test_lead_page_shows_score_parts_and_merged_submissions(
    client, personas, api_key, in_org
):
    _rule(personas.org, "industry=Software", "industry", "equals", "Software", 30)
    _rule(
        personas.org,
        "company size 200-1000",
        "company_size",
        "range",
        {"min": 200, "max": 1000},
        25,
    )
    _rule(
        personas.org,
        "visits >= 5",
        "custom.visits",
        "range",
        {"min": 5},
        17,
        kind="engagement",
    )
    lead_id = _post_lead(
        client,
        api_key,
        {
            "email": "ann@softco.example",
            "industry": "Software",
            "company_size": 250,
            "custom": {"visits": 7},
        },
    )
    _post_lead(client, api_key, {"email": "ANN@softco.example", "source": "webinar"})
    login(client, personas.admin)

    page = client.get(f"/o/acme/leads/{lead_id}/").content.decode()

    # 30 + 25 + 17 = 72, at or above the default MQL threshold of 50.
    assert (
        "72 = 30 industry=Software + 25 company size 200-1000 + 17 visits &gt;= 5"
        in page
    )
    assert "Marketing-qualified" in page
    assert "webinar" in page
    assert "Requalify" not in page


def test_requalify_button_routes_and_audits(
    client, personas, api_key, in_org, django_capture_on_commit_callbacks
):
    rep = make_rep(personas.org, "Solo")
    publish_pool(personas.org, make_pool(personas.org, "round_robin", [rep]))
    lead_id = _post_lead(client, api_key, {"email": "bob@mailinator.com"})
    login(client, personas.manager)
    page = client.get(f"/o/acme/leads/{lead_id}/").content.decode()
    assert "Disposable email address (mailinator.com)" in page
    assert "Requalify and route" in page

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/o/acme/leads/{lead_id}/requalify/")

    assert response.status_code == 302
    lead = Lead.objects.get(public_id=lead_id)
    assert (lead.routing_status, lead.owner) == (Lead.RoutingStatus.ASSIGNED, rep)
    entry = AuditLog.unscoped.get(action="lead.requalify")
    assert entry.actor == personas.manager.user


def test_admin_adds_edits_and_deletes_a_rule_with_audit(client, personas, in_org):
    login(client, personas.admin)
    form = {
        "name": "Mid-size",
        "kind": "fit",
        "field": "company_size",
        "operator": "range",
        "value": "200..1000",
        "points": "25",
        "is_active": "on",
    }

    assert client.post("/o/acme/leads/scoring/", form).status_code == 302
    rule = ScoringRule.objects.get()
    assert (rule.value, rule.points) == ({"min": "200", "max": "1000"}, 25)

    edit = f"/o/acme/leads/scoring/{rule.public_id}/"
    assert client.get(edit).status_code == 200
    assert client.post(edit, {**form, "points": "-5"}).status_code == 302
    rule.refresh_from_db()
    assert rule.points == -5

    assert client.post(f"{edit}delete/").status_code == 302
    assert not ScoringRule.objects.exists()
    actions = list(
        AuditLog.unscoped.filter(object_type="routing.scoringrule")
        .order_by("id")
        .values_list("action", "old", "new")
    )
    assert [a[0] for a in actions] == [
        "scoring_rule.create",
        "scoring_rule.update",
        "scoring_rule.delete",
    ]
    assert actions[1][1]["points"] == 25 and actions[1][2]["points"] == -5


def test_bad_condition_is_named_on_the_form(client, personas, in_org):
    login(client, personas.admin)
    form = {
        "name": "Broken",
        "kind": "fit",
        "field": "industry",
        "operator": "range",
        "value": "1..5",
        "points": "5",
    }

    response = client.post("/o/acme/leads/scoring/", form)

    assert response.status_code == 200
    assert (
        "Range applies to number fields only, and industry is a text field."
        in response.content.decode()
    )
    assert not ScoringRule.objects.exists()


def test_sample_lead_shows_its_parts(client, personas, in_org):
    _rule(personas.org, "industry=Software", "industry", "equals", "Software", 30)
    _rule(
        personas.org,
        "visits >= 5",
        "custom.visits",
        "range",
        {"min": 5},
        17,
        kind="engagement",
    )
    login(client, personas.admin)

    response = client.post(
        "/o/acme/leads/scoring/sample/",
        {"industry": "software", "custom": "visits=5, time_on_site=30"},
    )

    # 30 + 17 = 47; visits = 5 is inside [5, …).
    assert "47 = 30 industry=Software + 17 visits &gt;= 5" in response.content.decode()


def test_scoring_page_queries_do_not_grow_with_rules(
    client, personas, in_org, django_assert_max_num_queries
):
    for number in range(20):
        _rule(personas.org, f"rule {number}", "industry", "equals", "Software", 1)
    login(client, personas.admin)

    with django_assert_max_num_queries(12):
        assert client.get("/o/acme/leads/scoring/").status_code == 200


def test_other_organisation_rule_is_404(client, personas):
    with tenant_context(personas.other_org):
        rule = _rule(personas.other_org, "Theirs", "industry", "equals", "X", 1)
    login(client, personas.admin)

    assert client.get(f"/o/acme/leads/scoring/{rule.public_id}/").status_code == 404
