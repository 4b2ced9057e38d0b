"""SPIFF conditions on the deal type and segment that CRM field mappings fill."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from compensation.models import Statement
from compensation.services import calculate_statement
from compensation.services_statements import statements_calculate
from goals.calendar import month_range
from tests.compensation.conftest import assign, make_plan, publish_version, won_deal

D = dt.date
MARCH = month_range(D(2024, 3, 1))
SPIFF = {
    "name": "New enterprise logos",
    "kind": "spiff",
    "params": {
        "starts_on": "2024-03-01",
        "ends_on": "2024-03-31",
        "conditions": [
            {"field": "deal_type", "operator": "equals", "value": "New business"},
            {
                "field": "segment",
                "operator": "in",
                "value": ["Enterprise", "Mid-market"],
            },
        ],
        "amount": "500",
    },
}


@pytest.fixture
def rita(in_org, personas):
    rita, won = personas.rep1, personas.stages["Won"]
    plan = make_plan(in_org.pk, "SPIFF plan")
    publish_version(plan, [SPIFF])
    assign(rita, plan)
    deals = [
        # Both conditions hold; text compares ignore case.
        ("NEW BUSINESS", "enterprise"),
        ("Renewal", "Enterprise"),
        ("New business", "SMB"),
        ("New business", "Mid-market"),
        ("", ""),
    ]
    for number, (deal_type, segment) in enumerate(deals):
        deal = won_deal(rita, won, "10000.00", D(2024, 3, 4 + number))
        deal.deal_type, deal.segment = deal_type, segment
        deal.save(update_fields=["deal_type", "segment"])
    return rita


def test_spiff_pays_matching_deal_types(rita):
    statement = calculate_statement(rita, MARCH)

    # Two of the five deals are new business in a listed segment: 2 x 500.
    paid = [line for line in statement.lines if line.amount]
    assert [line.amount for line in paid] == [Decimal("500.00"), Decimal("500.00")]
    assert statement.total == Decimal("1000.00")


def test_full_run_pays_matching_deal_types(rita, in_org):
    statements_calculate(organization=in_org, period=MARCH, actor=None)

    stored = Statement.objects.get(member=rita)
    assert stored.total == Decimal("1000.00")
