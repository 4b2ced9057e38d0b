"""Plan documents and version diffs, checked against sentences written by hand."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from compensation.plan_document import plan_document, version_diff
from tests.compensation.conftest import make_plan, publish_version

D = dt.date

ATTAINMENT_TIERS = {
    "name": "Accelerator",
    "kind": "tiered",
    "params": {
        "basis": "attainment",
        "mode": "marginal",
        "threshold": "50",
        "tiers": [
            {"from": "0", "to": "100", "rate": "0.05"},
            {"from": "100", "to": "150", "rate": "0.08"},
            {"from": "150", "rate": "0.12"},
        ],
    },
    "cap_per_deal": Decimal("5000"),
    "cap_per_period": Decimal("20000"),
}
BONUS = {
    "name": "Bonus",
    "kind": "bonus",
    "params": {
        "milestones": [
            {"attainment": "100", "amount": "2000"},
            {"attainment": "150", "target_incentive_percent": "10"},
        ]
    },
}
SPIFF = {
    "name": "Spring SPIFF",
    "kind": "spiff",
    "params": {
        "starts_on": "2024-03-01",
        "ends_on": "2024-03-31",
        "conditions": [
            {"field": "product", "operator": "contains", "value": "GTX Pro"}
        ],
        "amount": "500",
    },
}


def _sections(document) -> dict[str, list[str]]:
    return {section.name: list(section.sentences) for section in document.components}


@pytest.fixture
def plan(personas, in_org):
    return make_plan(personas.org.pk, "AE plan")


def test_document_tiered_attainment(plan):
    version = publish_version(
        plan,
        [ATTAINMENT_TIERS],
        cap_per_period=Decimal("50000"),
        clawback="prorated",
        clawback_term_months=12,
    )

    document = plan_document(version)

    assert document.title == "AE plan v1"
    assert list(document.general) == [
        "The plan pays in USD.",
        "The whole plan pays at most 50,000.00 USD a period.",
        "Commission is paid in the period the deal is credited.",
        "If a deal is cancelled within 12 months, the commission for the "
        "unserved share of that term is taken back.",
    ]
    assert _sections(document)["Accelerator"] == [
        "Bookings from 0% to 100% of quota earn 5%.",
        "Bookings from 100% to 150% of quota earn 8%.",
        "Bookings from 150% of quota up earn 12%.",
        "Each part of the period's bookings earns the rate of the tier it falls in.",
        "Nothing is paid until the period's bookings reach 50% of quota.",
        "One deal earns at most 5,000.00 USD from this component, before any split.",
        "This component pays at most 20,000.00 USD a period.",
    ]


def test_document_tiered_amount_retroactive(plan):
    tiers = {
        "name": "Tiers",
        "kind": "tiered",
        "params": {
            "basis": "amount",
            "mode": "retroactive",
            "tiers": [
                {"from": "0", "to": "10000", "rate": "0.05"},
                {"from": "10000", "rate": "0.075"},
            ],
        },
    }
    version = publish_version(plan, [tiers], payout_timing="on_payment")

    document = plan_document(version)

    assert "Commission is paid pro rata as the customer pays." in document.general
    assert _sections(document)["Tiers"] == [
        "Bookings from 0.00 to 10,000.00 USD earn 5%.",
        "Bookings from 10,000.00 USD up earn 7.5%.",
        "Once the period's bookings reach a tier, all of them earn that tier's rate.",
    ]


def test_document_other_kinds(plan):
    flat = {"name": "Base", "kind": "flat", "params": {"rate": "0.1"}}
    override = {
        "name": "Override",
        "kind": "override",
        "params": {"rate": "0.02", "levels": 1},
    }
    tree = {"name": "Tree", "kind": "override", "params": {"rate": "0.01"}}
    rate_spiff = {
        "name": "Rate SPIFF",
        "kind": "spiff",
        "params": {
            "starts_on": "2024-04-01",
            "ends_on": "2024-04-30",
            "conditions": [
                {"field": "amount", "operator": "gte", "value": "25000"},
                {"field": "pipeline", "operator": "in", "value": ["New", "Upsell"]},
            ],
            "rate": "0.02",
        },
    }
    version = publish_version(
        plan, [flat, BONUS, SPIFF, override, tree, rate_spiff], clawback="full"
    )

    document = plan_document(version)
    sections = _sections(document)

    assert (
        "If a deal is cancelled within 12 months, all of its commission is "
        "taken back." in document.general
    )
    assert sections["Base"] == ["Every booking earns 10%."]
    assert sections["Bonus"] == [
        "Reaching 100% of quota in a period pays a bonus of 2,000.00 USD.",
        "Reaching 150% of quota in a period pays a bonus of 10% of the target "
        "incentive.",
    ]
    assert sections["Spring SPIFF"] == [
        "Deals closed from 2024-03-01 to 2024-03-31 where product contains "
        '"gtx pro" earn 500.00 USD each, split like the deal.'
    ]
    assert sections["Override"] == [
        "You earn 2% of the bookings credited to your direct reports."
    ]
    assert sections["Tree"] == [
        "You earn 1% of the bookings credited to everyone in your reporting tree."
    ]
    assert sections["Rate SPIFF"] == [
        "Deals closed from 2024-04-01 to 2024-04-30 where amount is at least "
        '25,000.00 and pipeline is one of "new", "upsell" earn 2% of their amount.'
    ]


def test_diff_rates_caps_and_components(plan):
    old = publish_version(
        plan,
        [ATTAINMENT_TIERS, BONUS],
        effective_from=D(2024, 1, 1),
        cap_per_period=Decimal("50000"),
    )
    raised = {
        **ATTAINMENT_TIERS,
        "params": {
            **ATTAINMENT_TIERS["params"],
            "tiers": [
                {"from": "0", "to": "100", "rate": "0.05"},
                {"from": "100", "to": "150", "rate": "0.10"},
                {"from": "150", "to": "200", "rate": "0.12"},
                {"from": "200", "rate": "0.15"},
            ],
        },
        "cap_per_period": None,
    }
    new = publish_version(plan, [raised, SPIFF], effective_from=D(2024, 7, 1))

    changes = version_diff(old, new)

    assert changes == [
        "Effective from: 2024-01-01 -> 2024-07-01",
        "Plan cap per period removed (was 50,000.00)",
        "Accelerator, tier 100-150%: rate 8% -> 10%",
        "Accelerator, tier 150-200% added at 12%",
        "Accelerator, tier 200% and up added at 15%",
        "Accelerator, tier 150% and up removed (was 12%)",
        "Accelerator, cap per period removed (was 20,000.00)",
        "Spring SPIFF added: Deals closed from 2024-03-01 to 2024-03-31 where "
        'product contains "gtx pro" earn 500.00 USD each, split like the deal.',
        "Bonus removed",
    ]


def test_diff_same_terms_only_date(plan):
    first = publish_version(plan, [BONUS], effective_from=D(2024, 1, 1))
    second = publish_version(plan, [BONUS], effective_from=D(2024, 2, 1))

    assert version_diff(first, second) == ["Effective from: 2024-01-01 -> 2024-02-01"]


def test_diff_milestone_and_flat_rate(plan):
    flat = {"name": "Base", "kind": "flat", "params": {"rate": "0.08"}}
    old = publish_version(plan, [flat, BONUS], effective_from=D(2024, 1, 1))
    new_bonus = {
        **BONUS,
        "params": {"milestones": [{"attainment": "100", "amount": "2500"}]},
    }
    new_flat = {**flat, "params": {"rate": "0.1"}, "cap_per_deal": Decimal("3000")}
    new = publish_version(plan, [new_flat, new_bonus], effective_from=D(2024, 4, 1))

    assert version_diff(old, new) == [
        "Effective from: 2024-01-01 -> 2024-04-01",
        "Base, rate: 8% -> 10%",
        "Base, cap per deal added: 3,000.00",
        "Bonus, milestone 100%: 2,000.00 -> 2,500.00",
        "Bonus, milestone 150% removed (was 10% of target incentive)",
    ]
