"""The team dashboard's shared queries, checked against the separate selectors.

One set of queries grouped by member and month serves the table and the
charts, so each total must round once, as a query over the whole period would.
"""

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from measurement.selectors import (
    MetricScope,
    bookings_by_month,
    open_pipeline_by_stage,
    rep_rows,
    scorecards_by_member,
    team_metrics,
)
from tests.measurement.builders import (
    make_activity,
    make_deal,
    make_line,
    make_product,
    make_split,
)

UTC = ZoneInfo("UTC")
Q1_2024 = (dt.date(2024, 1, 1), dt.date(2024, 4, 1))
D = dt.date


def _scope(members, start, end):
    return MetricScope([member.pk for member in members], start, end, UTC)


@pytest.fixture
def q1_team(personas, in_org):
    """Deals of Rita and Rob across the quarter, with splits, lines and activity.

    Rex is in another branch of the tree, and the manager has no numbers.
    """
    rita, rob, stages = personas.rep1, personas.rep2, personas.stages
    product = make_product(personas.org.pk, "GTX Basic")
    jan = make_deal(rita, stages["Won"], "1000.00", D(2024, 1, 10), D(2024, 1, 1))
    make_line(jan, product, "2")
    shared = make_deal(rob, stages["Won"], "900.00", D(2024, 3, 5), D(2024, 2, 1))
    make_line(shared, product, "3")
    make_split(shared, rita, "33.3333", "300.00")
    make_split(shared, rob, "66.6667", "600.00")
    make_deal(rob, stages["Lost"], "50.00", D(2024, 2, 20))
    make_deal(rita, stages["Prospecting"], "400.00", D(2024, 6, 1))
    make_deal(rob, stages["Engaging"], "700.00", D(2024, 6, 1))
    make_deal(personas.rep4, stages["Won"], "5000.00", D(2024, 2, 1))
    make_activity(rita, dt.datetime(2024, 2, 1, 9, tzinfo=dt.UTC))
    return personas


def _metrics(members):
    return team_metrics(
        member_ids=[member.pk for member in members],
        start=Q1_2024[0],
        end=Q1_2024[1],
        time_zone=UTC,
    )


def test_charts_match_separate_selectors(q1_team):
    members = [q1_team.manager, q1_team.rep1, q1_team.rep2]

    metrics = _metrics(members)

    row_members = [row.member for row in metrics.rows]
    assert [member.display_name for member in row_members] == ["Rita Rep", "Rob Rep"]
    assert metrics.bookings_by_month == bookings_by_month(_scope(row_members, *Q1_2024))
    assert metrics.pipeline_by_stage == open_pipeline_by_stage(
        [member.pk for member in row_members]
    )


def test_chart_values_by_hand(q1_team):
    metrics = _metrics([q1_team.rep1, q1_team.rep2])

    assert metrics.bookings_by_month == [
        (D(2024, 1, 1), Decimal("1000.00")),
        (D(2024, 2, 1), Decimal("0.00")),
        (D(2024, 3, 1), Decimal("900.00")),
    ]
    stages = [
        (s.stage, s.deals, s.value, s.weighted) for s in metrics.pipeline_by_stage
    ]
    assert stages == [
        ("Prospecting", 1, Decimal("400.00"), Decimal("40.00")),
        ("Engaging", 1, Decimal("700.00"), Decimal("350.00")),
    ]


def test_rows_match_scorecards(q1_team):
    members = [q1_team.rep1, q1_team.rep2]

    rows = _metrics(members).rows
    cards = scorecards_by_member(_scope(members, *Q1_2024))

    assert [row.card for row in rows] == [cards[member.pk] for member in members]
    rita = rows[0].card
    assert (rita.won, rita.lost, rita.bookings) == (1, 0, Decimal("1300.00"))
    # 2 units of her own deal and 33.3333% of 3 units (0.999999).
    assert rita.credited_units == Decimal("3.00")
    assert rita.activities["call"] == 1
    rob = rows[1].card
    assert (rob.won, rob.lost, rob.bookings) == (1, 1, Decimal("600.00"))


def test_rep_rows_equal_team_metrics_rows(q1_team):
    members = [q1_team.manager, q1_team.rep1, q1_team.rep2, q1_team.rep4]

    rows = rep_rows(
        member_ids=[member.pk for member in members],
        start=Q1_2024[0],
        end=Q1_2024[1],
        time_zone=UTC,
    )

    assert rows == _metrics(members).rows


def test_split_units_round_once_over_months(personas, in_org):
    # Rob owns two won one-unit deals, in January and February, and credits
    # Rita 33.3333% of each. That is 0.333333 a month and 0.666666 in the
    # quarter, where rounding each month first would give 0.33 + 0.33 = 0.66.
    rita, rob, won = personas.rep1, personas.rep2, personas.stages["Won"]
    product = make_product(personas.org.pk, "GTX Basic")
    for close_date in (D(2024, 1, 15), D(2024, 2, 15)):
        deal = make_deal(rob, won, "300.00", close_date)
        make_line(deal, product, "1")
        make_split(deal, rita, "33.3333", "100.00")
        make_split(deal, rob, "66.6667", "200.00")

    cards = scorecards_by_member(_scope([rita, rob], *Q1_2024))

    assert cards[rita.pk].credited_units == Decimal("0.67")
    # 0.666667 a month, 1.333334 in the quarter (not 0.67 + 0.67 = 1.34).
    assert cards[rob.pk].credited_units == Decimal("1.33")


def test_weighted_pipeline_rounds_once_over_stages(personas, in_org):
    # 0.05 at 10% and 0.01 at 50% weigh 0.005 each, so 0.01 in all.
    # Rounding each stage first would give 0.02.
    rita, stages = personas.rep1, personas.stages
    make_deal(rita, stages["Prospecting"], "0.05", D(2024, 6, 1))
    make_deal(rita, stages["Engaging"], "0.01", D(2024, 6, 1))

    card = scorecards_by_member(_scope([rita], *Q1_2024))[rita.pk]

    assert card.open_deals == 2
    assert card.pipeline_value == Decimal("0.06")
    assert card.weighted_pipeline == Decimal("0.01")
