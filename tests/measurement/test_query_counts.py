"""Pages and the API run the same number of queries for 5 reps as for 50."""

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from activity.models import Activity
from spm.models import Membership
from spm.services import api_key_create
from tests.conftest import login
from tests.factories import MembershipFactory
from tests.measurement.builders import (
    make_activity,
    make_deal,
    make_line,
    make_product,
    make_split,
)

D = dt.date
TEAM_URL = "/o/acme/team/?kind=quarter&on=2024-01-01"
# Queries that read deals or activities. A period's metrics take five: closed
# deals, units of unsplit deals, split credit, open pipeline, activity counts.
# The rep page adds four for its trend (all but the open pipeline).
PERIOD_METRIC_QUERIES = 5
REP_PAGE_METRIC_QUERIES = 5 + 4


def _add_reps(personas, product, first: int, count: int) -> None:
    """Give each new rep won, lost, split and open deals and two activities."""
    stages = personas.stages
    for number in range(first, first + count):
        rep = MembershipFactory(
            organization=personas.org,
            user=None,
            display_name=f"Load Rep {number:03d}",
            role=Membership.Role.REP,
            reports_to=personas.manager,
            team=personas.manager.team,
        )
        won = make_deal(rep, stages["Won"], "1000.00", D(2024, 2, 1), D(2024, 1, 1))
        make_line(won, product, "2")
        shared = make_deal(rep, stages["Won"], "500.00", D(2024, 3, 1))
        make_split(shared, rep, "50", "250.00")
        make_split(shared, personas.rep1, "50", "250.00")
        make_deal(rep, stages["Lost"], "0", D(2024, 2, 15), D(2024, 1, 1))
        make_deal(rep, stages["Engaging"], "700.00", D(2024, 6, 1))
        make_activity(rep, dt.datetime(2024, 1, 20, 10, tzinfo=dt.UTC))
        make_activity(
            rep, dt.datetime(2024, 2, 20, 10, tzinfo=dt.UTC), Activity.Type.EMAIL
        )


def _count_queries(client, url: str, **headers) -> tuple[int, int, object]:
    """Return the number of queries, those that read deals or activities, and
    the response."""
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url, **headers)
    assert response.status_code == 200
    metric_queries = sum(
        '"activity_' in query["sql"] for query in queries.captured_queries
    )
    return len(queries), metric_queries, response


@pytest.fixture
def product(personas, in_org):
    return make_product(personas.org.pk, "GTX Basic")


def test_team_dashboard_queries_constant(client, personas, product):
    login(client, personas.manager)
    _add_reps(personas, product, 1, 5)
    few, _metrics, response = _count_queries(client, TEAM_URL)
    assert len(response.context["table"]) == 5 + 2

    _add_reps(personas, product, 6, 45)
    many, metrics, response = _count_queries(client, TEAM_URL)
    assert len(response.context["table"]) == 50 + 2

    assert few == many
    assert metrics == PERIOD_METRIC_QUERIES


def test_csv_and_member_page_queries_constant(client, personas, product):
    login(client, personas.manager)
    member_url = f"/o/acme/reps/{personas.rep1.public_id}/?kind=quarter&on=2024-01-01"
    _add_reps(personas, product, 1, 5)
    few_csv, _metrics, _ = _count_queries(client, TEAM_URL + "&format=csv")
    few_member, _metrics, _ = _count_queries(client, member_url)

    _add_reps(personas, product, 6, 45)
    many_csv, csv_metrics, _ = _count_queries(client, TEAM_URL + "&format=csv")
    many_member, member_metrics, _ = _count_queries(client, member_url)

    assert few_csv == many_csv
    assert few_member == many_member
    assert csv_metrics == PERIOD_METRIC_QUERIES
    assert member_metrics == REP_PAGE_METRIC_QUERIES


def test_metrics_api_queries_constant(client, personas, product):
    _api_key, key = api_key_create(organization=personas.org, name="load")
    url = "/api/v1/metrics/reps/?start=2024-01-01&end=2024-04-01"
    auth = {"HTTP_AUTHORIZATION": f"Bearer {key}"}
    _add_reps(personas, product, 1, 5)
    few, _metrics, response = _count_queries(client, url, **auth)
    assert len(response.json()) == 5 + 4

    _add_reps(personas, product, 6, 45)
    many, metrics, response = _count_queries(client, url, **auth)
    assert len(response.json()) == 50 + 4

    assert few == many
    assert metrics == PERIOD_METRIC_QUERIES
