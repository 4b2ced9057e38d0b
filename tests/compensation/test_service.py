"""calculate_statement: a member's statement from the rows of their organisation."""

from __future__ import annotations

import datetime as dt
import gc
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from compensation import services
from compensation.models import Payment, PlanVersion
from compensation.services import CalculationError, calculate_statement
from goals.calendar import DateRange, month_range
from tests.compensation.conftest import (
    ATTAINMENT_TIERS,
    assign,
    flat_component,
    make_draw,
    make_plan,
    make_rate,
    publish_version,
    won_deal,
)
from tests.goals.conftest import make_quota

D = dt.date
MARCH = month_range(D(2024, 3, 1))


def _amounts(statement) -> list[Decimal]:
    return [line.amount for line in statement.lines]


@pytest.fixture
def march_deals(in_org, personas):
    """Rita's March: own deals, a split deal in euros, deals that do not count."""
    rita, rob, won = personas.rep1, personas.rep2, personas.stages["Won"]
    plan = make_plan(in_org.pk, "AE plan")
    publish_version(plan, [ATTAINMENT_TIERS])
    assign(rita, plan)
    make_quota(rita, "50000.00", D(2024, 3, 1), D(2024, 4, 1))
    make_rate(in_org.pk, "EUR", "USD", D(2024, 3, 12), "1.1000")
    won_deal(rita, won, "30000.00", D(2024, 3, 5))
    won_deal(rob, won, "20000.00", D(2024, 3, 12), "EUR", [(rita, "50"), (rob, "50")])
    won_deal(rita, won, "15000.00", D(2024, 3, 20))
    won_deal(rita, personas.stages["Lost"], "99000.00", D(2024, 3, 21))
    won_deal(rita, won, "99000.00", D(2024, 4, 1))
    won_deal(rob, won, "99000.00", D(2024, 3, 22))
    return rita


def test_statement_with_split_fx_tiers(march_deals):
    statement = calculate_statement(march_deals, MARCH)

    # Credits: 30,000; half of 20,000 EUR x 1.10 = 11,000; then 15,000.
    # Against a 50,000 quota: 30,000 x 8%, 11,000 x 8%, and the last deal
    # takes the total from 41,000 to 56,000: 9,000 x 8% + 6,000 x 12%.
    assert _amounts(statement) == [
        Decimal("2400.00"),
        Decimal("880.00"),
        Decimal("1440.00"),
    ]
    assert statement.total == Decimal("4720.00")
    assert statement.currency == "USD"
    assert [c.amount for c in statement.credits] == [
        Decimal("30000.00"),
        Decimal("11000.00"),
        Decimal("15000.00"),
    ]
    assert statement.credits[1].fx_rate == Decimal("1.1000")
    assert statement.lines[2].plan_version == "AE plan v1"
    assert statement.lines[2].component == "Accelerator"


def test_query_count_independent_of_deals(march_deals, personas):
    def count() -> int:
        with CaptureQueriesContext(connection) as queries:
            calculate_statement(march_deals, MARCH)
        return len(queries)

    with_few = count()
    for day in range(1, 18):
        won_deal(
            march_deals,
            personas.stages["Won"],
            "100.00",
            D(2024, 3, day),
            splits=[(march_deals, "60"), (personas.rep2, "40")],
        )
    with_many = count()

    # Assignments, versions, components, draws, deals, splits, reassigned-lead
    # shares, products, rates, and two for the quota.
    assert with_few == with_many
    assert with_many <= 11


def test_cancelled_deal_clawed_back(in_org, personas):
    rita = personas.rep1
    plan = make_plan(in_org.pk)
    publish_version(plan, [flat_component("0.10")], clawback="prorated")
    assign(rita, plan)
    cancelled = dt.datetime(2024, 9, 15, 12, 0, tzinfo=dt.UTC)
    won_deal(
        rita, personas.stages["Won"], "120000.00", D(2024, 3, 15), archived_at=cancelled
    )

    march = calculate_statement(rita, MARCH)
    september = calculate_statement(rita, month_range(D(2024, 9, 1)))

    # March is not rewritten by the cancellation; September takes back
    # 12,000 x (12 - 6) / 12.
    assert march.total == Decimal("12000.00")
    assert september.total == Decimal("-6000.00")
    assert september.lines[0].kind == "clawback"


def test_plan_change_mid_month(in_org, personas):
    rita, won = personas.rep1, personas.stages["Won"]
    plan = make_plan(in_org.pk, "AE plan")
    publish_version(plan, [flat_component("0.05")])
    publish_version(plan, [flat_component("0.08")], effective_from=D(2024, 3, 16))
    assign(rita, plan)
    won_deal(rita, won, "10000.00", D(2024, 3, 10))
    won_deal(rita, won, "10000.00", D(2024, 3, 20))

    statement = calculate_statement(rita, MARCH)

    assert _amounts(statement) == [Decimal("500.00"), Decimal("800.00")]
    assert [line.plan_version for line in statement.lines] == [
        "AE plan v1",
        "AE plan v2",
    ]


def test_draft_version_ignored(in_org, personas):
    rita = personas.rep1
    plan = make_plan(in_org.pk)
    publish_version(plan, [flat_component("0.05")])
    PlanVersion.unscoped.create(
        organization_id=in_org.pk, plan=plan, number=2, effective_from=D(2024, 3, 1)
    )
    assign(rita, plan)
    won_deal(rita, personas.stages["Won"], "10000.00", D(2024, 3, 10))

    assert calculate_statement(rita, MARCH).total == Decimal("500.00")


def test_draw_balance_from_earlier_months(in_org, personas):
    rita, won = personas.rep1, personas.stages["Won"]
    plan = make_plan(in_org.pk)
    publish_version(plan, [flat_component("0.10")])
    assign(rita, plan)
    make_draw(rita, "3000.00", D(2024, 1, 1))
    won_deal(rita, won, "10000.00", D(2024, 1, 10))
    won_deal(rita, won, "45000.00", D(2024, 2, 10))

    february = calculate_statement(rita, month_range(D(2024, 2, 1)))

    # January advanced 2,000; February's 4,500 repays 1,500 of it.
    assert _amounts(february) == [Decimal("4500.00"), Decimal("-1500.00")]
    assert february.total == Decimal("3000.00")
    assert february.draw_balance == Decimal("500.00")


def test_payments_release_commission(in_org, personas):
    rita = personas.rep1
    plan = make_plan(in_org.pk)
    publish_version(plan, [flat_component("0.20")], payout_timing="on_payment")
    assign(rita, plan)
    deal = won_deal(rita, personas.stages["Won"], "20000.00", D(2024, 6, 3))
    for day in (D(2024, 6, 20), D(2024, 7, 11)):
        Payment.unscoped.create(
            organization_id=in_org.pk,
            deal=deal,
            received_on=day,
            amount=Decimal("10000.00"),
            currency="USD",
        )

    june = calculate_statement(rita, month_range(D(2024, 6, 1)))
    july = calculate_statement(rita, month_range(D(2024, 7, 1)))

    assert june.total == Decimal("2000.00")
    assert july.total == Decimal("2000.00")


def test_override_reads_reporting_tree(in_org, personas):
    plan = make_plan(in_org.pk, "Manager plan")
    override = {"name": "Team", "kind": "override", "params": {"rate": "0.02"}}
    publish_version(plan, [override])
    assign(personas.vp, plan)
    won = personas.stages["Won"]
    won_deal(personas.rep1, won, "10000.00", D(2024, 3, 5))  # via Max Manager
    won_deal(personas.rep3, won, "20000.00", D(2024, 3, 6))  # direct report
    won_deal(personas.rep4, won, "40000.00", D(2024, 3, 7))  # another tree

    statement = calculate_statement(personas.vp, MARCH)

    assert [(line.base, line.amount) for line in statement.lines] == [
        (Decimal("20000.00"), Decimal("400.00")),
        (Decimal("10000.00"), Decimal("200.00")),
    ]


def test_bad_split_names_deal(in_org, personas):
    rita = personas.rep1
    plan = make_plan(in_org.pk)
    publish_version(plan, [flat_component("0.10")])
    assign(rita, plan)
    deal = won_deal(
        rita, personas.stages["Won"], "1000.00", D(2024, 3, 5), splits=[(rita, "70")]
    )

    with pytest.raises(CalculationError, match=rf"'{deal.name}' \(id {deal.pk}\)"):
        calculate_statement(rita, MARCH)


def test_missing_rate_names_date(in_org, personas):
    rita = personas.rep1
    plan = make_plan(in_org.pk)
    publish_version(plan, [flat_component("0.10")])
    assign(rita, plan)
    won_deal(rita, personas.stages["Won"], "1000.00", D(2024, 3, 5), "GBP")

    with pytest.raises(
        CalculationError, match="No GBP/USD exchange rate for 2024-03-05"
    ):
        calculate_statement(rita, MARCH)


def test_member_without_plan_empty(in_org, personas):
    won_deal(personas.rep2, personas.stages["Won"], "1000.00", D(2024, 3, 5))

    statement = calculate_statement(personas.rep2, MARCH)

    assert statement.lines == ()
    assert statement.total == Decimal("0.00")


def test_period_must_be_whole_months(in_org, personas):
    with pytest.raises(ValueError, match="Invalid statement period"):
        calculate_statement(personas.rep1, DateRange(D(2024, 3, 5), D(2024, 4, 5), ""))


def test_other_organisations_member_rejected(in_org, personas):
    with pytest.raises(ValueError, match="is not a member of Acme"):
        calculate_statement(personas.other_rep, MARCH)


def test_gc_pause_restores_enabled_collector():
    assert gc.isenabled()

    with services.cyclic_gc_paused():
        paused = gc.isenabled()

    assert paused is False
    assert gc.isenabled()


def test_gc_pause_keeps_disabled_collector():
    gc.disable()
    try:
        with services.cyclic_gc_paused():
            pass
        still_disabled = not gc.isenabled()
    finally:
        gc.enable()

    assert still_disabled


def test_gc_pause_restores_after_error():
    with pytest.raises(CalculationError), services.cyclic_gc_paused():
        raise CalculationError("Invalid split.")

    assert gc.isenabled()


def test_statement_leaves_gc_enabled(march_deals, personas):
    statement = calculate_statement(personas.rep1, MARCH)

    assert statement.lines
    assert gc.isenabled()
