"""Crediting of deals from leads that routing reassigned."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.test import Client
from django.utils import timezone

from activity.models import Lead
from compensation.crediting import CreditingError, reassigned_owner_shares
from compensation.models import CreditingPolicy, DealOwnerShare
from compensation.services import calculate_statement
from compensation.services_crediting import (
    crediting_policy_update,
    deal_lead_link,
    lead_owners,
)
from goals.calendar import month_range
from routing.models import Assignment, ResponseTimer
from spm.models import AuditLog
from spm.tenancy import tenant_context
from tests.compensation.conftest import (
    assign,
    flat_component,
    make_plan,
    publish_version,
    won_deal,
)
from tests.conftest import login

D = dt.date
MARCH = month_range(D(2024, 3, 1))
A, B, C = 1, 2, 3


@pytest.mark.parametrize(
    ("rule", "percent", "amount", "expected"),
    [
        ("last_owner", "50", "100.01", [(C, "100.01", 2)]),
        ("first_owner", "50", "100.01", [(A, "100.01", 0)]),
        # 10,001 cents / 2: both floor to 5,000; the tie goes to the first.
        ("split_even", "50", "100.01", [(A, "50.01", 0), (C, "50.00", 2)]),
        # 33.3333% of 100.00 is 33.33333; the rest is 66.66667, whose
        # remainder 0.667 cents is the larger, so it gets the leftover cent.
        ("split_share", "33.3333", "100.00", [(A, "33.33", 0), (C, "66.67", 2)]),
        ("split_share", "100", "99.99", [(A, "99.99", 0)]),
        ("split_share", "70", "-10.01", [(A, "-7.01", 0), (C, "-3.00", 2)]),
    ],
)
def test_rules_split_exactly(rule, percent, amount, expected):
    shares = reassigned_owner_shares([A, B, C], Decimal(amount), rule, Decimal(percent))

    assert [(s.member_id, str(s.amount), s.position) for s in shares] == expected
    assert sum(s.amount for s in shares) == Decimal(amount)


def test_lead_back_with_first_owner_gets_all():
    shares = reassigned_owner_shares([A, B, A], Decimal("10.00"), "split_even")

    assert [(s.member_id, s.amount) for s in shares] == [(A, Decimal("10.00"))]


def test_invalid_share_rejected():
    with pytest.raises(CreditingError, match="Invalid first-owner share 120%"):
        reassigned_owner_shares([A, B], Decimal("1.00"), "split_share", Decimal(120))


def test_unknown_rule_rejected():
    with pytest.raises(CreditingError, match="Unknown reassigned-lead rule"):
        reassigned_owner_shares([A, B], Decimal("1.00"), "coin_toss")


def _reassigned_lead(personas) -> Lead:
    """A lead routed to Rita, reassigned to Rob after a missed SLA."""
    org = personas.org
    now = timezone.now()
    lead = Lead.unscoped.create(
        organization=org, email="pat@initech.test", owner=personas.rep2
    )
    Assignment.unscoped.create(
        organization=org,
        lead=lead,
        outcome="assigned",
        member=personas.rep1,
        received_at=now,
        routed_at=now,
    )
    for offset, member in enumerate((personas.rep1, personas.rep2)):
        start = now + dt.timedelta(hours=offset)
        ResponseTimer.unscoped.create(
            organization=org,
            lead=lead,
            member=member,
            assigned_at=start,
            due_at=start + dt.timedelta(minutes=30),
            minutes=30,
            on_breach="reassign",
            status="breached" if offset == 0 else "open",
        )
    return lead


@pytest.fixture
def reassigned(personas):
    """Rob owns a 10,000.01 March deal from a lead first routed to Rita."""
    plan = make_plan(personas.org.pk)
    publish_version(plan, [flat_component("0.10")])
    assign(personas.rep1, plan)
    assign(personas.rep2, plan)
    lead = _reassigned_lead(personas)
    deal = won_deal(personas.rep2, personas.stages["Won"], "10000.01", D(2024, 3, 8))
    return personas, lead, deal


def test_lead_owners_in_routing_order(reassigned, in_org):
    personas, lead, _ = reassigned

    assert lead_owners([lead.pk]) == {lead.pk: [personas.rep1.pk, personas.rep2.pk]}


def _totals(personas) -> tuple[Decimal, Decimal]:
    rita = calculate_statement(personas.rep1, MARCH)
    rob = calculate_statement(personas.rep2, MARCH)
    return rita.total, rob.total


def test_default_rule_credits_last_owner(reassigned, in_org):
    personas, lead, deal = reassigned
    deal_lead_link(deal=deal, lead=lead)

    shares = list(DealOwnerShare.objects.values_list("member_id", "amount"))

    assert shares == [(personas.rep2.pk, Decimal("10000.01"))]
    # 10% of 10,000.01 = 1,000.001, rounded to 1,000.00.
    assert _totals(personas) == (Decimal("0.00"), Decimal("1000.00"))


def test_even_split_credits_both_owners(reassigned, in_org):
    personas, lead, deal = reassigned
    deal_lead_link(deal=deal, lead=lead)

    crediting_policy_update(
        organization=personas.org,
        rule="split_even",
        first_owner_percent=Decimal(50),
        actor=personas.admin.user,
    )

    shares = list(
        DealOwnerShare.objects.values_list("member_id", "percent", "amount", "rule")
    )
    assert shares == [
        (personas.rep1.pk, Decimal("50.0000"), Decimal("5000.01"), "split_even"),
        (personas.rep2.pk, Decimal("50.0000"), Decimal("5000.00"), "split_even"),
    ]
    # 10% of 5,000.01 = 500.001 -> 500.00; 10% of 5,000.00 = 500.00.
    assert _totals(personas) == (Decimal("500.00"), Decimal("500.00"))


def test_first_owner_rule_moves_credit(reassigned, in_org):
    personas, lead, deal = reassigned
    crediting_policy_update(
        organization=personas.org,
        rule="first_owner",
        first_owner_percent=Decimal(50),
        actor=None,
    )

    deal_lead_link(deal=deal, lead=lead)

    assert _totals(personas) == (Decimal("1000.00"), Decimal("0.00"))


def test_deal_splits_win_over_rule(reassigned, in_org):
    personas, lead, _ = reassigned
    split_deal = won_deal(
        personas.rep2,
        personas.stages["Won"],
        "200.00",
        D(2024, 3, 9),
        splits=[(personas.rep2, "100")],
    )
    crediting_policy_update(
        organization=personas.org,
        rule="first_owner",
        first_owner_percent=Decimal(50),
        actor=None,
    )

    deal_lead_link(deal=split_deal, lead=lead)

    assert not DealOwnerShare.objects.filter(deal=split_deal).exists()


def test_policy_change_audited(reassigned, in_org):
    personas, _, _ = reassigned
    crediting_policy_update(
        organization=personas.org,
        rule="split_share",
        first_owner_percent=Decimal("30"),
        actor=personas.admin.user,
    )

    entry = AuditLog.unscoped.get(action="compensation.crediting_policy_updated")

    assert entry.old is None
    assert entry.new == {
        "reassigned_lead_rule": "split_share",
        "first_owner_percent": "30",
    }


def test_policy_page_admin_only(reassigned):
    personas, _, _ = reassigned
    url = "/o/acme/commission/crediting-rule/"

    rep = login(Client(), personas.rep1).post(url, {"reassigned_lead_rule": "x"})
    bad = login(Client(), personas.admin).post(
        url, {"reassigned_lead_rule": "split_share", "first_owner_percent": "120"}
    )
    good = login(Client(), personas.admin).post(
        url, {"reassigned_lead_rule": "split_share", "first_owner_percent": "60"}
    )

    assert rep.status_code == 404
    assert bad.status_code == 400
    assert good.status_code == 302
    with tenant_context(personas.org):
        policy = CreditingPolicy.objects.get()
    assert policy.reassigned_lead_rule == "split_share"
    assert policy.first_owner_percent == Decimal("60")
