"""Stored statements: calculation runs, locking, adjustments, approval, payment."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction

from compensation import selectors
from compensation import services_statements as services
from compensation.models import (
    CalculationRun,
    Statement,
    StatementLine,
    StatementLineBlock,
)
from goals.calendar import month_range
from spm.models import AuditLog
from spm.rls.policies import tenant_tables
from spm.tenancy import tenant_context
from tests.compensation.conftest import (
    ATTAINMENT_TIERS,
    assign,
    flat_component,
    make_plan,
    publish_version,
    won_deal,
)

D = dt.date
MARCH = month_range(D(2024, 3, 1))
APRIL = month_range(D(2024, 4, 1))
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


def _calculate(personas, period=MARCH):
    return services.statements_calculate(
        organization=personas.org, period=period, actor=personas.admin.user
    )


def _statement(member, period=MARCH) -> Statement:
    return Statement.objects.get(
        member=member, period_start=period.start, period_end=period.end
    )


def _lines(statement: Statement) -> list[StatementLine]:
    """Return the statement's lines in order, from its block and its rows."""
    return selectors.statement_lines(statement)


def _amounts(statement: Statement) -> list[tuple[str, Decimal]]:
    return [(line.kind, line.amount) for line in _lines(statement)]


def _approve(personas, statement):
    return services.statement_approve(
        statement=statement, approver=personas.manager, actor=personas.manager.user
    )


def test_calculate_stores_drafts_for_assigned(march):
    run = _calculate(march)

    run.refresh_from_db()
    assert run.status == CalculationRun.Status.DONE
    assert run.progress == 100
    assert run.member_count == 2
    assert run.calculated_count == 2
    assert run.error_count == 0
    rita = _statement(march.rep1)
    # 10,000 x 10% and 2,500 x 10%.
    assert _amounts(rita) == [
        ("normal", Decimal("1000.00")),
        ("normal", Decimal("250.00")),
    ]
    assert rita.total == Decimal("1250.00")
    assert rita.status == Statement.Status.DRAFT
    assert rita.currency == "USD"
    assert rita.run == run
    assert _statement(march.rep2).total == Decimal("400.00")
    assert not Statement.objects.filter(member=march.rep3).exists()


def test_line_keeps_deal_rate_and_explanation(march):
    _calculate(march)

    line = _lines(_statement(march.rep1))[0]
    assert line.deal.name == line.deal_name
    assert line.credit_share == Decimal("1")
    assert line.base_amount == Decimal("10000.00")
    assert line.rate == Decimal("0.10")
    assert line.component_name == "Commission"
    assert line.plan_version_label == "AE plan v1"
    assert line.line_type == "commission"
    assert "1,000.00" in line.explanation


def test_split_line_stores_credit_share(march):
    won_deal(
        march.rep2,
        march.stages["Won"],
        "3000.00",
        D(2024, 3, 25),
        splits=[(march.rep1, "60"), (march.rep2, "40")],
    )

    _calculate(march)

    split_line = _lines(_statement(march.rep1))[2]
    assert split_line.credit_share == Decimal("0.6")
    # 60% of 3,000 is 1,800, at 10%.
    assert split_line.amount == Decimal("180.00")


def test_total_is_exact_sum_of_rounded_lines(in_org, personas):
    won = personas.stages["Won"]
    plan = make_plan(in_org.pk)
    publish_version(plan, [flat_component("0.075")])
    assign(personas.rep1, plan)
    for day in (3, 4, 5):
        won_deal(personas.rep1, won, "333.33", D(2024, 3, day))

    _calculate(personas)

    statement = _statement(personas.rep1)
    # Each line is 24.99975, rounded to 25.00; the exact sum would be 74.99925.
    assert [line.amount for line in _lines(statement)] == [Decimal("25.00")] * 3
    assert statement.total == Decimal("75.00")
    assert statement.total == sum(line.amount for line in _lines(statement))


def test_rerun_replaces_draft_lines_keeps_manual(march):
    _calculate(march)
    rita = _statement(march.rep1)
    services.statement_adjust(
        statement=rita,
        amount=Decimal("50.00"),
        reason="Referral bonus",
        editor=march.manager,
        actor=march.manager.user,
    )
    won_deal(march.rep1, march.stages["Won"], "1000.00", D(2024, 3, 28))

    _calculate(march)

    rita.refresh_from_db()
    assert _amounts(rita) == [
        ("normal", Decimal("1000.00")),
        ("normal", Decimal("250.00")),
        ("normal", Decimal("100.00")),
        ("manual", Decimal("50.00")),
    ]
    assert rita.total == Decimal("1400.00")
    assert Statement.objects.filter(member=march.rep1).count() == 1


def test_approved_change_goes_to_next_draft(march):
    _calculate(march)
    rita = _approve(march, _statement(march.rep1))
    won_deal(march.rep1, march.stages["Won"], "3000.00", D(2024, 3, 28))

    run = _calculate(march)

    rita.refresh_from_db()
    assert rita.status == Statement.Status.APPROVED
    assert rita.total == Decimal("1250.00")
    assert _amounts(rita) == [
        ("normal", Decimal("1000.00")),
        ("normal", Decimal("250.00")),
    ]
    april = _statement(march.rep1, APRIL)
    assert april.status == Statement.Status.DRAFT
    adjustment = april.lines.get()
    assert adjustment.kind == StatementLine.Kind.ADJUSTMENT
    # The recalculated March pays 1,550.00: 300.00 more than was approved.
    assert adjustment.amount == Decimal("300.00")
    assert adjustment.explanation == (
        "adjustment for March 2024: the recalculated total is 1,550.00 USD, "
        "1,250.00 was already paid or carried"
    )
    assert adjustment.adjusts_period_start == D(2024, 3, 1)
    assert april.total == Decimal("300.00")
    run.refresh_from_db()
    assert run.locked_count == 1
    assert run.adjustment_count == 1
    assert run.calculated_count == 1


def test_rerun_adds_no_second_adjustment(march):
    _calculate(march)
    _approve(march, _statement(march.rep1))
    won_deal(march.rep1, march.stages["Won"], "3000.00", D(2024, 3, 28))
    _calculate(march)

    _calculate(march)

    assert StatementLine.objects.filter(kind="adjustment").count() == 1


def test_adjustment_survives_next_period_run(march):
    _calculate(march)
    _approve(march, _statement(march.rep1))
    won_deal(march.rep1, march.stages["Won"], "3000.00", D(2024, 3, 28))
    _calculate(march)
    won_deal(march.rep1, march.stages["Won"], "2000.00", D(2024, 4, 3))

    _calculate(march, APRIL)

    april = _statement(march.rep1, APRIL)
    assert _amounts(april) == [
        ("normal", Decimal("200.00")),
        ("adjustment", Decimal("300.00")),
    ]
    assert april.total == Decimal("500.00")


def test_adjustment_goes_to_existing_draft(march):
    _calculate(march)
    _calculate(march, APRIL)
    _approve(march, _statement(march.rep1))
    won_deal(march.rep1, march.stages["Won"], "-1000.00", D(2024, 3, 28))

    _calculate(march)

    april = _statement(march.rep1, APRIL)
    # A 1,000 credit note takes back 100.00 from the approved March.
    assert _amounts(april) == [("adjustment", Decimal("-100.00"))]
    assert april.total == Decimal("-100.00")


def test_member_error_does_not_stop_run(march):
    plan = make_plan(march.org.pk, "Quota plan")
    publish_version(plan, [ATTAINMENT_TIERS])
    assign(march.rep3, plan)

    run = _calculate(march)

    run.refresh_from_db()
    assert run.status == CalculationRun.Status.DONE
    assert run.member_count == 3
    assert run.calculated_count == 2
    assert run.error_count == 1
    assert run.errors[0]["member"] == "Remy Rep"
    assert "quota" in run.errors[0]["message"]
    assert not Statement.objects.filter(member=march.rep3).exists()


def test_calculate_writes_audit_entry(march):
    run = _calculate(march)

    entry = AuditLog.objects.get(action="compensation.statements_calculated")
    assert entry.object_id == str(run.public_id)
    assert entry.new["calculated"] == 2
    assert entry.new["period"] == "March 2024"


def test_queued_run_executes_through_task(march, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        run = services.calculation_run_queue(
            organization=march.org, period=MARCH, actor=march.admin.user
        )

    run.refresh_from_db()
    assert run.status == CalculationRun.Status.DONE
    assert run.progress == 100
    assert _statement(march.rep1).total == Decimal("1250.00")


def test_queue_rejects_second_active_run(march):
    services.calculation_run_queue(
        organization=march.org, period=MARCH, actor=march.admin.user
    )

    with pytest.raises(services.CalculationBusyError, match="March 2024"):
        services.calculation_run_queue(
            organization=march.org, period=MARCH, actor=march.admin.user
        )


def test_manager_approves_report(march):
    _calculate(march)

    statement = _approve(march, _statement(march.rep1))

    assert statement.status == Statement.Status.APPROVED
    assert statement.approved_by == march.manager.user
    assert statement.approved_at is not None
    entry = AuditLog.objects.get(action="compensation.statement_approved")
    assert entry.old["status"] == "draft"
    assert entry.new["status"] == "approved"


@pytest.mark.parametrize("approver", ["rep1", "rep2", "other_manager"])
def test_approve_rejected_outside_reach(march, approver):
    _calculate(march)
    statement = _statement(march.rep1)
    member = getattr(march, approver)

    with pytest.raises(services.StatementError, match="cannot approve"):
        services.statement_approve(
            statement=statement, approver=member, actor=member.user
        )

    statement.refresh_from_db()
    assert statement.status == Statement.Status.DRAFT


def test_approve_twice_rejected(march):
    _calculate(march)
    _approve(march, _statement(march.rep1))

    with pytest.raises(services.StatementError, match="already approved"):
        _approve(march, _statement(march.rep1))


def test_mark_paid_needs_admin_and_approval(march):
    _calculate(march)
    statement = _statement(march.rep1)
    with pytest.raises(services.StatementError, match="approve it"):
        services.statement_mark_paid(
            statement=statement, payer=march.admin, actor=march.admin.user
        )
    _approve(march, statement)
    with pytest.raises(services.StatementError, match="Only an admin"):
        services.statement_mark_paid(
            statement=statement, payer=march.manager, actor=march.manager.user
        )

    paid = services.statement_mark_paid(
        statement=statement, payer=march.admin, actor=march.admin.user
    )

    assert paid.status == Statement.Status.PAID
    assert paid.paid_at is not None
    assert AuditLog.objects.filter(action="compensation.statement_paid").count() == 1


def test_manual_adjustment_audited(march):
    _calculate(march)
    statement = _statement(march.rep1)

    line = services.statement_adjust(
        statement=statement,
        amount=Decimal("-75.50"),
        reason="Expense advance",
        editor=march.admin,
        actor=march.admin.user,
    )

    statement.refresh_from_db()
    assert line.kind == StatementLine.Kind.MANUAL
    assert line.explanation == "manual adjustment: Expense advance"
    assert statement.total == Decimal("1174.50")
    entry = AuditLog.objects.get(action="compensation.statement_manual_line")
    assert entry.old == {"total": "1250.00"}
    assert entry.new == {
        "amount": "-75.50",
        "reason": "Expense advance",
        "total": "1174.50",
    }


@pytest.mark.parametrize(
    ("amount", "reason", "message"),
    [("10.00", "   ", "needs a reason"), ("0.00", "Typo", "other than 0.00")],
)
def test_manual_adjustment_invalid(march, amount, reason, message):
    _calculate(march)
    statement = _statement(march.rep1)

    with pytest.raises(services.StatementError, match=message):
        services.statement_adjust(
            statement=statement,
            amount=Decimal(amount),
            reason=reason,
            editor=march.admin,
            actor=march.admin.user,
        )

    assert len(_lines(statement)) == 2


def test_manual_adjustment_rejected_when_approved(march):
    _calculate(march)
    statement = _approve(march, _statement(march.rep1))

    with pytest.raises(services.StatementLockedError, match="can no longer change"):
        services.statement_adjust(
            statement=statement,
            amount=Decimal("10.00"),
            reason="Late fix",
            editor=march.admin,
            actor=march.admin.user,
        )

    assert statement.lines.count() == 2
    statement.refresh_from_db()
    assert statement.total == Decimal("1250.00")


def test_manual_line_needs_reason_in_database(march):
    _calculate(march)
    statement = _statement(march.rep1)

    with pytest.raises(IntegrityError), transaction.atomic():
        StatementLine.objects.create(
            statement=statement,
            kind="manual",
            explanation="no reason",
            amount=Decimal("1.00"),
        )


def test_one_statement_per_member_period(march):
    _calculate(march)

    with pytest.raises(IntegrityError), transaction.atomic():
        Statement.objects.create(
            member=march.rep1,
            period_start=MARCH.start,
            period_end=MARCH.end,
            currency="USD",
        )


def test_tier_text_from_explanation(in_org, personas):
    plan = make_plan(in_org.pk)
    publish_version(plan, [AMOUNT_TIERS])
    assign(personas.rep1, plan)
    won_deal(personas.rep1, personas.stages["Won"], "13000.00", D(2024, 3, 5))

    _calculate(personas)

    [line] = _lines(_statement(personas.rep1))
    # 10,000 x 5% + 3,000 x 10%.
    assert line.amount == Decimal("800.00")
    assert line.tier == "0.00-10,000.00, 10,000.00 and up"


def test_statement_tables_are_tenant_scoped(march):
    _calculate(march)
    with tenant_context(march.other_org):
        other_run = services.statements_calculate(
            organization=march.other_org, period=MARCH, actor=None
        )

    tables = {table.table for table in tenant_tables()}
    for model in (CalculationRun, Statement, StatementLine, StatementLineBlock):
        assert model._meta.db_table in tables
    with tenant_context(march.other_org):
        assert list(CalculationRun.objects.all()) == [other_run]
        assert Statement.objects.count() == 0
        assert StatementLine.objects.count() == 0
        assert StatementLineBlock.objects.count() == 0


@pytest.mark.parametrize(
    ("explanation", "tiers"),
    [
        ("1,000.00 x 10% = 100.00", ""),
        (
            "10,000.00 x 5% in tier 0.00-10,000.00 + 3,000.00 x 10% in tier "
            "10,000.00 and up = 800.00",
            "0.00-10,000.00, 10,000.00 and up",
        ),
        (
            "2,000.00 x 12% in tier 100-150%, the tier of the period's total "
            "61,000.00 of the 50,000.00 quota = 240.00",
            "100-150%",
        ),
        (
            "500.00 x 8% in tier 0-100% of the 50,000.00 quota (prorated for 15 "
            "of 31 days) = 40.00",
            "0-100% of the 50,000.00 quota (prorated for 15 of 31 days)",
        ),
        (
            "200,000.00 x 10% in tier 0.00 and up, capped at 15,000.00 per deal "
            "= 15,000.00",
            "0.00 and up",
        ),
        ("4,000.00 x 5% in tier 0.00-10,000.00", "0.00-10,000.00"),
    ],
)
def test_tier_text_cases(explanation, tiers):
    from compensation.engine.tiers import tier_text

    # Twice, so the second result comes from the cache.
    assert tier_text(explanation) == tiers
    assert tier_text(explanation) == tiers
