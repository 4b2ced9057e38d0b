"""Paid commission on deals the CRM archived, listed on the statements page.

The organisation is in New York. Each deal closes in March 2024 and pays 10%
on a March statement that is then paid, before the CRM archives the deal.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.test import Client
from django.urls import reverse

from activity.models import Deal
from compensation import line_blocks, selectors
from compensation import services_statements as services
from compensation.models import Statement
from goals.calendar import month_range
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
NEW_YORK = ZoneInfo("America/New_York")
MARCH = month_range(D(2024, 3, 1))
APRIL = month_range(D(2024, 4, 1))
SEPTEMBER = month_range(D(2024, 9, 1))


def _paid_march(personas, *, clawback: str = "", deals=()) -> list[Deal]:
    """Pay March's commission on ``deals`` (owner, amount, close date)."""
    org = personas.org
    org.time_zone = "America/New_York"
    org.save(update_fields=["time_zone"])
    plan = make_plan(org.pk)
    publish_version(
        plan, [flat_component("0.10")], clawback=clawback, clawback_term_months=12
    )
    for owner in {owner for owner, _, _ in deals}:
        assign(owner, plan)
    deals_made = [
        won_deal(owner, personas.stages["Won"], amount, close_date)
        for owner, amount, close_date in deals
    ]
    _calculate(personas, MARCH)
    with tenant_context(org):
        # Approval turns a statement's block of lines into rows.
        for statement in Statement.objects.filter(period_start=MARCH.start):
            line_blocks.block_expand(statement)
        Statement.objects.filter(period_start=MARCH.start).update(
            status=Statement.Status.PAID,
            approved_at=dt.datetime(2024, 4, 1, tzinfo=dt.UTC),
            paid_at=dt.datetime(2024, 4, 1, tzinfo=dt.UTC),
        )
    return deals_made


def _calculate(personas, period) -> None:
    with tenant_context(personas.org):
        services.statements_calculate(
            organization=personas.org, period=period, actor=personas.admin.user
        )


def _archive(deal: Deal, local: dt.datetime) -> None:
    Deal.unscoped.filter(pk=deal.pk).update(archived_at=local.replace(tzinfo=NEW_YORK))


def _payouts(personas, period, member_ids=None) -> list[tuple]:
    ids = member_ids or [personas.rep1.pk, personas.rep2.pk, personas.rep4.pk]
    with tenant_context(personas.org):
        found = selectors.archived_deal_payouts(ids, period.start, period.end)
    return [
        (p.deal_name, p.member_name, p.archived_on, p.paid, p.taken_back, p.status)
        for p in found
    ]


@pytest.fixture
def no_clawback(personas):
    [deal] = _paid_march(personas, deals=[(personas.rep1, "10000.00", D(2024, 3, 10))])
    return personas, deal


def test_kept_pay_flagged_for_review(no_clawback):
    personas, deal = no_clawback
    _archive(deal, dt.datetime(2024, 4, 20, 9, 0))

    assert _payouts(personas, APRIL) == [
        (
            deal.name,
            "Rita Rep",
            D(2024, 4, 20),
            Decimal("1000.00"),
            Decimal("0"),
            "Kept, because the plan takes nothing back: review",
        )
    ]


def test_archive_counts_in_local_month(no_clawback):
    personas, deal = no_clawback
    # 30 April, 22:00 in New York is 1 May, 02:00 UTC.
    _archive(deal, dt.datetime(2024, 4, 30, 22, 0))

    assert [row[2] for row in _payouts(personas, APRIL)] == [D(2024, 4, 30)]
    assert _payouts(personas, month_range(D(2024, 5, 1))) == []


def test_draft_pay_not_listed(personas):
    [deal] = _paid_march(personas, deals=[(personas.rep1, "10000.00", D(2024, 3, 10))])
    with tenant_context(personas.org):
        Statement.objects.update(
            status=Statement.Status.DRAFT, approved_at=None, paid_at=None
        )
    _archive(deal, dt.datetime(2024, 4, 20, 9, 0))

    assert _payouts(personas, APRIL) == []


def test_prorated_clawback_pending_then_taken(personas):
    [deal] = _paid_march(
        personas,
        clawback="prorated",
        deals=[(personas.rep1, "120000.00", D(2024, 3, 15))],
    )
    _archive(deal, dt.datetime(2024, 9, 15, 12, 0))

    [before] = _payouts(personas, SEPTEMBER)
    _calculate(personas, SEPTEMBER)
    [after] = _payouts(personas, SEPTEMBER)

    assert before[3:] == (
        Decimal("12000.00"),
        Decimal("0"),
        "Taken back when September 2024 is calculated, because the plan takes "
        "back the unserved share of the term",
    )
    # 6 of 12 months served: 12,000.00 x 6 / 12 comes back.
    assert after[3:] == (Decimal("12000.00"), Decimal("-6000.00"), "Taken back")


def test_archived_after_term_keeps_pay(personas):
    [deal] = _paid_march(
        personas,
        clawback="full",
        deals=[(personas.rep1, "120000.00", D(2024, 3, 15))],
    )
    _archive(deal, dt.datetime(2025, 3, 20, 12, 0))

    [row] = _payouts(personas, month_range(D(2025, 3, 1)))

    assert row[5] == "Kept, because the deal was archived after the 12-month term"


def test_page_lists_tree_members_only(personas, django_assert_max_num_queries):
    rita_deal, rex_deal = _paid_march(
        personas,
        deals=[
            (personas.rep1, "10000.00", D(2024, 3, 10)),
            (personas.rep4, "9000.00", D(2024, 3, 10)),
        ],
    )
    _archive(rita_deal, dt.datetime(2024, 4, 2, 9, 0))
    _archive(rex_deal, dt.datetime(2024, 4, 3, 9, 0))
    client = login(Client(), personas.manager)
    url = reverse("compensation:statements", kwargs={"org_slug": "acme"})

    # The list's queries (its page count and status summary among them),
    # plus one for the archived deals and one for the clawbacks of the
    # draft blocks.
    with django_assert_max_num_queries(13):
        response = client.get(url + "?period=2024-04")

    html = response.content.decode()
    assert "Paid commission on deals archived in April 2024" in html
    assert rita_deal.name in html
    # Rex reports to another manager.
    assert rex_deal.name not in html
