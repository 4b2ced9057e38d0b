"""The CSV import and export of quotas."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import pytest

from goals import services
from goals.grid import quota_grid
from goals.models import Quota
from goals.periods import quota_period_containing
from goals.quota_csv import export_rows, write_csv
from goals.values import parse_amount
from spm.models import AuditLog, Membership
from tests.goals.conftest import make_quota

D = dt.date


def _import(personas, text: str | bytes, name: str = "quotas.csv"):
    content = text.encode() if isinstance(text, str) else text
    return services.quotas_import(
        organization=personas.org,
        actor=personas.admin.user,
        file_name=name,
        content=content,
    )


def _errors(result) -> list[tuple]:
    return [(e.line, e.column, e.value, e.message) for e in result.errors]


def _stored() -> dict[tuple, Decimal]:
    return {
        (str(q.member or q.team), q.metric, q.period_start.isoformat()): q.amount
        for q in Quota.objects.select_related("member", "team")
    }


VALID = """email,team,period_start,metric,amount,currency
Rita.Rep@ACME.test,,2024-01-01,bookings,"100,000.00",USD
rob.rep@acme.test,,2024-01-01,,90000,
,east,2024-01-01,bookings,250000,usd
rita.rep@acme.test,,2024-04-01,deal_count,12,
"""


def test_import_creates_quotas(in_org, personas):
    result = _import(personas, VALID)

    assert result.errors == []
    assert (result.saved.created, result.saved.updated) == (4, 0)
    assert _stored() == {
        ("Rita Rep", "bookings", "2024-01-01"): Decimal("100000.00"),
        ("Rob Rep", "bookings", "2024-01-01"): Decimal("90000.00"),
        ("East", "bookings", "2024-01-01"): Decimal("250000.00"),
        ("Rita Rep", "deal_count", "2024-04-01"): Decimal("12"),
    }
    quota = Quota.objects.get(member=personas.rep1, metric="bookings")
    assert quota.period_end == D(2024, 4, 1)
    assert AuditLog.objects.filter(action="quota.create").count() == 4
    summary = AuditLog.objects.get(action="quota.import")
    assert summary.new == {
        "file": "quotas.csv",
        "created": 4,
        "updated": 0,
        "unchanged": 0,
    }


def test_reimport_changes_nothing(in_org, personas):
    _import(personas, VALID)
    before = _stored()
    log_count = AuditLog.objects.count()

    result = _import(personas, VALID)

    assert result.errors == []
    assert result.saved.unchanged == 4
    assert result.saved.changed == 0
    assert _stored() == before
    assert AuditLog.objects.count() == log_count


def test_changed_row_updates(in_org, personas):
    _import(personas, VALID)

    result = _import(
        personas, "email,period_start,amount\nrita.rep@acme.test,2024-01-01,110000\n"
    )

    assert (result.saved.created, result.saved.updated) == (0, 1)
    quota = Quota.objects.get(member=personas.rep1, metric="bookings")
    assert quota.amount == Decimal("110000.00")
    entry = AuditLog.objects.get(action="quota.update")
    assert (entry.old["amount"], entry.new["amount"]) == ("100000.00", "110000.00")


def test_errors_name_line_column_value(in_org, personas):
    text = """email,period_start,metric,amount,currency
rita.rep@acme.test,2024-01-01,bookings,100000,USD
nobody@acme.test,2024-01-01,bookings,100,
rob.rep@acme.test,2024-02-15,bookings,100,
rob.rep@acme.test,2024-13-01,bookings,100,
remy.rep@acme.test,2024-01-01,revenue,100,
remy.rep@acme.test,2024-04-01,bookings,-5,
rex.rep@acme.test,2024-01-01,bookings,1.234,
rex.rep@acme.test,2024-04-01,bookings,10,EUR
rex.rep@acme.test,2024-07-01,deal_count,2.5,
rita.rep@acme.test,2024-01-01,bookings,5,
"""
    result = _import(personas, text)

    assert _errors(result) == [
        (3, "email", "nobody@acme.test", "no member has this email address"),
        (
            4,
            "period_start",
            "2024-02-15",
            "not the start of a quota period: quotas are set per quarter, and "
            "FY2024 Q1 starts on 2024-01-01",
        ),
        (5, "period_start", "2024-13-01", "not a date (expected YYYY-MM-DD)"),
        (
            6,
            "metric",
            "revenue",
            "unknown metric: use bookings, deal_count, new_pipeline",
        ),
        (7, "amount", "-5", "must not be negative"),
        (8, "amount", "1.234", "has more than 2 decimal places"),
        (
            9,
            "currency",
            "EUR",
            "not the organisation's currency USD: quotas are set in it, because "
            "Attain has no exchange rates",
        ),
        (10, "amount", "2.5", "must be a whole number of deals"),
        (
            11,
            "amount",
            "5",
            "is a second quota for this period (already on line 2)",
        ),
    ]
    # The valid first row is not saved either.
    assert not Quota.objects.exists()
    assert not AuditLog.objects.exists()


def test_member_by_name_and_team_checks(in_org, personas):
    text = """member,team,email,period_start,amount
rita rep,,,2024-01-01,100
No Such Person,,,2024-01-01,100
,Nowhere,,2024-01-01,100
Rob Rep,East,,2024-01-01,100
Rob Rep,,rita.rep@acme.test,2024-01-01,100
,,,2024-01-01,100
"""
    result = _import(personas, text)

    assert _errors(result) == [
        (3, "member", "No Such Person", "no member has this name"),
        (4, "team", "Nowhere", "no team has this name"),
        (5, "team", "East", "give a member (email or member) or a team, not both"),
        (6, "member", "Rob Rep", "the email address belongs to Rita Rep"),
        (7, "member", "", "an email, member or team is required"),
    ]


def test_blank_amount_leaves_quota(in_org, personas):
    make_quota(personas.rep1, "100000.00")

    result = _import(
        personas, "email,period_start,amount\nrita.rep@acme.test,2024-01-01,\n"
    )

    assert result.errors == []
    assert result.blank == 1
    assert result.saved.changed == 0
    assert Quota.objects.get().amount == Decimal("100000.00")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "email,period_start\nx,2024-01-01\n",
            "The required column amount is missing.",
        ),
        (
            "period_start,amount\n2024-01-01,1\n",
            "A column email, member or team is needed",
        ),
        ("email,period,amount\nx,2024-01-01,1\n", "Unknown column 'period'"),
        ("email,email,period_start,amount\nx,x,2024-01-01,1\n", "appears twice"),
        ("", "The file is empty."),
        ("email,period_start,amount\n", "header but no data rows"),
    ],
)
def test_file_errors(in_org, personas, text, message):
    result = _import(personas, text)

    assert len(result.errors) == 1
    assert message in result.errors[0].message
    assert result.errors[0].blocking


def test_ragged_row_reported(in_org, personas):
    text = "email,period_start,amount\nrita.rep@acme.test,2024-01-01\n"

    result = _import(personas, text)

    assert _errors(result) == [(2, "", "", "the row has 2 cells but the header has 3")]


def test_semicolons_and_windows_1252(in_org, personas):
    Membership.objects.filter(pk=personas.rep1.pk).update(display_name="Rita Müller")
    text = "member;period_start;amount\r\nRita Müller;2024-01-01;1000\r\n"

    result = _import(personas, text.encode("cp1252"))

    assert result.errors == []
    assert Quota.objects.get().member_id == personas.rep1.pk


def test_size_limit(in_org, personas, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 50
    text = "email,period_start,amount\n" + "rita.rep@acme.test,2024-01-01,1\n" * 3

    result = _import(personas, text)

    assert "larger than the limit of 50 bytes" in result.errors[0].message
    assert not Quota.objects.exists()


def test_row_limit(in_org, personas, monkeypatch):
    monkeypatch.setattr("goals.quota_csv.MAX_ROWS", 2)
    text = "email,period_start,amount\n" + "rita.rep@acme.test,2024-01-01,1\n" * 3

    result = _import(personas, text)

    assert [error.message for error in result.errors] == [
        "The file has 3 rows, more than the limit of 2: split it into several files."
    ]
    assert not Quota.objects.exists()


def test_other_organisations_member_unknown(in_org, personas):
    text = "email,period_start,amount\noona.rep@globex.test,2024-01-01,1\n"

    result = _import(personas, text)

    assert _errors(result) == [
        (2, "email", "oona.rep@globex.test", "no member has this email address")
    ]


def test_quota_of_other_length_reported(in_org, personas):
    make_quota(personas.rep1, "30000.00", D(2024, 1, 1), D(2024, 2, 1))

    result = _import(
        personas, "email,period_start,amount\nrita.rep@acme.test,2024-01-01,100\n"
    )

    [(line, column, value, message)] = _errors(result)
    assert (line, column, value) == (2, "amount", "100")
    assert "30000.00 is set for 2024-01-01 to 2024-01-31" in message


# Export ---------------------------------------------------------------------


def test_export_round_trip(in_org, personas):
    make_quota(personas.rep1, "100000.00")
    make_quota(personas.rep1.team, "250000.00")
    period = quota_period_containing(personas.org, D(2024, 1, 1))

    text = write_csv(export_rows(quota_grid(personas.org, period, "bookings")))

    lines = text.splitlines()
    assert lines[0] == "email,member,team,period_start,metric,amount,currency"
    assert "rita.rep@acme.test,Rita Rep,,2024-01-01,bookings,100000.00,USD" in lines
    assert "rob.rep@acme.test,Rob Rep,,2024-01-01,bookings,,USD" in lines
    assert ",,East,2024-01-01,bookings,250000.00,USD" in lines
    before = _stored()

    result = _import(personas, text)

    assert result.errors == []
    assert result.saved.changed == 0
    assert result.saved.unchanged == 2
    # Every member without a quota has a blank amount: 5 reps and managers.
    assert result.blank == len(lines) - 1 - 2
    assert _stored() == before


def test_export_quotes_formula_cells(in_org, personas):
    Membership.objects.filter(pk=personas.rep1.pk).update(display_name="=Rita")
    make_quota(personas.rep1, "1.00")
    period = quota_period_containing(personas.org, D(2024, 1, 1))

    text = write_csv(export_rows(quota_grid(personas.org, period, "bookings")))

    assert "'=Rita" in text
    # The import reads the quoted name back.
    assert _import(personas, text).saved.unchanged == 1


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("999,999,999,999.99", Decimal("999999999999.99")),
        ("1000000000000", "is too large (at most 12 digits)"),
        ("9999999999999999", "is too large (at most 12 digits)"),
    ],
)
def test_amount_digit_limit(text, expected):
    # A double stores 15 significant digits exactly; 12 whole digits and 2
    # decimals stay exact on SQLite too.
    if isinstance(expected, Decimal):
        assert parse_amount(text, "bookings") == expected
    else:
        with pytest.raises(ValueError, match=re.escape(expected)):
            parse_amount(text, "bookings")
