"""The value-balanced pool method and a lead's expected value."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from activity.models import Account, Lead
from routing.engine.rotation import VALUE_BALANCED, Rotation, pick
from routing.engine.value import expected_value, size_band, typical_deal_sizes
from routing.models import LeadQualification
from tests.measurement.builders import make_deal
from tests.routing.conftest import make_pool, make_rep, publish_pool, route_new_lead

D = Decimal
TODAY = dt.date(2024, 6, 30)


def _run(values: list[str], names=("A", "B", "C")) -> tuple[list[str], Rotation]:
    rotation = Rotation()
    chosen = []
    for value in values:
        slots = [rotation.slot(key, key) for key in range(len(names))]
        slot = pick(VALUE_BALANCED, rotation, slots, "2024-06-30", D(value))
        chosen.append(names[slot.key])
    return chosen, rotation


def test_value_balanced_sequence():
    chosen, rotation = _run(["100", "50", "50", "10", "200", "30", "5", "5", "1"])

    # Each lead goes to the rep with the least value so far, and equal values
    # go to the rep whose last lead is older. So: A 100, B 50, C 50, then B 60
    # (B's turn 2 is older than C's 3), C 250, B 90, B 95, B 100. Then A and
    # B tie at 100, and A's turn 1 is older than B's 8.
    assert chosen == ["A", "B", "C", "B", "C", "B", "B", "B", "A"]
    assert rotation.counters["0"]["value"] == "101"
    assert rotation.counters["1"]["value"] == "100"
    assert rotation.counters["2"]["value"] == "250"


def test_equal_values_are_round_robin():
    chosen, _rotation = _run(["10"] * 6)

    assert chosen == ["A", "B", "C", "A", "B", "C"]


def test_new_rep_starts_at_lowest_value():
    _chosen, rotation = _run(["100", "40"], names=("A", "B"))
    slots = [rotation.slot(key, key) for key in range(3)]

    first = pick(VALUE_BALANCED, rotation, slots, "2024-06-30", D("70"))

    # C starts at B's 40, ties with B, and goes first as it never had a turn.
    assert first.key == 2
    assert rotation.counters["2"]["value"] == "110"
    assert rotation.counters["1"]["value"] == "40"


@pytest.mark.parametrize(
    ("employees", "band"),
    [(None, None), (0, 0), (49, 0), (50, 1), (249, 1), (250, 2), (999, 2), (1000, 3)],
)
def test_size_bands(employees, band):
    assert size_band(employees) == band


@pytest.fixture
def won_deals(acme, personas):
    """Deals won in the last year: band 0 means 200, band 2 1,000, all 500."""
    won = personas.stages["Won"]
    small = Account.objects.create(organization=acme, name="Small", employees=30)
    large = Account.objects.create(organization=acme, name="Large", employees=500)
    for amount, account in (("100", small), ("300", small), ("1000", large)):
        deal = make_deal(personas.rep1, won, amount, dt.date(2024, 3, 1))
        deal.account = account
        deal.save()
    make_deal(personas.rep1, won, "600", dt.date(2024, 3, 1))
    # Won too long ago, and lost: neither counts.
    make_deal(personas.rep1, won, "99999", dt.date(2023, 6, 30))
    make_deal(personas.rep1, personas.stages["Lost"], "99999", dt.date(2024, 3, 1))
    return acme


def test_typical_deal_sizes(won_deals):
    sizes = typical_deal_sizes(TODAY)

    assert sizes == {0: D("200"), 2: D("1000"), None: D("500")}


@pytest.mark.parametrize(
    ("fields", "predicted", "value"),
    [
        ({"estimated_value": D("1000")}, 50.0, "500.00"),
        ({"estimated_value": D("1000")}, None, "1000.00"),
        ({"company_size": 10}, 25.0, "50.00"),
        ({"company_size": 700}, None, "1000.00"),
        ({"company_size": 5000}, None, "500.00"),
        ({}, 12.5, "62.50"),
    ],
)
def test_expected_value(won_deals, fields, predicted, value):
    lead = Lead.objects.create(organization=won_deals, email="x@example.test", **fields)
    if predicted is not None:
        LeadQualification.objects.create(
            organization=won_deals, lead=lead, predicted_score=predicted
        )
        lead = Lead.objects.get(pk=lead.pk)

    assert expected_value(lead, TODAY) == D(value)


def test_pool_shares_by_value(acme):
    reps = [make_rep(acme, name) for name in ("A", "B")]
    pool = make_pool(acme, "value_balanced", reps)
    publish_pool(acme, pool)

    owners = [
        route_new_lead(acme, estimated_value=value).member.display_name
        for value in ("1000", "100", "100", "100", "1000")
    ]

    # A 1000; B 100, 200, 300; then B (300) is still below A (1000).
    assert owners == ["A", "B", "B", "B", "B"]
