import csv
import datetime as dt
import io
import json
import re

import pytest
from django.urls import reverse

from tests.conftest import login
from tests.measurement.builders import make_activity, make_deal

D = dt.date
Q1_2024 = "?kind=quarter&on=2024-01-01"
# A rate of 0.0%, but not the end of 100.0% (the pace of a past period).
ZERO_PERCENT = re.compile(r"(?<![\d.])0\.0%")


def _url(name, personas, **kwargs):
    return reverse(f"measurement:{name}", kwargs={"org_slug": "acme", **kwargs})


def _rep_url(member):
    return reverse(
        "measurement:rep", kwargs={"org_slug": "acme", "member_id": member.public_id}
    )


def _row_names(response):
    return [row.member.display_name for row, _cells in response.context["table"]]


@pytest.fixture
def q1_deals(personas, in_org):
    """Rita: won 1,000 and 3,000, lost one, in 2024 Q1. Rex: won 500."""
    stages = personas.stages
    make_deal(personas.rep1, stages["Won"], "1000.00", D(2024, 1, 5), D(2024, 1, 1))
    make_deal(personas.rep1, stages["Won"], "3000.00", D(2024, 2, 5), D(2024, 1, 1))
    make_deal(personas.rep1, stages["Lost"], "0", D(2024, 3, 5), D(2024, 1, 1))
    make_deal(personas.rep1, stages["Engaging"], "2000.00", D(2024, 6, 5))
    make_deal(personas.rep4, stages["Won"], "500.00", D(2024, 3, 1), D(2024, 2, 1))
    make_activity(personas.rep1, dt.datetime(2024, 1, 9, 12, tzinfo=dt.UTC))
    return personas


@pytest.mark.parametrize(
    ("persona", "target"),
    [("rep1", "my-performance"), ("manager", "team"), ("admin", "team")],
)
def test_home_redirects_by_role(client, personas, persona, target):
    login(client, getattr(personas, persona))

    response = client.get(_url("home", personas))

    assert response.status_code == 302
    assert response.url == _url(target, personas)


def test_team_dashboard_rep_gets_404(client, personas):
    login(client, personas.rep1)

    assert client.get(_url("team", personas)).status_code == 404


def test_team_dashboard_manager_sees_tree(client, q1_deals):
    login(client, q1_deals.manager)

    response = client.get(_url("team", q1_deals) + Q1_2024)

    assert response.status_code == 200
    assert _row_names(response) == ["Rita Rep", "Rob Rep"]


def test_team_dashboard_vp_sees_indirect_reports(client, q1_deals):
    login(client, q1_deals.vp)

    response = client.get(_url("team", q1_deals) + Q1_2024 + "&sort=name")

    assert _row_names(response) == ["Remy Rep", "Rita Rep", "Rob Rep"]


def test_team_dashboard_admin_sees_all(client, q1_deals):
    login(client, q1_deals.admin)

    response = client.get(_url("team", q1_deals) + Q1_2024 + "&sort=name")

    assert _row_names(response) == ["Remy Rep", "Rex Rep", "Rita Rep", "Rob Rep"]


def test_team_dashboard_values(client, q1_deals):
    login(client, q1_deals.manager)

    response = client.get(_url("team", q1_deals) + Q1_2024)
    rita = response.context["table"][0]
    keys = [header["column"].key for header in response.context["headers"]][1:]
    cells = {key: cell.text for key, cell in zip(keys, rita[1], strict=True)}

    assert rita[0].member.display_name == "Rita Rep"
    assert [
        cells[key]
        for key in (
            "team",
            "won",
            "lost",
            "bookings",
            "units",
            "win_rate",
            "avg_cycle",
            "open_deals",
            "pipeline",
        )
    ] == [
        "East",
        "2",
        "1",
        "4,000.00",
        "0",
        "66.7%",
        "19.5",
        "1",
        "2,000.00",
    ]


def test_rep_without_deals_shows_no_data(client, q1_deals):
    login(client, q1_deals.manager)

    response = client.get(_url("team", q1_deals) + Q1_2024)
    html = response.content.decode()
    rob_row = re.search(
        r"<tr>\s*<th scope=\"row\">\s*<a [^>]*>Rob Rep</a>.*?</tr>", html, re.S
    )

    assert rob_row is not None
    assert rob_row.group(0).count('<span class="nodata">no&nbsp;data</span>') == 2
    assert not ZERO_PERCENT.search(rob_row.group(0))


def test_sort_by_bookings_ascending(client, q1_deals):
    login(client, q1_deals.admin)

    response = client.get(_url("team", q1_deals) + Q1_2024 + "&sort=bookings&dir=asc")

    assert _row_names(response) == ["Remy Rep", "Rob Rep", "Rex Rep", "Rita Rep"]
    assert response.context["sort"] == "bookings"


def test_sort_by_win_rate_puts_no_data_last(client, q1_deals):
    login(client, q1_deals.admin)

    for direction in ("asc", "desc"):
        url = _url("team", q1_deals) + Q1_2024 + f"&sort=win_rate&dir={direction}"
        names = _row_names(client.get(url))
        assert names[2:] == ["Remy Rep", "Rob Rep"]


def test_team_filter(client, q1_deals):
    login(client, q1_deals.admin)
    west = q1_deals.rep4.team

    response = client.get(_url("team", q1_deals) + Q1_2024 + f"&team={west.public_id}")

    assert _row_names(response) == ["Rex Rep", "Remy Rep"]


def test_unknown_team_is_404(client, q1_deals):
    login(client, q1_deals.manager)
    # West has no member in Max's tree.
    west = q1_deals.rep4.team

    response = client.get(_url("team", q1_deals) + f"?team={west.public_id}")

    assert response.status_code == 404


def test_csv_export(client, q1_deals):
    login(client, q1_deals.manager)

    response = client.get(_url("team", q1_deals) + Q1_2024 + "&format=csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))

    assert response["Content-Type"].startswith("text/csv")
    assert [row["name"] for row in rows] == ["Rita Rep", "Rob Rep"]
    assert rows[0]["bookings"] == "4000.00"
    assert rows[0]["win_rate"] == "66.7"
    assert rows[0]["activities_call"] == "1"
    assert rows[0]["period_start"] == "2024-01-01"
    assert rows[0]["period_end"] == "2024-04-01"
    assert rows[1]["win_rate"] == ""
    assert rows[1]["avg_cycle"] == ""


def test_csv_quotes_formula_names(client, q1_deals):
    q1_deals.rep2.display_name = "=HYPERLINK(1)"
    q1_deals.rep2.save()
    login(client, q1_deals.manager)

    response = client.get(_url("team", q1_deals) + Q1_2024 + "&format=csv")

    assert "'=HYPERLINK(1)" in response.content.decode()


def test_invalid_period_is_400_with_message(client, personas):
    login(client, personas.manager)

    response = client.get(
        _url("team", personas) + "?kind=custom&start=2024-02-01&end=2024-01-01"
    )

    assert response.status_code == 400
    assert "The end date must be after the start date." in response.content.decode()


def test_charts_embed_json_not_inline_script(client, q1_deals):
    login(client, q1_deals.manager)

    html = client.get(_url("team", q1_deals) + Q1_2024).content.decode()
    data = re.findall(
        r'<script id="(chart-[\w-]+)" type="application/json">(.*?)</script>',
        html,
        re.S,
    )
    figures = {element_id: json.loads(body) for element_id, body in data}

    assert set(figures) == {
        "chart-bookings-by-rep-data",
        "chart-win-rate-by-rep-data",
        "chart-pipeline-by-stage-data",
        "chart-bookings-by-month-data",
    }
    bookings = figures["chart-bookings-by-rep-data"]["data"][0]
    assert bookings["y"] == ["Rita Rep", "Rob Rep"]
    assert bookings["x"] == [4000.0, 0.0]
    months = figures["chart-bookings-by-month-data"]["data"][0]
    assert months["y"] == [1000.0, 3000.0, 0.0]
    # Every script is either JSON data or a file from static/: none is inline.
    for tag in re.findall(r"<script[^>]*>", html):
        assert 'type="application/json"' in tag or "src=" in tag
    assert "/static/vendor/plotly.min.js" in html
    assert "/static/js/charts.js" in html
    assert "<details>" in html


def test_my_performance_shows_trend(client, q1_deals):
    login(client, q1_deals.rep1)

    response = client.get(_url("my-performance", q1_deals) + Q1_2024)

    assert response.status_code == 200
    card = response.context["card"]
    assert (card.won, card.lost, str(card.bookings)) == (2, 1, "4000.00")
    months = [month for month, _card in response.context["trend"]]
    assert len(months) == 12
    assert months[0] == D(2023, 4, 1)
    assert months[-1] == D(2024, 3, 1)
    trend = dict(response.context["trend"])
    assert str(trend[D(2024, 2, 1)].bookings) == "3000.00"


def test_rep_cannot_open_other_rep(client, personas):
    login(client, personas.rep1)

    assert client.get(_rep_url(personas.rep2)).status_code == 404
    assert client.get(_rep_url(personas.rep1)).status_code == 200


def test_manager_drills_into_own_tree_only(client, personas):
    login(client, personas.manager)

    assert client.get(_rep_url(personas.rep1)).status_code == 200
    assert client.get(_rep_url(personas.rep3)).status_code == 404
    assert client.get(_rep_url(personas.rep4)).status_code == 404


def test_admin_opens_any_rep(client, q1_deals):
    login(client, q1_deals.admin)

    response = client.get(_rep_url(q1_deals.rep4) + Q1_2024)

    assert response.status_code == 200
    assert str(response.context["card"].bookings) == "500.00"


def test_other_organisation_member_is_404(client, personas):
    login(client, personas.admin)

    assert client.get(_rep_url(personas.other_rep)).status_code == 404


def test_no_data_on_member_page(client, personas):
    login(client, personas.rep2)

    html = client.get(_url("my-performance", personas) + Q1_2024).content.decode()

    assert '<span class="nodata">no data</span>' in html
    assert not ZERO_PERCENT.search(html)


@pytest.mark.parametrize("name", ["team", "my-performance"])
def test_pages_reject_post(client, personas, name):
    login(client, personas.admin)

    assert client.post(_url(name, personas)).status_code == 405


def test_anonymous_is_sent_to_login(client, personas):
    response = client.get(_url("team", personas))

    assert response.status_code == 302
    assert "/accounts/login/" in response.url
