import datetime as dt

import pytest
from django.core.management import CommandError, call_command

from spm.models import ApiKey
from spm.services import api_key_create, api_key_lookup
from tests.conftest import login
from tests.factories import TeamFactory
from tests.measurement.builders import make_activity, make_deal

D = dt.date
METRICS_URL = "/api/v1/metrics/reps/"
DEALS_URL = "/api/v1/deals/"
Q1 = {"start": "2024-01-01", "end": "2024-04-01"}


@pytest.fixture
def acme_key(personas):
    _api_key, key = api_key_create(organization=personas.org, name="test")
    return key


@pytest.fixture
def globex_key(personas):
    _api_key, key = api_key_create(organization=personas.other_org, name="test")
    return key


def _get(client, url, key, **params):
    return client.get(url, params, HTTP_AUTHORIZATION=f"Bearer {key}")


@pytest.fixture
def q1_deals(personas, in_org):
    stages = personas.stages
    make_deal(personas.rep1, stages["Won"], "1000.00", D(2024, 1, 5), D(2024, 1, 1))
    make_deal(personas.rep1, stages["Won"], "3000.00", D(2024, 2, 5), D(2024, 1, 1))
    make_deal(personas.rep1, stages["Lost"], "0", D(2024, 3, 5), D(2024, 1, 1))
    make_deal(personas.rep1, stages["Engaging"], "2000.00", D(2024, 6, 5))
    make_activity(personas.rep1, dt.datetime(2024, 1, 9, 12, tzinfo=dt.UTC))
    return personas


def test_rep_metrics_values(client, q1_deals, acme_key):
    response = _get(client, METRICS_URL, acme_key, **Q1)

    assert response.status_code == 200
    by_name = {row["name"]: row for row in response.json()}
    assert set(by_name) == {"Remy Rep", "Rex Rep", "Rita Rep", "Rob Rep"}
    rita = by_name["Rita Rep"]
    assert rita == {
        "member": str(q1_deals.rep1.public_id),
        "name": "Rita Rep",
        "email": "rita.rep@acme.test",
        "team": "East",
        "won": 2,
        "lost": 1,
        "bookings": "4000.00",
        "credited_units": "0.00",
        "win_rate": 66.7,
        "avg_cycle_days": 19.5,
        "open_deals": 1,
        "pipeline_value": "2000.00",
        "weighted_pipeline": "1000.00",
        "activities": {"call": 1, "email": 0, "meeting": 0, "note": 0, "task": 0},
        # No quota is set, and the quarter has ended, so pace is 100% and the
        # forecast is the bookings.
        "quota": None,
        "attainment": None,
        "pace": 100.0,
        "coverage": None,
        "coverage_target": None,
        "coverage_status": "no quota",
        "forecast": "4000.00",
        # The deals were created with no stage history, so no stage was entered.
        "stage_conversion": {
            "pipeline": "Sales",
            "stages": [
                {"stage": "Prospecting", "entered": 0, "progressed": 0, "rate": None},
                {"stage": "Engaging", "entered": 0, "progressed": 0, "rate": None},
            ],
        },
    }


def test_rep_without_data_is_null(client, q1_deals, acme_key):
    response = _get(client, METRICS_URL, acme_key, **Q1)
    rob = next(row for row in response.json() if row["name"] == "Rob Rep")

    assert rob["win_rate"] is None
    assert rob["avg_cycle_days"] is None
    assert rob["bookings"] == "0.00"
    assert rob["team"] == "East"


def test_api_matches_dashboard_table(client, q1_deals, acme_key):
    api_rows = _get(client, METRICS_URL, acme_key, **Q1).json()
    login(client, q1_deals.admin)
    page = client.get("/o/acme/team/?kind=custom&start=2024-01-01&end=2024-04-01")

    table = {row.member.display_name: row.card for row, _cells in page.context["table"]}
    for row in api_rows:
        card = table[row["name"]]
        assert row["bookings"] == str(card.bookings)
        assert row["won"] == card.won
        assert row["lost"] == card.lost


def test_key_of_one_org_never_returns_another(client, q1_deals, globex_key):
    response = _get(client, METRICS_URL, globex_key, **Q1)

    assert [row["name"] for row in response.json()] == ["Oona Rep"]


def test_bad_key_is_401(client, personas):
    response = _get(client, METRICS_URL, "attn_0000_not-a-key", **Q1)

    assert response.status_code == 401


def test_revoked_key_is_401(client, personas, acme_key):
    ApiKey.unscoped.update(revoked_at=dt.datetime(2024, 1, 1, tzinfo=dt.UTC))

    assert _get(client, METRICS_URL, acme_key, **Q1).status_code == 401


def test_no_credentials_is_rejected(client, personas):
    response = client.get(METRICS_URL, Q1)

    assert response.status_code in (401, 403)


@pytest.mark.parametrize(
    ("params", "field", "reason"),
    [
        ({"end": "2024-04-01"}, "start", "required"),
        ({"start": "2024-01-01"}, "end", "required"),
        ({"start": "2024-02-30", "end": "2024-04-01"}, "start", "Date has wrong"),
        ({"start": "2024-04-01", "end": "2024-04-01"}, "end", "after the start"),
        ({"start": "2024-04-01", "end": "2024-01-01"}, "end", "after the start"),
        ({"start": "1800-01-01", "end": "1800-02-01"}, "start", "out of range"),
        ({**Q1, "team": "not-a-uuid"}, "team", "valid UUID"),
    ],
)
def test_invalid_query_is_400(client, personas, acme_key, params, field, reason):
    response = _get(client, METRICS_URL, acme_key, **params)

    assert response.status_code == 400
    assert reason in " ".join(response.json()[field])


def test_long_period_is_accepted(client, q1_deals, acme_key):
    response = _get(client, METRICS_URL, acme_key, start="1900-01-01", end="2100-01-01")

    assert response.status_code == 200
    rita = next(row for row in response.json() if row["name"] == "Rita Rep")
    assert rita["bookings"] == "4000.00"


def test_team_of_another_org_is_400(client, personas, acme_key):
    globex_team = TeamFactory(organization=personas.other_org, name="East")
    west = personas.rep4.team

    ok = _get(client, METRICS_URL, acme_key, **Q1, team=str(west.public_id))
    bad = _get(client, METRICS_URL, acme_key, **Q1, team=str(globex_team.public_id))

    assert {row["name"] for row in ok.json()} == {"Remy Rep", "Rex Rep"}
    assert bad.status_code == 400
    assert "No team" in bad.json()["team"][0]


def test_session_sees_only_visible_reps(client, q1_deals):
    login(client, q1_deals.manager)
    manager_view = client.get(METRICS_URL, {**Q1, "organization": "acme"})
    login(client, q1_deals.rep2)
    rep_view = client.get(METRICS_URL, {**Q1, "organization": "acme"})

    assert [row["name"] for row in manager_view.json()] == ["Rita Rep", "Rob Rep"]
    assert [row["name"] for row in rep_view.json()] == ["Rob Rep"]


def test_session_of_non_member_is_404(client, personas):
    login(client, personas.outsider)

    response = client.get(METRICS_URL, {**Q1, "organization": "acme"})

    assert response.status_code == 404


@pytest.fixture
def five_deals_one_day(personas, in_org):
    stage = personas.stages["Engaging"]
    return [
        make_deal(personas.rep1, stage, "100.00", D(2024, 5, 1), external_id=str(n))
        for n in range(1, 6)
    ]


def test_deal_pages_are_a_total_order(client, five_deals_one_day, acme_key):
    collected = []
    for page in (1, 2, 3):
        response = _get(
            client, DEALS_URL, acme_key, ordering="close_date", page_size=2, page=page
        )
        assert response.status_code == 200
        collected += [deal["external_id"] for deal in response.json()["results"]]

    assert len(collected) == 5
    assert set(collected) == {"1", "2", "3", "4", "5"}
    assert response.json()["count"] == 5
    assert response.json()["next"] is None


@pytest.mark.parametrize("ordering", ["amount", "-amount", "created_on", "-close_date"])
def test_every_ordering_pages_without_repeats(
    client, five_deals_one_day, acme_key, ordering
):
    collected = []
    for page in (1, 2, 3):
        response = _get(
            client, DEALS_URL, acme_key, ordering=ordering, page_size=2, page=page
        )
        collected += [deal["external_id"] for deal in response.json()["results"]]

    assert sorted(collected) == ["1", "2", "3", "4", "5"]


def test_deals_sorted_by_amount(client, personas, in_org, acme_key):
    stage = personas.stages["Engaging"]
    for amount, name in (("300.00", "c"), ("100.00", "a"), (None, "z"), ("200", "b")):
        make_deal(personas.rep1, stage, amount, external_id=name)

    ascending = _get(client, DEALS_URL, acme_key, ordering="amount").json()
    descending = _get(client, DEALS_URL, acme_key, ordering="-amount").json()

    assert [d["external_id"] for d in ascending["results"]] == ["a", "b", "c", "z"]
    assert [d["external_id"] for d in descending["results"]] == ["c", "b", "a", "z"]
    assert ascending["results"][0]["amount"] == "100.00"
    assert ascending["results"][0]["status"] == "open"


def test_unknown_ordering_is_400(client, personas, acme_key):
    response = _get(client, DEALS_URL, acme_key, ordering="name")

    assert response.status_code == 400
    assert "close_date" in response.json()["ordering"][0]


def test_page_size_is_capped(client, five_deals_one_day, acme_key):
    response = _get(client, DEALS_URL, acme_key, page_size=10_000)

    assert response.status_code == 200
    assert len(response.json()["results"]) == 5


def test_deals_of_other_org_are_hidden(client, five_deals_one_day, globex_key):
    response = _get(client, DEALS_URL, globex_key)

    assert response.json()["count"] == 0


def test_session_rep_lists_own_deals_only(client, personas, five_deals_one_day):
    login(client, personas.rep2)

    response = client.get(DEALS_URL, {"organization": "acme"})

    assert response.json()["count"] == 0


def test_schema_describes_both_endpoints(client, personas):
    response = client.get("/api/v1/schema/", {"format": "json"})

    assert response.status_code == 200
    schema = response.json()
    metrics = schema["paths"][METRICS_URL]["get"]
    deals = schema["paths"][DEALS_URL]["get"]
    assert {p["name"] for p in metrics["parameters"]} >= {"start", "end"}
    assert {p["name"] for p in deals["parameters"]} >= {"ordering", "page_size"}
    assert "win_rate" in schema["components"]["schemas"]["RepMetrics"]["properties"]


def test_create_api_key_prints_working_key(personas, capsys):
    call_command("create_api_key", organization="acme", name="Warehouse")

    key = capsys.readouterr().out.strip()
    api_key = api_key_lookup(key)
    assert api_key is not None
    assert api_key.organization == personas.org
    assert api_key.name == "Warehouse"


def test_create_api_key_unknown_slug(personas):
    with pytest.raises(CommandError, match="No organisation with slug 'nope'"):
        call_command("create_api_key", organization="nope")
