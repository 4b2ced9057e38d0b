"""Qualification at intake: point scoring, disqualification, duplicates, requalify."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from django.db import connection, connections
from django.utils import timezone

from activity.models import Account, Lead
from routing.models import (
    Assignment,
    LeadQualification,
    LeadSubmission,
    QualificationSettings,
)
from routing.qualification import describe_score, duplicate_find_locked, phone_key
from routing.qualification_services import (
    NotDisqualified,
    lead_requalify,
    scoring_rule_create,
)
from spm.models import AuditLog
from spm.services import api_key_create
from spm.tenancy import tenant_context
from tests.measurement.builders import make_deal
from tests.routing.conftest import make_pool, make_rep, publish_pool

URL = "/api/v1/leads/"


@pytest.fixture
def api_key(personas):
    _, key = api_key_create(organization=personas.org, name="intake")
    return key


def _post(client, key, body):
    return client.post(
        URL,
        body,
        content_type="application/json",
        headers={"authorization": f"Bearer {key}"},
    )


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


def _three_rules(org):
    _rule(org, "industry=Software", "industry", "equals", "Software", 30)
    _rule(
        org,
        "company size 200-1000",
        "company_size",
        "range",
        {"min": 200, "max": 1000},
        25,
    )
    _rule(
        org, "visits >= 5", "custom.visits", "range", {"min": 5}, 17, kind="engagement"
    )


def _qualification(org, lead_id) -> LeadQualification:
    with tenant_context(org):
        return LeadQualification.objects.select_related("lead").get(
            lead__public_id=lead_id
        )


@pytest.fixture
def routed(personas, in_org):
    """One rep in one pool takes every lead that is routed."""
    rep = make_rep(personas.org, "Solo")
    publish_pool(personas.org, make_pool(personas.org, "round_robin", [rep]))
    return rep


def test_three_matching_rules_sum_with_their_parts(client, personas, api_key, in_org):
    _three_rules(personas.org)
    # A rule that does not match adds nothing.
    _rule(personas.org, "country=FR", "country", "equals", "FR", 40)

    body = _post(
        client,
        api_key,
        {
            "email": "ann@softco.example",
            "industry": "software",
            "company_size": 250,
            "custom": {"visits": 7},
        },
    ).json()

    qualification = _qualification(personas.org, body["id"])
    # 30 + 25 + 17 = 72; fit 30 + 25 = 55, engagement 17.
    assert (qualification.score, qualification.fit, qualification.engagement) == (
        72,
        55,
        17,
    )
    assert qualification.parts == [
        {
            "rule": "industry=Software",
            "field": "industry",
            "value": "software",
            "points": 30,
        },
        {
            "rule": "company size 200-1000",
            "field": "company_size",
            "value": "250",
            "points": 25,
        },
        {"rule": "visits >= 5", "field": "custom.visits", "value": "7", "points": 17},
    ]
    assert describe_score(72, qualification.parts) == (
        "72 = 30 industry=Software + 25 company size 200-1000 + 17 visits >= 5"
    )


def test_negative_points_subtract(client, personas, api_key, in_org):
    _rule(personas.org, "industry=Software", "industry", "equals", "Software", 30)
    _rule(personas.org, "student", "custom.role", "equals", "student", -40)

    body = _post(
        client,
        api_key,
        {
            "email": "s@uni.example",
            "industry": "Software",
            "custom": {"role": "Student"},
        },
    ).json()

    # 30 - 40 = -10
    qualification = _qualification(personas.org, body["id"])
    assert qualification.score == -10
    assert (
        describe_score(-10, qualification.parts)
        == "-10 = 30 industry=Software - 40 student"
    )


@pytest.mark.parametrize(
    ("size", "status"),
    [(99, "new"), (100, "mql"), (199, "mql"), (200, "sql")],
)
def test_score_at_a_threshold_is_qualified(
    client, personas, api_key, in_org, size, status
):
    QualificationSettings.objects.create(
        organization=personas.org, mql_threshold=50, sql_threshold=80
    )
    # 49 points for 1-99 employees, 50 for 100-199 (exactly MQL), 80 for
    # 200+ (exactly SQL).
    _rule(personas.org, "small", "company_size", "range", {"min": 1, "max": 100}, 49)
    _rule(personas.org, "mid", "company_size", "range", {"min": 100, "max": 200}, 50)
    _rule(personas.org, "large", "company_size", "range", {"min": 200}, 80)

    body = _post(
        client, api_key, {"email": "x@co.example", "company_size": size}
    ).json()

    assert _qualification(personas.org, body["id"]).status == status


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"email": "bob@mailinator.com"}, "Disposable email address (mailinator.com)"),
        ({"email": "bob@rival.example"}, "Competitor domain (rival.example)"),
        (
            {"email": "bob@x.example", "domain": "https://www.rival.example/"},
            "Competitor domain (rival.example)",
        ),
        (
            {"email": "bob@x.example", "custom": {"job": "Recruiter"}},
            "Disqualify rule: recruiters (custom.job equals recruiter)",
        ),
    ],
)
def test_disqualified_lead_kept_unrouted(
    client,
    personas,
    api_key,
    routed,
    django_capture_on_commit_callbacks,
    fields,
    reason,
):
    QualificationSettings.objects.create(
        organization=personas.org, competitor_domains=["rival.example"]
    )
    _rule(
        personas.org,
        "recruiters",
        "custom.job",
        "equals",
        "recruiter",
        0,
        kind="disqualify",
    )

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        body = _post(client, api_key, fields).json()

    assert callbacks == []
    qualification = _qualification(personas.org, body["id"])
    assert qualification.status == "disqualified"
    assert qualification.reason == reason
    lead = qualification.lead
    assert lead.status == Lead.Status.DISQUALIFIED
    assert lead.routing_status == Lead.RoutingStatus.NOT_ROUTED
    assert not Assignment.objects.filter(lead=lead).exists()


def test_requalify_routes_the_lead_and_audits(
    client, personas, api_key, routed, django_capture_on_commit_callbacks
):
    body = _post(client, api_key, {"email": "bob@yopmail.com"}).json()
    lead = _qualification(personas.org, body["id"]).lead

    with django_capture_on_commit_callbacks(execute=True):
        lead_requalify(lead_id=lead.pk, actor=personas.admin.user)

    lead.refresh_from_db()
    assert lead.status == Lead.Status.NEW
    assert lead.routing_status == Lead.RoutingStatus.ASSIGNED
    assert lead.owner == routed
    qualification = _qualification(personas.org, body["id"])
    assert (qualification.status, qualification.reason) == ("new", "")
    [entry] = AuditLog.unscoped.filter(action="lead.requalify")
    assert entry.old == {
        "status": "disqualified",
        "reason": "Disposable email address (yopmail.com)",
    }
    assert entry.new == {"status": "new", "reason": ""}
    with pytest.raises(NotDisqualified):
        lead_requalify(lead_id=lead.pk, actor=None)


def test_duplicate_email_in_other_case_merges(
    client, personas, api_key, routed, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        first = _post(
            client, api_key, {"email": "Ann@Co.example", "source": "ads"}
        ).json()
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = _post(
            client, api_key, {"email": "ANN@co.EXAMPLE", "source": "webinar"}
        )

    assert response.status_code == 201
    second = response.json()
    assert second["id"] == first["id"]
    assert second["duplicate_of"] == first["id"]
    assert callbacks == []
    assert Lead.objects.count() == 1
    assert Assignment.objects.count() == 1
    lead = Lead.objects.get()
    assert lead.owner == routed
    [submission] = LeadSubmission.objects.all()
    assert submission.lead == lead
    assert (submission.source, submission.matched_by) == ("webinar", "email")
    assert submission.fields["email"] == "ann@co.example"


def test_duplicate_phone_merges(client, personas, api_key, in_org):
    first = _post(
        client, api_key, {"email": "a@one.example", "phone": "+49 (711) 400-1"}
    ).json()
    second = _post(
        client, api_key, {"email": "b@two.example", "phone": "+49 711 4001"}
    ).json()
    # Without the "+" the digits are another key: not a duplicate.
    third = _post(
        client, api_key, {"email": "c@three.example", "phone": "49 711 4001"}
    ).json()

    assert second["duplicate_of"] == first["id"]
    assert "duplicate_of" not in third
    assert LeadSubmission.objects.get().matched_by == "phone"
    assert phone_key("+49 (711) 400-1") == "+497114001"
    assert phone_key("0711 / 400 1") == "07114001"


@pytest.mark.parametrize(
    ("age", "merged"),
    [
        (dt.timedelta(days=90), True),
        (dt.timedelta(days=90, microseconds=1), False),
    ],
)
def test_duplicate_window_boundary(personas, in_org, age, merged):
    # The default window is 90 days: a lead received exactly 90 days
    # before the new one still counts (the window's start is included).
    now = timezone.now()
    lead = Lead.objects.create(
        organization=personas.org, email="w@co.example", received_at=now - age
    )

    found = duplicate_find_locked(
        organization=personas.org, fields={"email": "W@co.example"}, now=now
    )

    if merged:
        assert found is not None
        assert found.lead == lead
    else:
        assert found is None


def test_duplicate_window_is_configurable(client, personas, api_key, in_org):
    QualificationSettings.objects.create(
        organization=personas.org, duplicate_window_days=7
    )
    first = _post(client, api_key, {"email": "w@co.example"}).json()
    eight_days_ago = timezone.now() - dt.timedelta(days=8)
    Lead.objects.filter(public_id=first["id"]).update(received_at=eight_days_ago)

    second = _post(client, api_key, {"email": "w@co.example"}).json()

    assert "duplicate_of" not in second
    assert Lead.objects.count() == 2


@pytest.mark.parametrize("status", [Lead.Status.CONVERTED, Lead.Status.DISQUALIFIED])
def test_closed_lead_is_not_a_duplicate_target(
    client, personas, api_key, in_org, status
):
    first = _post(client, api_key, {"email": "c@co.example"}).json()
    Lead.objects.filter(public_id=first["id"]).update(status=status)

    second = _post(client, api_key, {"email": "c@co.example"}).json()

    assert "duplicate_of" not in second
    assert Lead.objects.count() == 2


@pytest.mark.django_db(transaction=True)
def test_racing_duplicates_make_one_lead(personas, api_key):
    if connection.vendor != "postgresql":
        pytest.skip("Concurrent transactions need PostgreSQL")
    from django.test import Client

    barrier = threading.Barrier(2)
    responses = []

    def post() -> None:
        try:
            barrier.wait()
            responses.append(_post(Client(), api_key, {"email": "race@co.example"}))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=post) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert [r.status_code for r in responses] == [201, 201]
    ids = {r.json()["id"] for r in responses}
    assert len(ids) == 1
    assert sum("duplicate_of" in r.json() for r in responses) == 1
    with tenant_context(personas.org):
        assert Lead.objects.count() == 1
        assert LeadSubmission.objects.count() == 1


def test_customer_domain_goes_to_account_owner(
    client, personas, api_key, routed, django_capture_on_commit_callbacks
):
    owner = make_rep(personas.org, "Owner")
    account = Account.objects.create(
        organization=personas.org,
        name="Bosch",
        domain="https://www.bosch.de/",
        owner=owner,
    )
    won = personas.stages["Won"]
    deal = make_deal(owner, won, "1000.00")
    deal.account = account
    deal.save(update_fields=["account"])

    with django_capture_on_commit_callbacks(execute=True):
        body = _post(client, api_key, {"email": "kim@bosch.de"}).json()

    qualification = _qualification(personas.org, body["id"])
    assert qualification.customer_account == account
    assert qualification.status == "new"
    assignment = Assignment.objects.get(lead=qualification.lead)
    assert assignment.member == owner
    assert assignment.reason == "existing customer: owner of account Bosch"


def test_inactive_customer_owner_leaves_it_to_the_rules(
    client, personas, api_key, routed, django_capture_on_commit_callbacks
):
    owner = make_rep(personas.org, "Gone", is_active=False)
    account = Account.objects.create(
        organization=personas.org, name="Bosch", domain="bosch.de", owner=owner
    )
    deal = make_deal(owner, personas.stages["Won"], "1000.00")
    deal.account = account
    deal.save(update_fields=["account"])

    with django_capture_on_commit_callbacks(execute=True):
        body = _post(client, api_key, {"email": "kim@bosch.de"}).json()

    assignment = Assignment.objects.get(lead__public_id=body["id"])
    assert assignment.member == routed
    assert assignment.trace[0]["detail"] == (
        "customer account Bosch: owner Gone is no longer an active member"
    )


def test_account_without_won_deal_is_not_a_customer(client, personas, api_key, routed):
    Account.objects.create(
        organization=personas.org,
        name="Lidl",
        domain="lidl.de",
        owner=make_rep(personas.org, "Owner"),
    )

    body = _post(client, api_key, {"email": "kim@lidl.de"}).json()

    assert _qualification(personas.org, body["id"]).customer_account is None


def _intake(client, api_key, email):
    response = _post(client, api_key, {"email": email, "industry": "Software"})
    assert response.status_code == 201


def test_intake_queries_do_not_grow_with_rules(
    client, personas, api_key, in_org, django_assert_num_queries
):
    from django.test.utils import CaptureQueriesContext

    _rule(personas.org, "rule 0", "industry", "equals", "Software", 1)
    # The first request of the API key also records its first use.
    _intake(client, api_key, "warm@co.example")
    # Each new rule changes the configuration, so both measured requests
    # read the rules again.
    _rule(personas.org, "rule 1", "industry", "equals", "Software", 1)
    with CaptureQueriesContext(connection) as with_two:
        _intake(client, api_key, "q1@co.example")
    for number in range(2, 20):
        _rule(personas.org, f"rule {number}", "industry", "equals", "Software", 1)

    with django_assert_num_queries(len(with_two)):
        _intake(client, api_key, "q2@co.example")

    lead = Lead.objects.get(email="q2@co.example")
    # 20 rules of 1 point each.
    assert _qualification(personas.org, lead.public_id).score == 20
