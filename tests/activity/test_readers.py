"""Decoding, CSV dialects and cell formats of real exports."""

import datetime as dt
from decimal import Decimal

import pytest

from activity.importing.readers import FileError, read_csv, read_header
from activity.importing.values import parse_date, parse_money
from tests.activity.conftest import fixture_bytes

LIMIT = 10_000


def test_bom_is_stripped_from_first_header():
    parsed = read_csv(fixture_bytes("deals_bom_crlf.csv"), max_field_chars=LIMIT)
    assert parsed.header[0] == "opportunity_id"
    assert parsed.encoding == "utf-8"


def test_crlf_line_endings_leave_no_carriage_return():
    parsed = read_csv(fixture_bytes("deals_bom_crlf.csv"), max_field_chars=LIMIT)
    assert parsed.header[-1] == "close_value"
    assert parsed.rows[0] == (
        2,
        ["Q1", "Rita Rep", "GTXPro", "Cancity", "Won", "2016-10-20", "3/1/2017",
         "$1,054"],
    )  # fmt: skip
    assert len(parsed.rows) == 4


def test_cp1252_file_is_decoded():
    parsed = read_csv(fixture_bytes("accounts_cp1252.csv"), max_field_chars=LIMIT)
    assert parsed.encoding == "cp1252"
    assert parsed.rows[0][1][0] == "Société Générale"
    assert parsed.rows[0][1][3] == "€1.100,00"
    assert parsed.rows[1][1][5] == "Österreich"


def test_semicolon_delimiter_is_detected():
    parsed = read_csv(fixture_bytes("deals_semicolon.csv"), max_field_chars=LIMIT)
    assert parsed.delimiter == ";"
    assert parsed.header == [
        "external_id", "name", "owner", "stage", "amount", "currency", "close_date",
    ]  # fmt: skip
    assert parsed.rows[0][1][4] == "€1.054,50"


def test_tab_delimiter_is_detected():
    parsed = read_csv(fixture_bytes("deals_tab.tsv"), max_field_chars=LIMIT)
    assert parsed.delimiter == "\t"
    assert parsed.rows[1][1] == ["T2", "Won", "1,054", "12/31/2017"]


def test_utf16_with_bom_is_decoded():
    content = "external_id\tstage\nU1\tWon\n".encode("utf-16")
    parsed = read_csv(content, max_field_chars=LIMIT)
    assert parsed.header == ["external_id", "stage"]
    assert parsed.rows == [(2, ["U1", "Won"])]


def test_blank_lines_are_skipped_and_numbered():
    parsed = read_csv(b"a,b\n\n1,2\n,\n3,4\n", max_field_chars=LIMIT)
    assert parsed.rows == [(3, ["1", "2"]), (5, ["3", "4"])]


def test_quoted_newline_counts_as_one_line():
    parsed = read_csv(b'a,b\n"x\ny",2\n3,4\n', max_field_chars=LIMIT)
    assert parsed.rows == [(2, ["x\ny", "2"]), (3, ["3", "4"])]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "The file is empty."),
        (b"\r\n \r\n", "The file is empty."),
        (b"a,b\r\n", "The file has a header but no data rows"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "not a text file: it contains NUL"),
        (b"a,b\n\x01\x02\x03,\x04\n", "not a text file: it contains control"),
        (b"a,b\n\x81\x8d,x\n", "could not be decoded as UTF-8, UTF-16 or Windows"),
    ],
)
def test_unreadable_files_raise_file_error(content, message):
    with pytest.raises(FileError) as raised:
        read_csv(content, max_field_chars=LIMIT)
    assert message in raised.value.message


def test_long_field_reported_as_problem():
    huge = "x" * 2**20
    content = f"external_id,name,stage\nX1,{huge},Won\nX2,ok,Won\n".encode()
    parsed = read_csv(content, max_field_chars=LIMIT)
    assert [row[0] for row in parsed.rows] == [3]
    (problem,) = parsed.problems
    assert problem.line == 2
    assert problem.column == "name"
    assert "1,048,576 characters long" in problem.message
    assert "limit of 10,000" in problem.message


def test_long_header_cell_raises_file_error():
    content = ("a," + "h" * 20_000 + "\n1,2\n").encode()
    with pytest.raises(FileError) as raised:
        read_csv(content, max_field_chars=LIMIT)
    assert raised.value.line == 1
    assert "20,000 characters long" in raised.value.message


def test_ragged_rows_are_problems():
    parsed = read_csv(fixture_bytes("ragged.csv"), max_field_chars=LIMIT)
    assert [(p.line, p.message) for p in parsed.problems] == [
        (2, "the row has 4 cells but the header has 3"),
        (4, "the row has 2 cells but the header has 3"),
    ]
    assert [line for line, _ in parsed.rows] == [3]


def test_read_header_of_unreadable_file_is_empty():
    assert read_header(b"") == []
    assert read_header(b"\x00\x01") == []
    assert read_header(fixture_bytes("deals_semicolon.csv"))[:2] == [
        "external_id",
        "name",
    ]


@pytest.mark.parametrize(
    ("text", "amount", "currency"),
    [
        ("1054", Decimal("1054"), ""),
        ("$1,054", Decimal("1054"), ""),
        ("1,054.50", Decimal("1054.50"), ""),
        ("€1.054,50", Decimal("1054.50"), "EUR"),
        ("1.054,50 €", Decimal("1054.50"), "EUR"),
        ("EUR 1054.50", Decimal("1054.50"), "EUR"),
        ("1 054,50", Decimal("1054.50"), ""),
        ("1\u00a0054,50", Decimal("1054.50"), ""),
        ("1054,5", Decimal("1054.50"), ""),
        ("1,234,567.89", Decimal("1234567.89"), ""),
        ("1.234.567", Decimal("1234567"), ""),
        ("£30,288.00", Decimal("30288"), "GBP"),
        ("0", Decimal("0"), ""),
    ],
)
def test_amount_formats(text, amount, currency):
    assert parse_money(text) == (amount, currency)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("12abc", "not an amount"),
        ("1,05,4", "not an amount"),
        ("10.555", "more than 2 decimal places"),
        ("-5", "negative amounts are not accepted"),
        ("EUR 5 USD", "not an amount"),
        ("99999999999999999", "too large"),
    ],
)
def test_invalid_amounts(text, reason):
    with pytest.raises(ValueError, match=reason):
        parse_money(text)


@pytest.mark.parametrize(
    ("text", "date"),
    [
        ("2017-03-01", dt.date(2017, 3, 1)),
        ("3/1/2017", dt.date(2017, 3, 1)),
        ("12/31/2017", dt.date(2017, 12, 31)),
        ("2017-3-1", dt.date(2017, 3, 1)),
    ],
)
def test_date_formats(text, date):
    assert parse_date(text) == date


@pytest.mark.parametrize("text", ["2017-13-45", "2/30/2017", "31/12/2017", "17-3-1"])
def test_invalid_dates(text):
    with pytest.raises(ValueError, match=r"not a date \(expected YYYY-MM-DD or M/D/"):
        parse_date(text)
