"""Why a payout changed between two runs, and the credited-deals CSV."""

from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse

from activity.models import Deal
from compensation import payout_diff
from compensation import services_statements as services
from compensation.engine import Credit, StatementLine
from compensation.engine import Statement as ComputedStatement
from compensation.fields import (
    CompactJSONField,
    Table,
    compact_json,
    compact_json_loads,
)
from compensation.models import FxRate, Statement, StatementSnapshot
from compensation.models import StatementLine as StoredLine
from goals.calendar import month_range
from spm.models import Organization
from spm.tenancy import tenant_context
from tests.compensation.conftest import (
    assign,
    flat_component,
    make_plan,
    make_rate,
    publish_version,
    won_deal,
)
from tests.conftest import login

D = dt.date
MARCH = month_range(D(2024, 3, 1))


def _calculate(personas) -> None:
    with tenant_context(personas.org):
        services.statements_calculate(
            organization=personas.org, period=MARCH, actor=personas.admin.user
        )


def _comparison(personas):
    with tenant_context(personas.org):
        statement = Statement.objects.get(member=personas.rep1)
        first, second = payout_diff.snapshots_of(statement)
        return payout_diff.compare(first, second)


def _deal_grows(personas) -> Statement:
    """Run March twice, with Rita's deal at 10,000.00 then 12,000.00."""
    deal = won_deal(personas.rep1, personas.stages["Won"], "10000.00", D(2024, 3, 5))
    _calculate(personas)
    Deal.unscoped.filter(pk=deal.pk).update(amount=Decimal("12000.00"))
    _calculate(personas)
    return Statement.unscoped.get(member=personas.rep1)


def _changes_url(statement: Statement) -> str:
    return reverse(
        "compensation:payout-changes",
        kwargs={"org_slug": "acme", "statement_id": statement.public_id},
    )


@pytest.fixture
def plan(personas):
    plan = make_plan(personas.org.pk)
    publish_version(plan, [flat_component("0.10")])
    assign(personas.rep1, plan)
    return plan


def test_amount_change_is_data(personas, plan):
    _deal_grows(personas)

    comparison = _comparison(personas)

    # 10% of 10,000.00 is 1,000.00; 10% of 12,000.00 is 1,200.00.
    assert comparison.change == Decimal("200.00")
    [difference] = comparison.differences
    assert (difference.before, difference.after) == (
        Decimal("1000.00"),
        Decimal("1200.00"),
    )
    assert difference.causes == [
        ("data", "deal amount changed from 10,000.00 to 12,000.00 USD")
    ]


def test_plan_version_change_is_rule(personas, plan):
    won_deal(personas.rep1, personas.stages["Won"], "10000.00", D(2024, 3, 5))
    _calculate(personas)
    publish_version(plan, [flat_component("0.12")], effective_from=D(2024, 3, 1))
    _calculate(personas)

    comparison = _comparison(personas)

    # 12% of 10,000.00 is 1,200.00, up from 1,000.00 at 10%.
    assert comparison.change == Decimal("200.00")
    [difference] = comparison.differences
    assert difference.causes == [
        ("rule", "paid under AE plan v2 instead of AE plan v1")
    ]


def test_rate_change_is_fx(personas, plan):
    make_rate(personas.org.pk, "EUR", "USD", D(2024, 3, 28), "1.0800")
    won_deal(
        personas.rep1,
        personas.stages["Won"],
        "10000.00",
        D(2024, 3, 28),
        currency="EUR",
    )
    _calculate(personas)
    FxRate.unscoped.filter(base_currency="EUR").update(rate=Decimal("1.1000"))
    _calculate(personas)

    comparison = _comparison(personas)

    # 10,000 EUR at 1.08 is 10,800.00 USD, paying 1,080.00; at 1.10 it is
    # 11,000.00 USD, paying 1,100.00.
    [difference] = comparison.differences
    assert (difference.before, difference.after) == (
        Decimal("1080.00"),
        Decimal("1100.00"),
    )
    [(cause, detail)] = difference.causes
    assert cause == "fx"
    assert "1.0800000000 (2024-03-28) to 1.1000000000 (2024-03-28)" in detail


def test_lost_deal_is_data(personas, plan):
    deal = won_deal(personas.rep1, personas.stages["Won"], "5000.00", D(2024, 3, 5))
    won_deal(personas.rep1, personas.stages["Won"], "1000.00", D(2024, 3, 6))
    _calculate(personas)
    Deal.unscoped.filter(pk=deal.pk).update(stage=personas.stages["Lost"])
    _calculate(personas)

    comparison = _comparison(personas)

    assert comparison.change == Decimal("-500.00")
    [difference] = comparison.differences
    assert difference.after == Decimal("0.00")
    assert difference.causes == [
        ("data", "no longer credited: now in stage Lost, close date 2024-03-05")
    ]


def test_changes_page_for_rep(personas, plan, django_assert_max_num_queries):
    statement = _deal_grows(personas)
    url = _changes_url(statement)
    client = login(Client(), personas.rep1)

    with django_assert_max_num_queries(12):
        response = client.get(url)

    assert response.status_code == 200
    assert "deal amount changed from 10,000.00 to 12,000.00 USD" in (
        response.content.decode()
    )
    assert login(Client(), personas.rep2).get(url).status_code == 404


def test_one_snapshot_per_run(personas, plan):
    won_deal(personas.rep1, personas.stages["Won"], "100.00", D(2024, 3, 5))
    _calculate(personas)
    _calculate(personas)

    assert StatementSnapshot.unscoped.count() == 2


# Credited-deals CSV: a rep recomputes the statement from the file alone.


def _half_up(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def test_csv_recomputes_statement_total(personas, plan):
    won, rep1, rep2 = personas.stages["Won"], personas.rep1, personas.rep2
    make_rate(personas.org.pk, "EUR", "USD", D(2024, 3, 20), "1.0850")
    won_deal(rep1, won, "1234.55", D(2024, 3, 3))
    won_deal(rep1, won, "999.99", D(2024, 3, 9), splits=[(rep1, "75"), (rep2, "25")])
    won_deal(rep1, won, "2000.00", D(2024, 3, 20), currency="EUR")
    _calculate(personas)
    statement = Statement.unscoped.get(member=rep1)
    client = login(Client(), rep1)

    response = client.get(
        reverse(
            "compensation:credits-csv",
            kwargs={"org_slug": "acme", "statement_id": statement.public_id},
        )
    )

    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    *lines, total_row = rows
    recomputed = Decimal("0.00")
    for row in lines:
        credited, rate = Decimal(row["credited_amount"]), Decimal(row["rate"])
        amount = _half_up(credited * rate)
        assert amount == Decimal(row["amount"]), row
        if row["fx_rate"]:
            converted = _half_up(Decimal(row["deal_amount"]) * Decimal(row["fx_rate"]))
            assert credited == converted
        recomputed += amount
    # 1,234.55 x 10% = 123.46 (half up from 123.455); 75% of 999.99 is
    # 749.99 by largest remainder, x 10% = 75.00; 2,000 EUR x 1.085 =
    # 2,170.00 USD, x 10% = 217.00.
    assert [row["amount"] for row in lines] == ["123.46", "75.00", "217.00"]
    assert recomputed == Decimal("415.46")
    assert total_row["line"] == "total"
    assert Decimal(total_row["amount"]) == statement.total == recomputed


def test_csv_hidden_from_other_rep(personas, plan):
    won_deal(personas.rep1, personas.stages["Won"], "100.00", D(2024, 3, 5))
    _calculate(personas)
    statement = Statement.unscoped.get(member=personas.rep1)
    url = reverse(
        "compensation:credits-csv",
        kwargs={"org_slug": "acme", "statement_id": statement.public_id},
    )

    assert login(Client(), personas.rep2).get(url).status_code == 404


def test_changes_page_names_manual_lines(personas, plan):
    statement = _deal_grows(personas)
    with tenant_context(personas.org):
        services.statement_adjust(
            statement=statement,
            amount=Decimal("12.50"),
            reason="Contest prize",
            editor=personas.admin,
            actor=personas.admin.user,
        )
        last_run = payout_diff.snapshots_of(statement)[-1].run
    url = _changes_url(statement)
    Organization.objects.filter(pk=personas.org.pk).update(time_zone="America/New_York")

    content = login(Client(), personas.rep1).get(url).content.decode()

    # 10% of 12,000.00 from the last run, plus the manual 12.50.
    assert "1 line of 12.50 USD in all" in content
    assert "total of 1,212.50 USD includes them" in content
    local = last_run.created_at.astimezone(ZoneInfo("America/New_York"))
    assert local.tzname() in ("EST", "EDT")
    assert f"{local:%Y-%m-%d %H:%M %Z} (1,200.00 USD)" in content


def test_changes_page_names_unknown_run(personas, plan):
    statement = _deal_grows(personas)
    url = _changes_url(statement)

    response = login(Client(), personas.rep1).get(url + "?from=junk&to=junk")

    content = response.content.decode()
    assert response.status_code == 200
    assert (
        "No calculation run &#x27;junk&#x27;, &#x27;junk&#x27; of this statement; "
        "comparing its last two runs instead." in content
    )
    # The last two runs are compared, as without the parameters.
    assert "deal amount changed from 10,000.00 to 12,000.00 USD" in content


def test_changes_page_needs_both_runs(personas, plan):
    statement = _deal_grows(personas)
    with tenant_context(personas.org):
        first, _ = payout_diff.snapshots_of(statement)
    url = _changes_url(statement)

    response = login(Client(), personas.rep1).get(f"{url}?from={first.run.public_id}")

    content = response.content.decode()
    assert response.status_code == 200
    assert (
        "Choose both runs to compare: the &#x27;to&#x27; run is missing, so the "
        "last two runs are compared instead." in content
    )
    assert "deal amount changed from 10,000.00 to 12,000.00 USD" in content


def test_snapshot_reads_back_as_text(personas, plan):
    deal = won_deal(personas.rep1, personas.stages["Won"], "10000.00", D(2024, 3, 5))

    _calculate(personas)

    snapshot = StatementSnapshot.unscoped.get()
    # Amounts, shares and dates read back as the text they were written as.
    assert snapshot.deals == [
        {
            "deal_id": deal.pk,
            "deal_name": deal.name,
            "deal_amount": "10000.00",
            "deal_currency": "USD",
            "credit_date": "2024-03-05",
            "share": "1",
            "credited": "10000.00",
            "fx_rate": None,
            "fx_rate_date": None,
            "plan_version_id": snapshot.deals[0]["plan_version_id"],
            "plan_version": "AE plan v1",
            "commission": "1000.00",
        }
    ]
    assert snapshot.deals[0]["plan_version_id"] is not None
    assert snapshot.other_lines == []


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's catalogue")
def test_snapshot_columns_are_bytea(db):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
            "WHERE attrelid = 'compensation_statementsnapshot'::regclass "
            "AND attname IN ('deals', 'other_lines') ORDER BY attname"
        )
        columns = cursor.fetchall()

    assert columns == [("deals", "bytea"), ("other_lines", "bytea")]


@pytest.mark.parametrize(
    "stored",
    [
        b'[{"amount": "1.50"}]',
        memoryview(b'[{"amount": "1.50"}]'),
        # SQLite keeps the JSON text written before the column became binary.
        '[{"amount": "1.50"}]',
    ],
)
def test_compact_json_field_reads_bytes_and_text(stored):
    field = CompactJSONField(default=list)

    assert field.from_db_value(stored, None, connection) == [{"amount": "1.50"}]
    assert field.to_python(stored) == [{"amount": "1.50"}]


def test_compact_json_field_writes_table():
    field = CompactJSONField(default=list)
    value = [
        {"amount": Decimal("12.50"), "date": D(2024, 2, 29)},
        {"amount": Decimal("-3.00"), "date": None},
    ]

    stored = field.get_db_prep_value(value, connection)

    # psycopg's Binary wraps the bytes in ``obj``, and SQLite takes a memoryview.
    data = bytes(getattr(stored, "obj", stored))
    assert data == (
        b'{"columns":["amount","date"],"rows":[["12.50","2024-02-29"],["-3.00",null]]}'
    )
    assert field.from_db_value(data, None, connection) == [
        {"amount": "12.50", "date": "2024-02-29"},
        {"amount": "-3.00", "date": None},
    ]
    assert field.get_db_prep_value(None, connection) is None


@pytest.mark.parametrize(
    ("value", "stored"),
    [
        # Objects whose keys differ, or come in another order, stay a list.
        ([{"a": 1}, {"a": 2, "b": 3}], b'[{"a":1},{"a":2,"b":3}]'),
        ([{"a": 1, "b": 2}, {"b": 3, "a": 4}], b'[{"a":1,"b":2},{"b":3,"a":4}]'),
        ([], b"[]"),
        ([1, 2], b"[1,2]"),
        (Table(("a", "b"), []), b"[]"),
        (Table(("a", "b"), [(1, "x")]), b'{"columns":["a","b"],"rows":[[1,"x"]]}'),
    ],
)
def test_compact_json_other_values(value, stored):
    assert compact_json(value) == stored


def test_compact_json_table_reads_as_list():
    data = compact_json(Table(("a", "b"), [(1, "x"), (2, None)]))

    assert compact_json_loads(data) == [{"a": 1, "b": "x"}, {"a": 2, "b": None}]


def test_compact_json_rejects_table_lookalike():
    with pytest.raises(ValueError, match="only the keys 'columns' and 'rows'"):
        compact_json({"columns": [], "rows": []})


def _snapshot_credit(deal_id: int, amount: str, **values) -> Credit:
    fields = {
        "deal_id": deal_id,
        "deal_name": f"Deal {deal_id}",
        "member_id": 1,
        "credit_date": D(2024, 3, 28),
        "amount": Decimal(amount),
        "deal_amount": Decimal(amount),
        "share": Decimal(1),
        "currency": "USD",
        "source_amount": Decimal(amount),
        "deal_source_amount": Decimal(amount),
        "source_currency": "USD",
    }
    return Credit(**{**fields, **values})


def _snapshot_line(deal_id: int | None, amount: str, **values) -> StatementLine:
    return StatementLine(
        kind=values.pop("kind", "commission"),
        amount=Decimal(amount),
        currency="USD",
        explanation="",
        deal_id=deal_id,
        deal_name="" if deal_id is None else f"Deal {deal_id}",
        **values,
    )


def test_snapshot_deal_entries_as_text():
    converted = _snapshot_credit(
        1,
        "650.00",
        share=Decimal("0.6"),
        deal_amount=Decimal("1083.33"),
        source_amount=Decimal("600.00"),
        deal_source_amount=Decimal("1000.00"),
        source_currency="EUR",
        fx_rate=Decimal("1.0833"),
        fx_rate_date=D(2024, 3, 28),
    )
    # A second credit of deal 1, under another basis: the first one counts.
    other_basis = _snapshot_credit(1, "1.00")
    version = {"plan_version_id": 7, "plan_version": "AE v1"}
    lines = (
        _snapshot_line(1, "65.00", **version),
        _snapshot_line(1, "2.50", **version),
        # A clawback of a deal credited in an earlier period.
        _snapshot_line(3, "-40.00", kind="clawback"),
        _snapshot_line(None, "100.00", kind="bonus", component="Bonus"),
    )
    statement = ComputedStatement(
        member_id=1,
        member_name="Rita Rep",
        period_start=MARCH.start,
        period_end=MARCH.end,
        currency="USD",
        lines=lines,
        total=Decimal("127.50"),
        earned=Decimal("127.50"),
        credits=(converted, other_basis, _snapshot_credit(2, "250.00")),
    )

    deals, other_lines = payout_diff.snapshot_content(statement)

    assert deals == [
        {
            "deal_id": 1,
            "deal_name": "Deal 1",
            "deal_amount": "1000.00",
            "deal_currency": "EUR",
            "credit_date": "2024-03-28",
            "share": "0.6",
            "credited": "650.00",
            "fx_rate": "1.0833",
            "fx_rate_date": "2024-03-28",
            "plan_version_id": 7,
            "plan_version": "AE v1",
            "commission": "67.50",
        },
        {
            "deal_id": 2,
            "deal_name": "Deal 2",
            "deal_amount": "250.00",
            "deal_currency": "USD",
            "credit_date": "2024-03-28",
            "share": "1",
            "credited": "250.00",
            "fx_rate": None,
            "fx_rate_date": None,
            "plan_version_id": None,
            "plan_version": "",
            "commission": "0.00",
        },
        {"deal_id": 3, "deal_name": "Deal 3", "commission": "-40.00"},
    ]
    # The stored JSON keeps this key order.
    assert list(deals[0]) == [
        "deal_id",
        "deal_name",
        "deal_amount",
        "deal_currency",
        "credit_date",
        "share",
        "credited",
        "fx_rate",
        "fx_rate_date",
        "plan_version_id",
        "plan_version",
        "commission",
    ]
    assert other_lines == [
        {
            "kind": "bonus",
            "component": "Bonus",
            "plan_version": "",
            "amount": "100.00",
        }
    ]


def test_clawback_deal_named_earlier_credit(in_org, personas):
    deal = won_deal(personas.rep1, personas.stages["Won"], "5000.00", D(2024, 2, 5))
    credited = {
        "deal_id": deal.pk,
        "deal_name": deal.name,
        "credited": "5000.00",
        "commission": "500.00",
    }
    # A run that only took the deal's commission back has no credit for it.
    taken_back = {"deal_id": deal.pk, "deal_name": deal.name, "commission": "-500.00"}
    empty = StatementSnapshot(deals=[], other_lines=[], total=0, currency="USD")
    clawback = StatementSnapshot(
        deals=[taken_back], other_lines=[], total=-500, currency="USD"
    )
    paid = StatementSnapshot(
        deals=[credited], other_lines=[], total=500, currency="USD"
    )

    [added] = payout_diff.compare(empty, clawback).differences
    [removed] = payout_diff.compare(clawback, empty).differences
    [credit] = payout_diff.compare(empty, paid).differences

    state = "now in stage Won, close date 2024-02-05"
    assert added.causes == [
        ("data", f"new line on a deal credited in an earlier period: {state}")
    ]
    assert removed.causes == [
        ("data", f"line removed on a deal credited in an earlier period: {state}")
    ]
    assert credit.causes == [("data", f"newly credited: {state}")]


@pytest.mark.parametrize(
    ("values", "label"),
    [
        ({"component_name": "Accelerator", "line_type": "commission"}, "Accelerator"),
        ({"line_type": "clawback"}, "Clawback"),
        ({"line_type": "draw_recovery"}, "Draw recovery"),
        ({"kind": "manual", "line_type": "manual"}, "Manual"),
        ({"kind": "adjustment", "line_type": "adjustment"}, "Adjustment"),
        ({}, "Calculated"),
    ],
)
def test_line_label(values, label):
    assert StoredLine(**values).label == label
