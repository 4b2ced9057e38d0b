"""Goal figures on the team dashboard, its CSV, the rep page and the API."""

import csv
import datetime as dt
import io
import re
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from activity.models import Activity
from goals.models import QuotaMetric
from spm.services import api_key_create
from tests.conftest import login
from tests.measurement.builders import (
    make_activity,
    make_benchmark,
    make_deal,
    make_quota,
    make_team_quota,
    make_time_off,
)

D = dt.date
Q1_2024 = (D(2024, 1, 1), D(2024, 4, 1))
Q1_QUERY = "?kind=quarter&on=2024-01-01"
# Noon UTC on 2024-02-15, day 46 of the 91-day first quarter.
MID_QUARTER = dt.datetime(2024, 2, 15, 12, tzinfo=dt.UTC)


def _team_url():
    return reverse("measurement:team", kwargs={"org_slug": "acme"}) + Q1_QUERY


def _rep_url(member):
    url = reverse(
        "measurement:rep", kwargs={"org_slug": "acme", "member_id": member.public_id}
    )
    return url + Q1_QUERY


def _freeze(monkeypatch, moment: dt.datetime) -> None:
    monkeypatch.setattr(timezone, "now", lambda: moment)


def _cells_by_key(response, name):
    """Return the named rep's display cells keyed by column key."""
    headers = [header["column"].key for header in response.context["headers"]]
    for row, cells in response.context["table"]:
        if row.member.display_name == name:
            return dict(zip(headers[1:], cells, strict=True))
    raise AssertionError(f"{name} has no row")


def _row_html(response, name):
    html = response.content.decode()
    found = re.search(
        rf"<tr>\s*<th scope=\"row\">\s*<a [^>]*>{name}</a>.*?</tr>", html, re.S
    )
    assert found is not None, f"{name} has no row"
    return found.group(0)


@pytest.fixture
def goals_q1(personas, in_org, monkeypatch):
    """Rita: prorated quota, bookings, open pipeline and calls; Rob: no quota.

    Today is 2024-02-15 and the coverage target is fixed at 3x.
    """
    personas.org.coverage_target_fixed = Decimal("3.00")
    personas.org.save()
    stages = personas.stages
    rita = personas.rep1
    rita.start_date = D(2024, 2, 15)
    rita.save()
    make_quota(rita, *Q1_2024, "91000")
    make_time_off(rita, D(2024, 3, 4), D(2024, 3, 8))
    make_deal(rita, stages["Won"], "20500.00", D(2024, 2, 15))
    make_deal(rita, stages["Engaging"], "41000.00", D(2024, 3, 20))
    make_deal(personas.rep2, stages["Won"], "700.00", D(2024, 1, 20))
    make_benchmark(personas.org.pk, Activity.Type.CALL, "2")
    # Rita starts on Thursday 2024-02-15: one business day to date, 2 calls
    # expected; she logs 1, which is 50% and below.
    make_activity(rita, dt.datetime(2024, 2, 15, 9, tzinfo=dt.UTC))
    _freeze(monkeypatch, MID_QUARTER)
    return personas


# Team dashboard --------------------------------------------------------------


def test_team_goal_columns(client, goals_q1):
    login(client, goals_q1.manager)

    response = client.get(_team_url())
    cells = _cells_by_key(response, "Rita Rep")

    # 2024-02-15 to 2024-03-31 is 46 days, less 5 away = 41 of 91 days:
    # 91,000 x 41 / 91 = 41,000.00.
    assert cells["quota"].text == "41,000.00"
    assert cells["quota"].marker == "prorated"
    assert cells["quota"].note == "of 91,000.00"
    # 20,500 / 41,000 = 50.0%, and pace is 46 / 91 = 50.5%.
    assert cells["attainment"].text == "50.0%"
    assert cells["pace"].text == "50.5%"
    # (20,500 / 41,000) / (46 / 91) = 98.9%.
    assert cells["to_pace"].text == "98.9%"
    # 20,500 + 41,000 x 0.5 = 41,000.00.
    assert cells["forecast"].text == "41,000.00"
    # 41,000 / (41,000 - 20,500) = 2.00x, under the fixed 3.00x.
    assert cells["coverage"].text == "2.00x vs 3.00x"
    assert cells["coverage"].note == "below (fixed)"
    assert cells["coverage"].status == "below"
    (calls,) = cells["activity"].parts
    assert calls.text == "Calls: below (50.0%)"
    assert calls.status == "below"


def test_team_no_quota_not_zero_percent(client, goals_q1):
    login(client, goals_q1.manager)

    response = client.get(_team_url())
    cells = _cells_by_key(response, "Rob Rep")
    rob_row = _row_html(response, "Rob Rep")

    assert cells["quota"].text == "no quota"
    assert cells["attainment"].text == "no quota"
    assert cells["to_pace"].text == "no quota"
    assert cells["coverage"].text == "no quota"
    assert rob_row.count('<span class="nodata">no quota</span>') == 4
    # The one 0.0% is Rob's calls against the benchmark, none of 68 expected.
    assert len(re.findall(r"(?<![\d.])0\.0%", rob_row)) == 1
    assert "Calls: below (0.0%)" in rob_row


def test_activity_cell_text_and_class(client, goals_q1):
    login(client, goals_q1.manager)

    rita_row = _row_html(client.get(_team_url()), "Rita Rep")

    assert '<li class="status status-below">Calls: below (50.0%)</li>' in rita_row


def test_sort_attainment_no_quota_last(client, goals_q1):
    login(client, goals_q1.manager)

    for direction in ("asc", "desc"):
        response = client.get(_team_url() + f"&sort=attainment&dir={direction}")
        names = [row.member.display_name for row, _cells in response.context["table"]]
        assert names == ["Rita Rep", "Rob Rep"]


def test_team_quota_beside_reps_quotas(client, goals_q1):
    east = goals_q1.rep1.team
    make_team_quota(east, *Q1_2024, "100000")
    make_quota(goals_q1.rep2, *Q1_2024, "50000")
    login(client, goals_q1.manager)

    response = client.get(_team_url() + f"&team={east.public_id}")
    (line,) = response.context["team_quotas"]

    assert line.team_quota == Decimal("100000.00")
    # Rita 41,000.00 (prorated from 91,000) + Rob 50,000.00.
    assert line.reps_quota == Decimal("91000.00")
    assert line.reps_original == Decimal("141000.00")
    assert (line.reps_with_quota, line.reps) == (2, 2)
    assert 'id="team-quotas"' in response.content.decode()


def test_team_quota_all_teams_total(client, goals_q1):
    login(client, goals_q1.admin)
    make_team_quota(goals_q1.rep1.team, *Q1_2024, "100000")
    make_team_quota(goals_q1.rep4.team, *Q1_2024, "60000")

    response = client.get(_team_url())
    lines = {line.label: line for line in response.context["team_quotas"]}

    assert lines["East"].team_quota == Decimal("100000.00")
    assert lines["West"].team_quota == Decimal("60000.00")
    assert lines["West"].reps_quota is None
    assert lines["All teams"].team_quota == Decimal("160000.00")
    assert lines["All teams"].reps_quota == Decimal("41000.00")


def test_team_csv_goal_fields(client, goals_q1):
    login(client, goals_q1.manager)

    response = client.get(_team_url() + "&format=csv")
    rows = {
        row["name"]: row
        for row in csv.DictReader(io.StringIO(response.content.decode()))
    }

    rita, rob = rows["Rita Rep"], rows["Rob Rep"]
    assert rita["quota"] == "41000.00"
    assert rita["quota_original"] == "91000.00"
    assert rita["attainment"] == "50.0"
    assert rita["pace"] == "50.5"
    assert rita["coverage"] == "2.00"
    assert rita["coverage_target"] == "3.00"
    assert rita["coverage_target_source"] == "fixed"
    assert rita["coverage_status"] == "below"
    assert rita["forecast"] == "41000.00"
    assert rita["benchmark_call_pct"] == "50.0"
    assert rita["benchmark_call_status"] == "below"
    assert rita["benchmark_email_status"] == ""
    assert rob["quota"] == ""
    assert rob["attainment"] == ""
    assert rob["coverage_status"] == "no quota"


def test_team_goal_charts_have_tables(client, goals_q1):
    login(client, goals_q1.manager)

    charts = {
        chart.element_id: chart for chart in client.get(_team_url()).context["charts"]
    }

    pace = charts["chart-attainment-vs-pace"]
    assert pace.rows == [
        ["Rita Rep", "41,000.00", "20,500.00", "50.0%", "50.5%", "98.9%"],
        ["Rob Rep", "no quota", "700.00", "no quota", "50.5%", "no quota"],
    ]
    coverage = charts["chart-coverage-by-rep"]
    assert coverage.rows[0] == [
        "Rita Rep",
        "41,000.00",
        "2.00x",
        "3.00x",
        "fixed",
        "below",
    ]
    assert coverage.rows[1][-1] == "no quota"


# Rep page --------------------------------------------------------------------


def test_rep_page_quota_proration_and_relief(client, goals_q1):
    login(client, goals_q1.manager)

    response = client.get(_rep_url(goals_q1.rep1))
    html = response.content.decode()

    assert response.context["proration_reasons"] == [
        "joined 2024-02-15",
        "5 days of time off",
    ]
    assert response.context["relief"] == [
        "Relief: 5 days vacation, 2024-03-04 to 2024-03-08"
    ]
    assert "of 91,000.00: joined 2024-02-15, 5 days of time off" in html
    assert "Relief: 5 days vacation, 2024-03-04 to 2024-03-08" in html


def test_rep_page_goal_figures(client, goals_q1):
    login(client, goals_q1.rep1)

    response = client.get(
        reverse("measurement:my-performance", kwargs={"org_slug": "acme"}) + Q1_QUERY
    )
    progress = response.context["progress"]
    html = response.content.decode()

    assert progress.attainment == Decimal("50.0")
    assert progress.pace == Decimal("50.5")
    assert progress.forecast == Decimal("41000.00")
    assert "3.00x, fixed by the organisation" in html
    assert '<td class="status status-below">below' in html


def test_rep_page_no_quota(client, goals_q1):
    login(client, goals_q1.manager)

    html = client.get(_rep_url(goals_q1.rep2)).content.decode()
    attainment = re.search(r'id="goal-attainment">(.*?)</td>', html, re.S)

    assert attainment is not None
    assert "no quota" in attainment.group(1)
    assert "%" not in attainment.group(1)


def test_rep_page_activity_ramping(client, goals_q1):
    goals_q1.rep1.start_date = D(2024, 2, 1)
    goals_q1.rep1.save()
    make_benchmark(goals_q1.org.pk, Activity.Type.EMAIL, "4", ramp=[50])
    login(client, goals_q1.manager)

    response = client.get(_rep_url(goals_q1.rep1))
    statuses = {s.activity_type: s for s in response.context["progress"].activity}
    table = re.search(
        r'id="activity-benchmark">.*?</table>', response.content.decode(), re.S
    )

    # 2024-02-01 to 2024-02-15 has 11 business days; in month one each
    # expects 50% of 4 emails, so 11 x 2 = 22.
    assert statuses["email"].expected == Decimal("22.00")
    assert statuses["email"].ramped
    assert statuses["email"].status == "below"
    assert table is not None
    assert "ramping" in table.group(0)
    # The expected count is whole, so it shows without cents.
    assert '<td class="num">22</td>' in table.group(0)
    assert "22.00" not in table.group(0)


def test_rep_page_other_metric_quotas(client, goals_q1):
    rita = goals_q1.rep1
    rita.start_date = None
    rita.save()
    make_quota(rita, *Q1_2024, "4", QuotaMetric.DEAL_COUNT)
    make_quota(rita, *Q1_2024, "100000", QuotaMetric.NEW_PIPELINE)
    engaging = goals_q1.stages["Engaging"]
    make_deal(rita, engaging, "30000.00", D(2024, 5, 1), created_on=D(2024, 1, 5))
    make_deal(rita, engaging, "9000.00", D(2024, 5, 1), created_on=D(2023, 12, 31))
    login(client, goals_q1.manager)

    response = client.get(_rep_url(rita))
    lines = {line.metric: line for line in response.context["other_quotas"]}

    # Deal count: 1 won of 4 less 5 of 91 days away: 4 x 86 / 91 = 3.78.
    assert lines["deal_count"].quota.amount == Decimal("3.78")
    assert lines["deal_count"].actual == 1
    # 1 / 3.78 = 26.45...% -> 26.5%.
    assert lines["deal_count"].attainment == Decimal("26.5")
    # New pipeline: only the 30,000 open deal was created in the quarter.
    # The 20,500 won deal has no creation date and the 9,000 deal was
    # created in 2023.
    assert lines["new_pipeline"].actual == Decimal("30000.00")
    # 100,000 x 86 / 91 = 94,505.49; 30,000 / 94,505.49 = 31.7%.
    assert lines["new_pipeline"].quota.amount == Decimal("94505.49")
    assert lines["new_pipeline"].attainment == Decimal("31.7")
    assert "Deals won quota" in response.content.decode()


def test_rep_page_uses_organisation_today(client, personas, in_org, monkeypatch):
    personas.org.time_zone = "Pacific/Auckland"
    personas.org.coverage_target_fixed = Decimal("3.00")
    personas.org.save()
    make_quota(personas.rep1, *Q1_2024, "10000")
    engaging = personas.stages["Engaging"]
    make_deal(personas.rep1, engaging, "4000.00", D(2024, 2, 14))
    make_deal(personas.rep1, engaging, "6000.00", D(2024, 2, 15))
    login(client, personas.manager)
    # 12:00 UTC on 14 February is 01:00 on 15 February in Auckland (UTC+13).
    _freeze(monkeypatch, dt.datetime(2024, 2, 14, 12, tzinfo=dt.UTC))

    progress = client.get(_rep_url(personas.rep1)).context["progress"]

    # Day 46 of 91 in Auckland (50.5%); in UTC it would be day 45 (49.5%).
    assert progress.pace == Decimal("50.5")
    # The deal due on 14 February is past due in Auckland and left out.
    assert progress.in_period_pipeline == Decimal("6000.00")


# API -------------------------------------------------------------------------


def test_api_goal_fields(client, goals_q1):
    _api_key, key = api_key_create(organization=goals_q1.org, name="goals")

    response = client.get(
        "/api/v1/metrics/reps/?start=2024-01-01&end=2024-04-01",
        HTTP_AUTHORIZATION=f"Bearer {key}",
    )
    by_name = {item["name"]: item for item in response.json()}

    rita, rob = by_name["Rita Rep"], by_name["Rob Rep"]
    assert rita["quota"] == "41000.00"
    assert rita["attainment"] == 50.0
    assert rita["pace"] == 50.5
    assert rita["coverage"] == 2.0
    assert rita["coverage_target"] == 3.0
    assert rita["coverage_status"] == "below"
    assert rita["forecast"] == "41000.00"
    assert rob["quota"] is None
    assert rob["attainment"] is None
    assert rob["coverage"] is None
    assert rob["coverage_status"] == "no quota"
    assert rob["forecast"] == "700.00"
