"""What-if estimator: projected earnings from open deals, and the tier nudge."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from activity.models import Deal
from tests.compensation.conftest import assign, make_plan, publish_version, won_deal
from tests.conftest import login

D = dt.date

# Marginal tiers on amounts: 5% up to 20,000.00, then 10%.
ACCELERATOR = {
    "name": "Accelerator",
    "kind": "tiered",
    "params": {
        "basis": "amount",
        "mode": "marginal",
        "tiers": [{"from": "0", "rate": "0.05"}, {"from": "20000", "rate": "0.10"}],
    },
}


def _open_deal(personas, name: str, amount: str, close: dt.date) -> Deal:
    stage = personas.stages["Engaging"]
    return Deal.unscoped.create(
        organization=personas.org,
        owner=personas.rep1,
        pipeline=stage.pipeline,
        stage=stage,
        name=name,
        amount=Decimal(amount),
        currency="USD",
        close_date=close,
        external_source="test",
        external_id=name,
    )


@pytest.fixture
def pipeline(personas):
    """Rita has 15,000.00 won in March and open deals of 4,000 and 3,000 closing."""
    plan = make_plan(personas.org.pk)
    publish_version(plan, [ACCELERATOR])
    assign(personas.rep1, plan)
    won_deal(personas.rep1, personas.stages["Won"], "15000.00", D(2024, 3, 5))
    deals = {
        "Apex": _open_deal(personas, "Apex", "4000.00", D(2024, 3, 20)),
        "Birch": _open_deal(personas, "Birch", "3000.00", D(2024, 3, 25)),
    }
    # Closing in April, so not part of March's estimate.
    _open_deal(personas, "Cedar", "50000.00", D(2024, 4, 2))
    return personas, deals


def _get(personas, *deals: Deal, htmx: bool = False):
    url = reverse("compensation:whatif", kwargs={"org_slug": "acme"})
    query = "?period=2024-03" + "".join(f"&deal={deal.public_id}" for deal in deals)
    headers = {"HX-Request": "true"} if htmx else {}
    return login(Client(), personas.rep1).get(url + query, headers=headers)


def test_lists_open_deals_closing_in_period(pipeline):
    personas, _ = pipeline

    response = _get(personas)

    assert [str(deal) for deal in response.context["open_deals"]] == ["Apex", "Birch"]
    # 15,000.00 x 5% = 750.00 earned now.
    assert response.context["estimate"].current.total == Decimal("750.00")
    assert response.context["estimate"].uplift == Decimal("0.00")


def test_one_deal_stays_in_first_tier(pipeline):
    personas, deals = pipeline

    response = _get(personas, deals["Apex"])

    # 19,000.00 x 5% = 950.00, so Apex adds 200.00.
    estimate = response.context["estimate"]
    assert estimate.projected.total == Decimal("950.00")
    assert estimate.uplift == Decimal("200.00")
    body = " ".join(response.content.decode().split())
    assert '<strong class="whatif-projected">950.00</strong> USD' in body
    assert '<span class="whatif-uplift">+200.00</span> USD' in body


def test_both_deals_cross_into_next_tier(pipeline):
    personas, deals = pipeline

    response = _get(personas, deals["Apex"], deals["Birch"])

    # 20,000.00 x 5% + 2,000.00 x 10% = 1,000.00 + 200.00 = 1,200.00.
    estimate = response.context["estimate"]
    assert estimate.projected.total == Decimal("1200.00")
    assert estimate.uplift == Decimal("450.00")


def test_nudge_names_amount_to_next_tier(pipeline):
    personas, _ = pipeline

    response = _get(personas, htmx=True)

    [nudge] = response.context["nudges"]
    assert nudge.needed == Decimal("5000.00")
    assert nudge.open_total == Decimal("7000.00")
    assert nudge.next_rate == Decimal("0.10")
    assert nudge.message == (
        "5,000.00 more in won deals takes Accelerator from tier 0.00-20,000.00 to "
        "tier 20,000.00 and up (10%). Your open deals closing this period add up "
        "to 7,000.00."
    )
    assert "<html" not in response.content.decode()


def test_no_nudge_when_open_deals_fall_short(pipeline):
    personas, deals = pipeline
    Deal.unscoped.filter(pk=deals["Birch"].pk).update(amount=Decimal("500.00"))

    response = _get(personas)

    # 15,000 + 4,000 + 500 = 19,500.00, still under 20,000.00.
    assert response.context["nudges"] == []


def test_other_reps_deal_ignored(pipeline):
    personas, _ = pipeline
    stage = personas.stages["Engaging"]
    theirs = Deal.unscoped.create(
        organization=personas.org,
        owner=personas.rep2,
        pipeline=stage.pipeline,
        stage=stage,
        name="Theirs",
        amount=Decimal("90000.00"),
        close_date=D(2024, 3, 15),
    )

    response = _get(personas, theirs)

    assert response.context["estimate"].uplift == Decimal("0.00")


def test_whatif_queries_fixed(pipeline):
    personas, deals = pipeline
    client = login(Client(), personas.rep1)
    url = f"{reverse('compensation:whatif', kwargs={'org_slug': 'acme'})}"
    url += f"?period=2024-03&deal={deals['Apex'].public_id}"

    def count() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert client.get(url).status_code == 200
        return len(queries)

    few = count()
    for day in range(1, 11):
        _open_deal(personas, f"More {day}", "100.00", D(2024, 3, day))
    many = count()

    # Three calculations of the statement (now, with the ticked deals, with
    # every open deal) at about 11 queries each, plus the page's own.
    assert few == many
    assert many <= 45


def test_my_commission_loads_estimator(pipeline):
    personas, _ = pipeline
    client = login(Client(), personas.rep1)

    body = client.get(
        reverse("compensation:mine", kwargs={"org_slug": "acme"}) + "?period=2024-03"
    ).content.decode()

    assert 'hx-trigger="load"' in body
    assert "/commission/what-if/?period=2024-03" in body
