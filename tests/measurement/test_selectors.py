"""Metric values on small data sets, with the expected numbers worked by hand."""

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from activity.models import Activity, Stage
from measurement.selectors import (
    MetricScope,
    bookings_by_month,
    open_pipeline_by_stage,
    rep_rows,
    scorecards_by_member,
    scorecards_by_month,
)
from spm.tenancy import tenant_context
from tests.measurement.builders import (
    make_activity,
    make_deal,
    make_line,
    make_product,
    make_split,
)

UTC = ZoneInfo("UTC")
NEW_YORK = ZoneInfo("America/New_York")
Q1_2024 = (dt.date(2024, 1, 1), dt.date(2024, 4, 1))
D = dt.date


def _scope(members, start, end, time_zone=UTC):
    return MetricScope([member.pk for member in members], start, end, time_zone)


def _card(member, start, end, time_zone=UTC):
    return scorecards_by_member(_scope([member], start, end, time_zone))[member.pk]


@pytest.fixture
def rita_q1(personas, in_org):
    """Rita's deals and activities around the first quarter of 2024.

    In the quarter: won 1,000.00 (10-day cycle), won 2,500.50 (61-day cycle),
    won 400.00 (no creation date), lost 700.00 on the last day. Outside it or
    excluded: won 9,999 on 2024-04-01, an archived win, an archived open deal.
    Open now: 1,000 at 10% and 3,000 at 50%.
    """
    rita, stages = personas.rep1, personas.stages
    won, lost = stages["Won"], stages["Lost"]
    make_deal(rita, won, "1000.00", D(2024, 1, 11), created_on=D(2024, 1, 1))
    make_deal(rita, won, "2500.50", D(2024, 2, 1), created_on=D(2023, 12, 2))
    make_deal(rita, won, "400.00", D(2024, 3, 1), created_on=None)
    make_deal(rita, lost, "700.00", D(2024, 3, 31), created_on=D(2024, 3, 1))
    make_deal(rita, won, "9999.00", D(2024, 4, 1), created_on=D(2024, 3, 1))
    make_deal(rita, won, "5000.00", D(2024, 2, 10), D(2024, 1, 1), archived=True)
    make_deal(rita, stages["Prospecting"], "1000.00", D(2024, 6, 1))
    make_deal(rita, stages["Engaging"], "3000.00", D(2023, 6, 1))
    make_deal(rita, stages["Engaging"], "8000.00", D(2024, 6, 1), archived=True)

    at = dt.datetime
    make_activity(rita, at(2024, 1, 1, 0, 0, tzinfo=dt.UTC))
    make_activity(rita, at(2024, 3, 31, 23, 59, tzinfo=dt.UTC))
    make_activity(rita, at(2024, 2, 5, 9, 0, tzinfo=dt.UTC), Activity.Type.EMAIL)
    make_activity(rita, at(2024, 4, 1, 0, 0, tzinfo=dt.UTC))
    make_activity(rita, at(2023, 12, 31, 23, 59, tzinfo=dt.UTC))
    return rita


def test_won_lost_and_win_rate(rita_q1):
    card = _card(rita_q1, *Q1_2024)

    assert card.won == 3
    assert card.lost == 1
    assert card.win_rate == Decimal("75.0")


def test_bookings_sum_won_in_period(rita_q1):
    card = _card(rita_q1, *Q1_2024)

    assert card.bookings == Decimal("3900.50")


def test_average_cycle_skips_deals_without_creation_date(rita_q1):
    # (10 + 61) / 2 = 35.5
    card = _card(rita_q1, *Q1_2024)

    assert card.cycle_deals == 2
    assert card.avg_cycle_days == Decimal("35.5")


def test_open_pipeline_ignores_period_and_archived(rita_q1):
    card = _card(rita_q1, *Q1_2024)

    assert card.open_deals == 2
    assert card.pipeline_value == Decimal("4000.00")
    # 1,000 x 0.10 + 3,000 x 0.50
    assert card.weighted_pipeline == Decimal("1600.00")


def test_activities_by_type_in_period(rita_q1):
    card = _card(rita_q1, *Q1_2024)

    assert card.activities["call"] == 2
    assert card.activities["email"] == 1
    assert card.activities["meeting"] == 0


def test_quarter_end_is_excluded(rita_q1):
    card = _card(rita_q1, D(2024, 4, 1), D(2024, 7, 1))

    assert card.won == 1
    assert card.bookings == Decimal("9999.00")
    assert card.activities["call"] == 1


def test_rep_without_closed_deals_has_no_rates(personas, rita_q1):
    card = _card(personas.rep2, *Q1_2024)

    assert card.won == 0
    assert card.win_rate is None
    assert card.avg_cycle_days is None
    assert card.bookings == Decimal("0.00")


def test_cycle_rounds_half_up(personas, in_org):
    # Cycles of 1 and 2 days average to 1.5; 1, 1 and 2 days to 1.333... -> 1.3.
    rita, won = personas.rep1, personas.stages["Won"]
    make_deal(rita, won, "1", D(2024, 1, 2), created_on=D(2024, 1, 1))
    make_deal(rita, won, "1", D(2024, 1, 3), created_on=D(2024, 1, 1))
    assert _card(rita, *Q1_2024).avg_cycle_days == Decimal("1.5")

    make_deal(rita, won, "1", D(2024, 1, 4), created_on=D(2024, 1, 3))
    assert _card(rita, *Q1_2024).avg_cycle_days == Decimal("1.3")


def test_closed_is_not_won(personas, in_org):
    organization_id = personas.org.pk
    pipeline = personas.stages["Won"].pipeline

    def stage(name, order, won):
        return Stage.unscoped.create(
            organization_id=organization_id,
            pipeline=pipeline,
            name=name,
            order=order,
            is_closed=True,
            is_won=won,
        )

    closedwon = stage("closedwon", 10, True)
    renewal_won = stage("renewal_won", 11, True)
    closedlost = stage("closedlost", 12, False)
    rita = personas.rep1
    for stage_, count in ((closedwon, 3), (renewal_won, 1), (closedlost, 6)):
        for day in range(1, count + 1):
            make_deal(rita, stage_, "100", D(2024, 2, day), D(2024, 1, 1))

    card = _card(rita, *Q1_2024)

    assert card.won == 4
    assert card.lost == 6
    assert card.win_rate == Decimal("40.0")
    assert card.bookings == Decimal("400.00")


def test_attainment_counts_credited_share(personas, in_org):
    rita, rob = personas.rep1, personas.rep2
    won = personas.stages["Won"]
    product = make_product(personas.org.pk, "GTX Pro")

    so1 = make_deal(rita, won, "5000.00", D(2024, 2, 1), external_id="SO-1")
    make_line(so1, product, "5")
    # Rob owns SO-2; Rita is credited half of it through a split.
    so2 = make_deal(rob, won, "10000.00", D(2024, 2, 2), external_id="SO-2")
    make_line(so2, product, "10")
    make_split(so2, rita, "50", "5000.00")
    make_split(so2, rob, "50", "5000.00")
    inv3 = make_deal(
        rita, won, "4000.00", D(2024, 2, 3), archived=True, external_id="INV-3"
    )
    make_line(inv3, product, "4")

    cards = scorecards_by_member(_scope([rita, rob], *Q1_2024))

    assert cards[rita.pk].bookings == Decimal("10000.00")
    assert cards[rita.pk].credited_units == Decimal("10.00")
    assert cards[rob.pk].bookings == Decimal("5000.00")
    assert cards[rob.pk].credited_units == Decimal("5.00")
    # Won and lost count deals by owner; credit follows the splits.
    assert cards[rita.pk].won == 1
    assert cards[rob.pk].won == 1


def test_uneven_split_units(personas, in_org):
    # 3 units at 33.3333% -> 0.999999, shown to the cent as 1.00.
    rita, rob = personas.rep1, personas.rep2
    deal = make_deal(rob, personas.stages["Won"], "300.00", D(2024, 2, 1))
    make_line(deal, make_product(personas.org.pk, "MG Special"), "3")
    make_split(deal, rita, "33.3333", "100.00")
    make_split(deal, rob, "66.6667", "200.00")

    cards = scorecards_by_member(_scope([rita, rob], *Q1_2024))

    assert cards[rita.pk].credited_units == Decimal("1.00")
    assert cards[rob.pk].credited_units == Decimal("2.00")
    assert cards[rita.pk].bookings + cards[rob.pk].bookings == Decimal("300.00")


def test_activity_month_follows_org_time_zone(personas, in_org):
    rita = personas.rep1
    # 23:30 on 31 March in New York is 03:30 on 1 April in UTC.
    late = dt.datetime(2024, 3, 31, 23, 30, tzinfo=NEW_YORK)
    assert late.astimezone(dt.UTC).date() == D(2024, 4, 1)
    make_activity(rita, late)

    march = _card(rita, D(2024, 3, 1), D(2024, 4, 1), NEW_YORK)
    april = _card(rita, D(2024, 4, 1), D(2024, 5, 1), NEW_YORK)
    april_utc = _card(rita, D(2024, 4, 1), D(2024, 5, 1), UTC)

    assert march.activities["call"] == 1
    assert april.activities["call"] == 0
    assert april_utc.activities["call"] == 1


def test_months_are_half_open(personas, in_org):
    rita, won = personas.rep1, personas.stages["Won"]
    make_deal(rita, won, "100.00", D(2024, 3, 31), created_on=D(2024, 3, 1))
    make_deal(rita, won, "200.00", D(2024, 4, 1), created_on=D(2024, 3, 1))
    make_activity(rita, dt.datetime(2024, 3, 31, 23, 30, tzinfo=NEW_YORK))
    make_activity(rita, dt.datetime(2024, 4, 1, 0, 0, tzinfo=NEW_YORK))

    months = dict(
        scorecards_by_month(_scope([rita], D(2024, 3, 1), D(2024, 5, 1), NEW_YORK))
    )

    assert list(months) == [D(2024, 3, 1), D(2024, 4, 1)]
    assert months[D(2024, 3, 1)].bookings == Decimal("100.00")
    assert months[D(2024, 4, 1)].bookings == Decimal("200.00")
    assert months[D(2024, 3, 1)].activities["call"] == 1
    assert months[D(2024, 4, 1)].activities["call"] == 1
    assert months[D(2024, 3, 1)].avg_cycle_days == Decimal("30.0")
    assert months[D(2024, 4, 1)].avg_cycle_days == Decimal("31.0")


def test_bookings_by_month_add_split_credit(personas, in_org):
    rita, rob, won = personas.rep1, personas.rep2, personas.stages["Won"]
    make_deal(rita, won, "100.00", D(2024, 1, 5))
    shared = make_deal(rita, won, "1000.00", D(2024, 3, 5))
    make_split(shared, rita, "60", "600.00")
    make_split(shared, rob, "40", "400.00")

    only_rita = bookings_by_month(_scope([rita], *Q1_2024))
    both = bookings_by_month(_scope([rita, rob], *Q1_2024))

    assert only_rita == [
        (D(2024, 1, 1), Decimal("100.00")),
        (D(2024, 2, 1), Decimal("0.00")),
        (D(2024, 3, 1), Decimal("600.00")),
    ]
    assert both[2] == (D(2024, 3, 1), Decimal("1000.00"))


def test_pipeline_by_stage(personas, rita_q1):
    rob = personas.rep2
    make_deal(rob, personas.stages["Engaging"], "500.00", D(2024, 5, 1))
    make_deal(rob, personas.stages["Engaging"], None, D(2024, 5, 1))

    stages = open_pipeline_by_stage([rita_q1.pk, rob.pk])

    assert [(s.stage, s.deals, s.value, s.weighted) for s in stages] == [
        ("Prospecting", 1, Decimal("1000.00"), Decimal("100.00")),
        ("Engaging", 3, Decimal("3500.00"), Decimal("1750.00")),
    ]


def test_rep_rows_include_reps_without_deals(personas, rita_q1):
    members = [personas.manager, personas.rep1, personas.rep2]

    rows = rep_rows(
        member_ids=[m.pk for m in members],
        start=Q1_2024[0],
        end=Q1_2024[1],
        time_zone=UTC,
    )

    # The manager has no numbers of their own, so only the reps are listed.
    assert [row.member.display_name for row in rows] == ["Rita Rep", "Rob Rep"]
    assert rows[1].card.win_rate is None


def test_rep_rows_list_managers_with_numbers(personas, in_org):
    make_deal(personas.manager, personas.stages["Won"], "50.00", D(2024, 1, 5))

    rows = rep_rows(
        member_ids=[personas.manager.pk, personas.rep1.pk],
        start=Q1_2024[0],
        end=Q1_2024[1],
        time_zone=UTC,
    )

    assert [row.member.display_name for row in rows] == ["Max Manager", "Rita Rep"]


def test_other_organisation_rows_are_not_read(personas, rita_q1):
    other = personas.other_rep
    with tenant_context(personas.other_org):
        make_deal(other, personas.other_stages["Won"], "777.00", D(2024, 1, 5))

    # The current organisation is Acme, so an id from Globex matches nothing.
    cards = scorecards_by_member(_scope([rita_q1, other], *Q1_2024))

    assert cards[other.pk].won == 0
    assert cards[other.pk].bookings == Decimal("0.00")
    assert cards[rita_q1.pk].bookings == Decimal("3900.50")
