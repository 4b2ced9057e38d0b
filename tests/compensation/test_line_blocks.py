"""A draft's calculated lines stored as one block, and when they become rows.

In the ``march`` set-up Rita has deals of 10,000.00 (5 March) and 2,500.00
(20 March) on a 10% flat plan, and Rob one of 4,000.00.
"""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

import orjson
from django.test import Client
from django.urls import reverse

from activity.models import Deal
from compensation import line_blocks, selectors
from compensation import services_disputes as disputes
from compensation import services_statements as services
from compensation.models import (
    Statement,
    StatementLine,
    StatementLineBlock,
)
from goals.calendar import month_range
from tests.compensation.conftest import won_deal
from tests.conftest import login

D = dt.date
MARCH = month_range(D(2024, 3, 1))


def _calculate(personas):
    return services.statements_calculate(
        organization=personas.org, period=MARCH, actor=personas.admin.user
    )


def _rita(personas) -> Statement:
    return Statement.objects.get(member=personas.rep1, period_start=MARCH.start)


def _row(**values) -> list:
    """Return a line's values in the order of ``line_blocks.FIELDS``."""
    line = dict.fromkeys(line_blocks.FIELDS)
    line.update(tier="", explanation="", line_type="commission", component_name="")
    line.update(plan_version_label="", deal_name="")
    line.update(values)
    return [line[name] for name in line_blocks.FIELDS]


def test_encode_rounds_like_the_line_columns(in_org, personas):
    statement = Statement.objects.create(
        member=personas.rep1,
        period_start=MARCH.start,
        period_end=MARCH.end,
        currency="USD",
    )
    rows = [
        # A third of a deal: the share has six places, as the column has.
        _row(
            deal_id=7,
            credit_date=D(2024, 3, 31),
            credit_share=Decimal("0.3333333333"),
            base_amount=Decimal("333.333333"),
            rate=Decimal("0.0750000001"),
            amount=Decimal("24.99975"),
        ),
        # Half a cent rounds away from zero, also below zero.
        _row(line_type="clawback", deal_id=8, amount=Decimal("-10.005")),
        _row(line_type="clawback", deal_id=8, amount=Decimal("0.005")),
        # Values with fewer or more places than the column take its scale.
        _row(
            credit_share=Decimal("1"),
            rate=Decimal("0.10"),
            amount=Decimal("1E+1"),
        ),
        # Equal rates written differently give one text, and a numeric
        # column has no negative zero.
        _row(rate=Decimal("0.1"), amount=Decimal("0.00")),
        _row(rate=Decimal("-0"), amount=Decimal("-0.004")),
        _row(rate=Decimal("0"), amount=Decimal("-0.00")),
    ]

    block = line_blocks.encode(rows)
    stored = StatementLineBlock.objects.create(
        statement=statement,
        line_count=block.line_count,
        total=block.total,
        digest=block.digest,
        lines=block.lines,
        clawback_deal_ids=block.clawback_deal_ids,
    )
    lines = line_blocks.decode(stored, statement)

    assert [str(line.amount) for line in lines] == [
        "25.00",
        "-10.01",
        "0.01",
        "10.00",
        "0.00",
        "0.00",
        "0.00",
    ]
    # 25.00 - 10.01 + 0.01 + 10.00, the sum of the amounts as stored.
    assert block.total == Decimal("25.00")
    assert block.line_count == 7
    assert [str(line.rate) for line in lines[3:]] == [
        "0.100000",
        "0.100000",
        "0.000000",
        "0.000000",
    ]
    assert block.clawback_deal_ids == [8]
    first = lines[0]
    assert first.credit_share == Decimal("0.333333")
    assert first.base_amount == Decimal("333.33")
    assert first.rate == Decimal("0.075000")
    assert first.credit_date == D(2024, 3, 31)
    assert first.deal_id == 7
    assert first.kind == StatementLine.Kind.NORMAL
    assert first.pk is None
    assert [line.order for line in lines] == list(range(7))
    assert str(lines[3].credit_share) == "1.000000"
    assert str(lines[3].rate) == "0.100000"
    assert lines[1].credit_share is None
    assert lines[1].credit_date is None


def _stored(rows: list[list]) -> list[list]:
    """Return lines as a block stores them, for ``line_public_ids``."""
    return orjson.loads(line_blocks.encode(rows).lines)


def test_public_ids_follow_statement_and_line(in_org, personas):
    rita_statement, rob_statement = (
        Statement.objects.create(
            member=member,
            period_start=MARCH.start,
            period_end=MARCH.end,
            currency="USD",
        )
        for member in (personas.rep1, personas.rep2)
    )
    first = _stored([_row(amount=Decimal("1.00")), _row(amount=Decimal("2.00"))])
    # The first line changed, a line was added before the unchanged one.
    second = _stored(
        [
            _row(amount=Decimal("3.00")),
            _row(amount=Decimal("1.50")),
            _row(amount=Decimal("2.00")),
        ]
    )

    ids = line_blocks.line_public_ids(rita_statement, first)
    later = line_blocks.line_public_ids(rita_statement, second)

    assert ids == line_blocks.line_public_ids(rita_statement, first)
    assert ids[0] != ids[1]
    # The 2.00 line keeps its id, and the changed and new lines get new ones.
    assert later[2] == ids[1]
    assert ids[0] not in later
    assert line_blocks.line_public_ids(rob_statement, first)[0] != ids[0]
    assert all(isinstance(value, uuid.UUID) for value in ids)


def test_equal_lines_get_distinct_ids(in_org, personas):
    statement = Statement.objects.create(
        member=personas.rep1,
        period_start=MARCH.start,
        period_end=MARCH.end,
        currency="USD",
    )
    same = [_row(amount=Decimal("5.00")), _row(amount=Decimal("5.00"))]

    ids = line_blocks.line_public_ids(statement, _stored(same))

    assert len(set(ids)) == 2


def test_run_stores_one_block_per_draft(march):
    _calculate(march)

    rita = _rita(march)
    block = StatementLineBlock.objects.get(statement=rita)
    assert block.line_count == 2
    assert block.total == Decimal("1250.00")
    assert rita.total == Decimal("1250.00")
    assert not StatementLine.objects.filter(statement=rita).exists()
    lines = selectors.statement_lines(rita)
    assert [(line.deal_name, line.amount) for line in lines] == [
        (lines[0].deal.name, Decimal("1000.00")),
        (lines[1].deal.name, Decimal("250.00")),
    ]
    assert lines[0].explanation == "10,000.00 x 10% = 1,000.00"


def test_new_statement_row_columns(march):
    run = _calculate(march)

    statements = Statement.objects.filter(period_start=MARCH.start)
    assert {s.member_id for s in statements} == {march.rep1.pk, march.rep2.pk}
    rita = _rita(march)
    rob = Statement.objects.get(member=march.rep2, period_start=MARCH.start)
    assert rita.organization_id == march.org.pk
    assert rita.period_end == MARCH.end
    assert rita.status == Statement.Status.DRAFT
    assert rita.run_id == run.pk
    assert rita.currency == "USD"
    assert rita.notes == []
    assert rita.total == Decimal("1250.00")
    assert rob.total == Decimal("400.00")
    assert rita.calculated_at is not None
    assert rita.calculated_at == rob.calculated_at
    assert rita.created_at is not None
    assert rita.approved_by_id is None
    assert rita.paid_at is None
    assert rita.public_id != rob.public_id
    assert rita.public_id.version == 4


def test_manual_line_follows_block(march):
    _calculate(march)
    rita = _rita(march)

    line = services.statement_adjust(
        statement=rita,
        amount=Decimal("40.00"),
        reason="Spot bonus",
        editor=march.admin,
        actor=march.admin.user,
    )

    # The block contains orders 0 and 1, so the manual line takes 2.
    assert line.order == 2
    rita.refresh_from_db()
    assert rita.total == Decimal("1290.00")
    assert [line.kind for line in selectors.statement_lines(rita)] == [
        "normal",
        "normal",
        "manual",
    ]


def test_dispute_turns_block_into_rows(march):
    _calculate(march)
    rita = _rita(march)
    services.statement_adjust(
        statement=rita,
        amount=Decimal("40.00"),
        reason="Spot bonus",
        editor=march.admin,
        actor=march.admin.user,
    )
    page_lines = selectors.statement_lines(rita)

    line = disputes.dispute_line(rita, page_lines[1].public_id)
    dispute = disputes.dispute_raise(
        statement=rita, line=line, raiser=march.rep1, body="The deal was 3,000.00."
    )

    assert line.pk is not None
    assert line.amount == Decimal("250.00")
    assert dispute.line_id == line.pk
    assert not StatementLineBlock.objects.filter(statement=rita).exists()
    rows = list(StatementLine.objects.filter(statement=rita).order_by("order"))
    # The same lines, orders and public ids as the page showed.
    assert [(r.public_id, r.order, r.amount) for r in rows] == [
        (s.public_id, s.order, s.amount) for s in page_lines
    ]
    rita.refresh_from_db()
    assert rita.total == Decimal("1290.00")


def test_dispute_line_other_statement_none(march):
    _calculate(march)
    rob = Statement.objects.get(member=march.rep2)
    [rob_line] = selectors.statement_lines(rob)

    assert disputes.dispute_line(_rita(march), rob_line.public_id) is None
    assert disputes.dispute_line(_rita(march), uuid.uuid4()) is None
    # Nothing was turned into rows.
    assert StatementLineBlock.objects.filter(statement=rob).exists()
    assert StatementLineBlock.objects.filter(statement=_rita(march)).exists()


def test_rerun_after_dispute_keeps_rows(march):
    _calculate(march)
    rita = _rita(march)
    first = selectors.statement_lines(rita)[0]
    line = disputes.dispute_line(rita, first.public_id)
    dispute = disputes.dispute_raise(
        statement=rita, line=line, raiser=march.rep1, body="Check the amount."
    )
    won_deal(march.rep1, march.stages["Won"], "1000.00", D(2024, 3, 28))

    _calculate(march)

    # The disputed line is unchanged, so it keeps its row and its dispute.
    # The new deal adds 1,000.00 x 10% = 100.00 as a row.
    dispute.refresh_from_db()
    assert dispute.line_id == line.pk
    assert not StatementLineBlock.objects.filter(statement=rita).exists()
    amounts = [r.amount for r in StatementLine.objects.filter(statement=rita)]
    assert sorted(amounts) == [Decimal("100.00"), Decimal("250.00"), Decimal("1000.00")]
    rita.refresh_from_db()
    assert rita.total == Decimal("1350.00")


def test_approval_turns_block_into_rows(march):
    _calculate(march)
    rita = _rita(march)
    page_lines = selectors.statement_lines(rita)

    services.statement_approve(
        statement=rita, approver=march.manager, actor=march.manager.user
    )

    assert not StatementLineBlock.objects.filter(statement=rita).exists()
    rows = list(StatementLine.objects.filter(statement=rita).order_by("order"))
    assert [(r.public_id, r.amount, r.explanation) for r in rows] == [
        (s.public_id, s.amount, s.explanation) for s in page_lines
    ]
    # Every column of the rows is the value the block's line had.
    names = ("order", "kind", "reason", "created_at", *line_blocks.FIELDS)
    for row, page_line in zip(rows, page_lines, strict=True):
        assert {name: getattr(row, name) for name in names} == {
            name: getattr(page_line, name) for name in names
        }
        assert row.organization_id == rita.organization_id
    rita.refresh_from_db()
    assert rita.status == Statement.Status.APPROVED
    assert rita.total == Decimal("1250.00")


def test_draft_without_lines_loses_block(march):
    _calculate(march)
    rob = Statement.objects.get(member=march.rep2)
    services.statement_adjust(
        statement=rob,
        amount=Decimal("15.00"),
        reason="Contest prize",
        editor=march.admin,
        actor=march.admin.user,
    )
    Deal.objects.filter(owner=march.rep2).update(close_date=D(2024, 4, 2))

    _calculate(march)

    # Rob's only deal moved to April: no calculated lines, the manual line stays.
    rob.refresh_from_db()
    assert not StatementLineBlock.objects.filter(statement=rob).exists()
    assert [line.kind for line in selectors.statement_lines(rob)] == ["manual"]
    assert rob.total == Decimal("15.00")


def test_one_changed_member_rewrites_one_block(march):
    _calculate(march)
    rob_block = StatementLineBlock.objects.get(statement__member=march.rep2)
    won_deal(march.rep1, march.stages["Won"], "500.00", D(2024, 3, 30))

    _calculate(march)

    # Rob's lines did not change, so his block is the one written first.
    assert (
        StatementLineBlock.objects.get(statement__member=march.rep2).created_at
        == rob_block.created_at
    )
    rita = StatementLineBlock.objects.get(statement__member=march.rep1)
    assert rita.line_count == 3
    # 1,000.00 + 250.00 + 50.00.
    assert rita.total == Decimal("1300.00")


def _raise_url(statement: Statement) -> str:
    return reverse(
        "compensation:dispute-raise",
        kwargs={"org_slug": "acme", "statement_id": statement.public_id},
    )


def _dispute_after_rerun(personas, index: int, message: str):
    """Post a dispute on Rita's line at ``index`` as the page listed it before a rerun.

    Only the 2,500.00 deal changes before the rerun, to 3,000.00. Returns
    the statement, its lines before the rerun and the response.
    """
    _calculate(personas)
    rita = _rita(personas)
    before = selectors.statement_lines(rita)
    Deal.objects.filter(owner=personas.rep1, amount=Decimal("2500.00")).update(
        amount=Decimal("3000.00")
    )
    _calculate(personas)

    response = login(Client(), personas.rep1).post(
        _raise_url(rita), {"line": str(before[index].public_id), "message": message}
    )
    return rita, before, response


def test_unchanged_line_keeps_id_after_rerun(march):
    rita, (first, second), response = _dispute_after_rerun(march, 0, "Check it.")

    # The 10,000.00 line did not change, so the open form still finds it.
    assert response.status_code == 302
    again_first, again_second = selectors.statement_lines(rita)
    assert again_first.public_id == first.public_id
    assert again_second.public_id != second.public_id
    assert again_second.amount == Decimal("300.00")


def test_changed_line_selects_no_line(march):
    _, before, response = _dispute_after_rerun(march, 1, "Too low.")

    assert response.status_code == 400
    content = response.content.decode()
    assert f"line {before[1].public_id} is not on this statement" in content
    assert "It may have changed since you opened the page" in content
    # The rep chooses the line again rather than filing on the first one.
    assert '<option value="" selected>Choose a line</option>' in content
    assert content.count(" selected>") == 1
    assert "Too low." in content
