"""Pages and the API run the same number of queries for 5 reps as for 50."""

import datetime as dt
import re

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from activity.models import Activity
from spm.models import Membership
from spm.services import api_key_create
from tests.conftest import login
from tests.factories import MembershipFactory
from tests.measurement.builders import (
    make_activity,
    make_benchmark,
    make_deal,
    make_line,
    make_product,
    make_quota,
    make_split,
    make_stage_change,
    make_team_quota,
    make_time_off,
)

D = dt.date
TEAM_URL = "/o/acme/team/?kind=quarter&on=2024-01-01"
FUNNEL_URL = "/o/acme/team/funnel/?kind=quarter&on=2024-01-01"
# Queries that read deals or activities. A period's metrics take five: closed
# deals, units of unsplit deals, split credit, open pipeline, activity counts.
# Goal figures add one for the trailing win rate behind the coverage target,
# when it is not cached.
# The rep page adds four for its trend (all but the open pipeline).
PERIOD_METRIC_QUERIES = 5 + 1
REP_PAGE_METRIC_QUERIES = 5 + 1 + 4
# Stage conversion reads the measured pipeline's open stages, then counts the
# stage entries of every listed rep in one query.
STAGE_CONVERSION_QUERIES = 2
# The team page (not its CSV) also reads the leads assigned in the period,
# for conversion by score band, and the stage history.
TEAM_PAGE_METRIC_QUERIES = PERIOD_METRIC_QUERIES + 1
API_METRIC_QUERIES = PERIOD_METRIC_QUERIES + STAGE_CONVERSION_QUERIES
# In a period that has not ended, goal figures also read the open pipeline
# closing in the rest of the period and the activities to date.
CURRENT_PERIOD_METRIC_QUERIES = PERIOD_METRIC_QUERIES + 2
# Quotas and their time off, benchmarks and their time off, the team quota.
GOAL_TARGET_QUERIES = 5
ACTIVITY_TABLE = re.compile(r'(FROM|JOIN) "activity_')
GOALS_TABLE = re.compile(r'(FROM|JOIN) "goals_')


def _at(year: int, month: int, day: int) -> dt.datetime:
    return dt.datetime(year, month, day, 15, tzinfo=dt.UTC)


def _add_reps(personas, product, first: int, count: int) -> None:
    """Give each new rep won, lost, split and open deals, the stage history of
    the won and open deals, and two activities."""
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
        engaging = make_deal(rep, stages["Engaging"], "700.00", D(2024, 6, 1))
        make_stage_change(won, stages["Prospecting"], _at(2024, 1, 2))
        make_stage_change(won, stages["Won"], _at(2024, 2, 1))
        make_stage_change(engaging, stages["Prospecting"], _at(2024, 1, 10))
        make_stage_change(engaging, stages["Engaging"], _at(2024, 2, 10))
        make_activity(rep, dt.datetime(2024, 1, 20, 10, tzinfo=dt.UTC))
        make_activity(
            rep, dt.datetime(2024, 2, 20, 10, tzinfo=dt.UTC), Activity.Type.EMAIL
        )


def _reads_deals_or_activities(query: dict) -> bool:
    # A goals table has columns named activity_..., so match table names only.
    return bool(ACTIVITY_TABLE.search(query["sql"]))


def _count_queries(client, url: str, **headers) -> tuple[int, int, object]:
    """Return the number of queries, those that read deals or activities, and
    the response, with nothing cached."""
    cache.clear()
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url, **headers)
    assert response.status_code == 200
    metric_queries = sum(map(_reads_deals_or_activities, queries.captured_queries))
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
    assert metrics == TEAM_PAGE_METRIC_QUERIES


def _funnel_traces(response) -> int:
    return len(response.context["chart"].figure["data"])


def test_stage_conversion_queries_constant(client, personas, product):
    """The funnel of 2 reps with stage history takes the queries of 10 reps."""
    login(client, personas.manager)
    _add_reps(personas, product, 1, 2)
    few, few_metrics, response = _count_queries(client, FUNNEL_URL)
    assert _funnel_traces(response) == 2

    _add_reps(personas, product, 3, 8)
    many, many_metrics, response = _count_queries(client, FUNNEL_URL)
    assert _funnel_traces(response) == 10

    assert few == many
    # The members, then the open stages and the counts.
    assert few_metrics == many_metrics == STAGE_CONVERSION_QUERIES


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
    # The first use of a key records its time; later uses within a minute do not.
    client.get(url, **auth)
    few, _metrics, response = _count_queries(client, url, **auth)
    assert len(response.json()) == 5 + 4

    _add_reps(personas, product, 6, 45)
    # New members change the organisation's configuration version, so the
    # next request reads the key again instead of using the kept one.
    client.get(url, **auth)
    many, metrics, response = _count_queries(client, url, **auth)
    assert len(response.json()) == 50 + 4

    assert few == many
    assert metrics == API_METRIC_QUERIES


def _add_goals(personas, reps) -> None:
    """Give each rep a quota, two days off and the org a call benchmark."""
    for rep in reps:
        make_quota(rep, D(2024, 1, 1), D(2024, 4, 1), "10000")
        make_time_off(rep, D(2024, 3, 4), D(2024, 3, 5))


def _load_reps(personas):
    return list(
        Membership.objects.filter(display_name__startswith="Load Rep").order_by("pk")
    )


def test_team_dashboard_goal_queries_constant(client, personas, product, monkeypatch):
    """Quotas, targets and benchmarks add the same queries for 3 reps as for 12."""
    login(client, personas.manager)
    make_benchmark(personas.org.pk, Activity.Type.CALL, "2")
    make_team_quota(personas.manager.team, D(2024, 1, 1), D(2024, 4, 1), "50000")
    # Mid-quarter, so the open pipeline closing in the period and the
    # activities to date need queries of their own.
    monkeypatch.setattr(
        timezone, "now", lambda: dt.datetime(2024, 2, 15, 12, tzinfo=dt.UTC)
    )
    _add_reps(personas, product, 1, 3)
    _add_goals(personas, _load_reps(personas))
    few, few_metrics, response = _count_queries(client, TEAM_URL)
    assert len(response.context["table"]) == 3 + 2

    _add_reps(personas, product, 4, 9)
    _add_goals(personas, _load_reps(personas)[3:])
    cache.clear()
    with CaptureQueriesContext(connection) as queries:
        response = client.get(TEAM_URL)
    assert len(response.context["table"]) == 12 + 2
    goal_queries = sum(bool(GOALS_TABLE.search(query["sql"])) for query in queries)
    many_metrics = sum(map(_reads_deals_or_activities, queries))

    assert few == len(queries)
    expected = CURRENT_PERIOD_METRIC_QUERIES + 1
    assert few_metrics == many_metrics == expected
    assert goal_queries == GOAL_TARGET_QUERIES
