"""Calculation runs in batches: the number of queries does not grow with reps."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from activity.models import Deal
from compensation import line_blocks, selectors
from compensation import services_statements as services
from compensation.models import (
    CalculationRun,
    Statement,
    StatementLine,
    StatementLineBlock,
)
from goals.calendar import month_range
from spm.models import Membership
from tests.compensation.conftest import (
    assign,
    flat_component,
    make_plan,
    publish_version,
    won_deal,
)
from tests.factories import MembershipFactory
from tests.security.conftest import switch_to_rls_role

# Query counts and row-level security of the PostgreSQL statements; on SQLite
# the store writes through the ORM, whose batches follow SQLite's limits.
POSTGRESQL_ONLY = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="The store's PostgreSQL statements."
)
D = dt.date
MARCH = month_range(D(2024, 3, 1))
AMOUNT_TIERS = {
    "name": "Tiers",
    "kind": "tiered",
    "params": {
        "basis": "amount",
        "mode": "marginal",
        "tiers": [
            {"from": "0", "to": "10000", "rate": "0.05"},
            {"from": "10000", "rate": "0.10"},
        ],
    },
}


@pytest.fixture
def plan(in_org, personas):
    plan = make_plan(in_org.pk)
    publish_version(plan, [flat_component("0.10"), AMOUNT_TIERS])
    return plan


def _add_reps(personas, plan, count: int) -> list[Membership]:
    """Assign ``count`` new reps, each with deals of 10,000.00 and 2,500.00."""
    won = personas.stages["Won"]
    reps = []
    for _ in range(count):
        rep = MembershipFactory(organization=personas.org, role=Membership.Role.REP)
        assign(rep, plan)
        won_deal(rep, won, "10000.00", D(2024, 3, 5))
        won_deal(rep, won, "2500.00", D(2024, 3, 20))
        reps.append(rep)
    return reps


def _run_queries(personas) -> int:
    with CaptureQueriesContext(connection) as queries:
        run = services.statements_calculate(
            organization=personas.org, period=MARCH, actor=personas.admin.user
        )
    assert run.status == CalculationRun.Status.DONE
    assert run.error_count == 0
    return len(queries)


def test_full_run_queries_fixed(personas, plan):
    _add_reps(personas, plan, 3)
    first_with_three = _run_queries(personas)
    rerun_with_three = _run_queries(personas)
    Statement.objects.all().delete()
    _add_reps(personas, plan, 6)
    first_with_nine = _run_queries(personas)
    rerun_with_nine = _run_queries(personas)

    assert first_with_three == first_with_nine
    assert rerun_with_three == rerun_with_nine
    assert Statement.objects.count() == 9


def test_batch_stores_hand_worked_totals(personas, plan):
    reps = _add_reps(personas, plan, 3)

    services.statements_calculate(
        organization=personas.org, period=MARCH, actor=personas.admin.user
    )

    # Lines follow the credit dates. The 10,000.00 deal pays 10% flat and
    # 5% in the first tier, and the 2,500.00 deal 10% flat and 10% in the
    # upper tier: 1,000 + 500 + 250 + 250 = 2,000.00.
    for rep in reps:
        statement = Statement.objects.get(member=rep, period_start=MARCH.start)
        amounts = [line.amount for line in selectors.statement_lines(statement)]
        assert amounts == [
            Decimal("1000.00"),
            Decimal("500.00"),
            Decimal("250.00"),
            Decimal("250.00"),
        ]
        assert statement.total == Decimal("2000.00")


def test_rerun_keeps_manual_line_last(personas, plan):
    (rep,) = _add_reps(personas, plan, 1)
    services.statements_calculate(
        organization=personas.org, period=MARCH, actor=personas.admin.user
    )
    statement = Statement.objects.get(member=rep, period_start=MARCH.start)
    services.statement_adjust(
        statement=statement,
        amount=Decimal("40.00"),
        reason="Spot bonus",
        editor=personas.admin,
        actor=personas.admin.user,
    )
    won_deal(rep, personas.stages["Won"], "1000.00", D(2024, 3, 25))

    services.statements_calculate(
        organization=personas.org, period=MARCH, actor=personas.admin.user
    )

    # The new deal adds 1,000 x 10% = 100.00 and 1,000 x 10% in the upper
    # tier = 100.00. The manual line keeps its amount and follows them.
    statement.refresh_from_db()
    lines = selectors.statement_lines(statement)
    assert [line.kind for line in lines] == [StatementLine.Kind.NORMAL] * 6 + [
        StatementLine.Kind.MANUAL
    ]
    assert [line.order for line in lines] == list(range(7))
    assert lines[-1].amount == Decimal("40.00")
    assert statement.total == Decimal("2240.00")


@POSTGRESQL_ONLY
def test_one_member_store_queries_fixed(personas, plan):
    (rep,) = _add_reps(personas, plan, 1)
    run = services.statements_calculate(
        organization=personas.org, period=MARCH, actor=personas.admin.user
    )

    def count() -> int:
        with CaptureQueriesContext(connection) as queries:
            services._store_member(rep, MARCH, run, None)
        return len(queries)

    # Each count follows new deals dated before the others, so both delete
    # and insert lines.
    won_deal(rep, personas.stages["Won"], "100.00", D(2024, 3, 1))
    few = count()
    for day in range(1, 21):
        won_deal(rep, personas.stages["Won"], "100.00", D(2024, 3, day))
    many = count()

    assert few == many
    assert many <= 20


def test_rerun_skips_unchanged_block(personas, plan):
    (rep,) = _add_reps(personas, plan, 1)
    services.statements_calculate(
        organization=personas.org, period=MARCH, actor=personas.admin.user
    )
    statement = Statement.objects.get(member=rep, period_start=MARCH.start)
    block = StatementLineBlock.objects.get(statement=statement)
    ids = [line.public_id for line in selectors.statement_lines(statement)]

    with CaptureQueriesContext(connection) as queries:
        services.statements_calculate(
            organization=personas.org, period=MARCH, actor=personas.admin.user
        )

    # The same lines give the same digest, so the block row is not written
    # again and the lines keep their public ids.
    assert not [
        q
        for q in queries
        if "statementlineblock" in q["sql"].lower()
        and q["sql"].lstrip().upper().startswith(("INSERT", "DELETE"))
    ]
    block_after = StatementLineBlock.objects.get(statement=statement)
    assert block_after.created_at == block.created_at
    assert [line.public_id for line in selectors.statement_lines(statement)] == ids


def test_rerun_rewrites_changed_block(personas, plan):
    (rep,) = _add_reps(personas, plan, 1)
    services.statements_calculate(
        organization=personas.org, period=MARCH, actor=personas.admin.user
    )
    statement = Statement.objects.get(member=rep, period_start=MARCH.start)
    later_deal = Deal.objects.get(owner=rep, close_date=D(2024, 3, 20))
    Deal.objects.filter(pk=later_deal.pk).update(amount=Decimal("3000.00"))

    services.statements_calculate(
        organization=personas.org, period=MARCH, actor=personas.admin.user
    )

    # The 3,000.00 deal now pays 300.00 flat and 300.00 in the upper tier.
    block = StatementLineBlock.objects.get(statement=statement)
    assert block.line_count == 4
    assert block.total == Decimal("2100.00")
    assert [line.amount for line in selectors.statement_lines(statement)] == [
        Decimal("1000.00"),
        Decimal("500.00"),
        Decimal("300.00"),
        Decimal("300.00"),
    ]
    assert not StatementLine.objects.filter(statement=statement).exists()
    statement.refresh_from_db()
    assert statement.total == Decimal("2100.00")


def test_rerun_replaces_only_changed_rows(personas, plan):
    (rep,) = _add_reps(personas, plan, 1)
    services.statements_calculate(
        organization=personas.org, period=MARCH, actor=personas.admin.user
    )
    statement = Statement.objects.get(member=rep, period_start=MARCH.start)
    # A dispute on a line turns the block into rows, which reruns then keep.
    line_blocks.block_expand(statement)
    before = list(statement.lines.order_by("order").values_list("pk", flat=True))
    later_deal = Deal.objects.get(owner=rep, close_date=D(2024, 3, 20))
    Deal.objects.filter(pk=later_deal.pk).update(amount=Decimal("3000.00"))

    services.statements_calculate(
        organization=personas.org, period=MARCH, actor=personas.admin.user
    )

    # The 10,000.00 deal's two lines are unchanged and keep their rows. The
    # 3,000.00 deal now pays 300.00 flat and 300.00 in the upper tier.
    lines = list(statement.lines.order_by("order"))
    assert [line.pk for line in lines[:2]] == before[:2]
    assert not {line.pk for line in lines[2:]} & set(before)
    assert [line.amount for line in lines] == [
        Decimal("1000.00"),
        Decimal("500.00"),
        Decimal("300.00"),
        Decimal("300.00"),
    ]
    statement.refresh_from_db()
    assert statement.total == Decimal("2100.00")


@POSTGRESQL_ONLY
def test_batch_writes_under_row_level_security(personas, plan):
    (rep,) = _add_reps(personas, plan, 1)
    switch_to_rls_role()

    services.statements_calculate(
        organization=personas.org, period=MARCH, actor=personas.admin.user
    )
    later_deal = Deal.objects.get(owner=rep, close_date=D(2024, 3, 20))
    Deal.objects.filter(pk=later_deal.pk).update(amount=Decimal("3000.00"))
    run = services.statements_calculate(
        organization=personas.org, period=MARCH, actor=personas.admin.user
    )

    # The raw INSERT, UPDATE and DELETE statements pass the policies: the
    # rerun stores 1,000 + 500 + 300 + 300 = 2,100.00, with two snapshots.
    statement = Statement.objects.get(member=rep, period_start=MARCH.start)
    assert run.calculated_count == 1
    assert statement.total == Decimal("2100.00")
    assert len(selectors.statement_lines(statement)) == 4
    assert statement.snapshots.count() == 2
