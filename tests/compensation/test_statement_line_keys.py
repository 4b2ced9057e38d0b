"""The keys of stored statement lines that Django keeps instead of PostgreSQL.

A line's only key with a database constraint is its statement. Django
clears a line's deal and author when that row is deleted, and deleting an
organisation deletes its lines with their statements.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from activity.models import Deal
from compensation import line_blocks
from compensation.models import Statement, StatementLine, StatementLineBlock
from compensation.services_statements import statement_adjust, statements_calculate
from goals.calendar import month_range
from spm.services import organization_delete
from spm.tenancy import tenant_context

MARCH = month_range(dt.date(2024, 3, 1))


def _rita_lines(personas) -> list[StatementLine]:
    return list(
        StatementLine.unscoped.filter(statement__member=personas.rep1).order_by("order")
    )


def _expand_rita(personas) -> None:
    """Turn Rita's block of lines into rows, as approval or a dispute does."""
    with tenant_context(personas.org):
        line_blocks.block_expand(Statement.objects.get(member=personas.rep1))


def test_line_foreign_key_only_statement(db):
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL's catalogue")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT confrelid::regclass::text FROM pg_constraint "
            "WHERE conrelid = 'compensation_statementline'::regclass "
            "AND contype = 'f'"
        )
        referenced = [row[0] for row in cursor.fetchall()]

    assert referenced == ["compensation_statement"]


def test_deleted_deal_keeps_line_name(march):
    personas = march
    statements_calculate(organization=personas.org, period=MARCH, actor=None)
    _expand_rita(personas)
    deal = Deal.unscoped.get(owner=personas.rep1, amount=Decimal("10000.00"))
    lines = _rita_lines(personas)
    assert [line.deal_id for line in lines] == [
        deal.pk,
        Deal.unscoped.get(owner=personas.rep1, amount=Decimal("2500.00")).pk,
    ]

    deal.delete()

    first, second = _rita_lines(personas)
    assert first.deal_id is None
    assert first.deal_name == deal.name
    assert first.amount == Decimal("1000.00")
    assert second.deal_id is not None


def test_deleted_author_keeps_manual_line(march):
    personas = march
    statements_calculate(organization=personas.org, period=MARCH, actor=None)
    statement = Statement.objects.get(member=personas.rep1)
    author = personas.manager.user
    line = statement_adjust(
        statement=statement,
        editor=personas.manager,
        actor=author,
        amount=Decimal("25.00"),
        reason="Quarterly contest prize",
    )
    assert line.created_by_id == author.pk

    author.delete()

    line.refresh_from_db()
    assert line.created_by_id is None
    assert line.reason == "Quarterly contest prize"


def test_organisation_delete_removes_lines(march):
    personas = march
    statements_calculate(organization=personas.org, period=MARCH, actor=None)
    _expand_rita(personas)
    other = personas.other_org
    with tenant_context(other):
        assert not StatementLine.objects.exists()
        assert not StatementLineBlock.objects.exists()
    org_id = personas.org.pk
    # Rita has two deals and Rob one, each with one line at 10%. Rita's
    # lines are rows, and Rob's line is in a block.
    assert StatementLine.unscoped.filter(organization_id=org_id).count() == 2
    assert StatementLineBlock.unscoped.get(organization_id=org_id).line_count == 1

    with CaptureQueriesContext(connection) as captured:
        organization_delete(organization=personas.org)

    assert not StatementLine.unscoped.filter(organization_id=org_id).exists()
    assert not StatementLineBlock.unscoped.filter(organization_id=org_id).exists()
    assert not Statement.unscoped.filter(organization_id=org_id).exists()
    # Lines go with their statements: no query looks them up by organisation,
    # which has no index on the line table.
    by_organisation = '"compensation_statementline"."organization_id"'
    assert not [q["sql"] for q in captured if by_organisation in q["sql"]]
