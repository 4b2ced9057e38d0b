"""Validation reports every bad row and bad file before anything is written."""

from __future__ import annotations

import pytest

from activity import services
from activity.importing.validation import format_error
from activity.models import ImportJob
from spm.tenancy import tenant_context
from tests.activity.conftest import fixture_bytes, run_import, table_counts, validate

Status = ImportJob.Status


def _errors(job: ImportJob) -> list[tuple]:
    return [(e["line"], e["column"], e["value"], e["message"]) for e in job.errors]


def test_bad_rows_name_line_column_value(org):
    job = validate(org, {"deals.csv": fixture_bytes("deals_bad_rows.csv")})

    assert job.status == Status.VALIDATED
    assert job.total_rows == 6
    assert job.valid_rows == 1
    assert job.invalid_rows == 5
    assert _errors(job) == [
        (3, "close_date", "2017-13-45",
         "not a date (expected YYYY-MM-DD or M/D/YYYY)"),
        (4, "close_date", "", "a won deal needs a close date"),
        (5, "close_value", "12abc",
         "not an amount (expected a number such as 1054.50)"),
        (6, "deal_stage", "", "Stage is required"),
        (7, "opportunity_id", "B1", "duplicate external id: already on line 2"),
    ]  # fmt: skip
    assert not job.has_blocking_errors


def test_error_text_has_file_line_column_value(org):
    job = validate(org, {"deals.csv": fixture_bytes("deals_bad_rows.csv")})
    assert format_error(job.errors[0]) == (
        'deals.csv: line 3, column close_date, value "2017-13-45": '
        "not a date (expected YYYY-MM-DD or M/D/YYYY)"
    )


def test_validation_writes_no_crm_rows(org):
    before = table_counts(org)
    validate(org, {"deals.csv": fixture_bytes("deals_bom_crlf.csv")})
    assert table_counts(org) == before


def test_valid_rows_import_and_invalid_are_skipped(org):
    before = table_counts(org)
    job = run_import(org, {"deals.csv": fixture_bytes("deals_bad_rows.csv")})

    assert job.status == Status.DONE
    assert job.skip_invalid is True
    assert job.counts["deals"] == {
        "created": 1,
        "updated": 0,
        "unchanged": 0,
        "skipped": 5,
    }
    assert table_counts(org)["deals"] == before["deals"] + 1


def test_cancel_imports_nothing(org):
    before = table_counts(org)
    job = validate(org, {"deals.csv": fixture_bytes("deals_bad_rows.csv")})
    with tenant_context(org):
        job = services.import_job_cancel(job=job, actor=None)
        assert job.status == Status.CANCELLED
        with pytest.raises(services.ImportJobStateError):
            services.import_job_start(job=job, actor=None, enqueue=False)
    assert table_counts(org) == before


def _megabyte_line() -> bytes:
    huge = "x" * 2**20
    return f"external_id,name,stage\nX1,ok,Engaging\nX2,{huge},Engaging\n".encode()


FILE_ERRORS = [
    ("empty.csv", None, None, "The file is empty."),
    (
        "header_only.csv",
        None,
        None,
        "The file has a header but no data rows: add at least one row below it.",
    ),
    (
        "wrong_header.csv",
        None,
        None,
        "The header has no known columns (it reads: foo, bar, baz). Expected the "
        "columns of deals, members, accounts or products",
    ),
    (
        "missing_stage.csv",
        None,
        None,
        'Required column "Stage" is missing: deals need it. Add a column such as '
        "stage, deal_stage, stage_name",
    ),
    (
        "huge.csv",
        _megabyte_line(),
        3,
        "the value is 1,048,576 characters long, more than the limit of 10,000 "
        "(ATTAIN_IMPORT_MAX_FIELD_CHARS)",
    ),
    (
        "binary.csv",
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00",
        None,
        "The file is not a text file: it contains NUL bytes.",
    ),
    ("ragged.csv", None, 2, "the row has 4 cells but the header has 3"),
]


@pytest.mark.parametrize(
    ("name", "content", "line", "message"),
    FILE_ERRORS,
    ids=[case[0] for case in FILE_ERRORS],
)
def test_bad_file_is_blocking_and_imports_nothing(org, name, content, line, message):
    before = table_counts(org)
    content = fixture_bytes(name) if content is None else content
    files = {name: content, "teams.csv": fixture_bytes("sales_teams.csv")}

    job = validate(org, files)

    assert job.has_blocking_errors
    first = job.errors[0]
    assert first["file"] == name
    assert first["line"] == line
    assert first["message"].startswith(message)
    with tenant_context(org), pytest.raises(services.ImportJobStateError):
        services.import_job_start(job=job, actor=None, enqueue=False)
    assert table_counts(org) == before


def test_megabyte_line_names_its_column(org):
    job = validate(org, {"huge.csv": _megabyte_line()})
    (error,) = job.errors
    assert error["column"] == "name"
    assert error["value"] == "x" * 60 + "…"
    assert job.valid_rows == 1


def test_ragged_file_lists_every_bad_line(org):
    job = validate(org, {"ragged.csv": fixture_bytes("ragged.csv")})
    assert _errors(job) == [
        (2, "", "", "the row has 4 cells but the header has 3"),
        (4, "", "", "the row has 2 cells but the header has 3"),
    ]
    assert job.total_rows == 3
    assert job.invalid_rows == 2


def test_duplicate_member_and_email_are_errors(org):
    content = (
        b"sales_agent,manager,email\n"
        b"Ann Able,Max Manager,ann@acme.test\n"
        b"ANN ABLE,Max Manager,\n"
        b"Bob Baker,Max Manager,Ann@Acme.test\n"
        b"Cy Cycle,Cy Cycle,\n"
    )
    job = validate(org, {"teams.csv": content})
    assert _errors(job) == [
        (3, "sales_agent", "ANN ABLE", "duplicate member: already on line 2"),
        (4, "email", "Ann@Acme.test",
         "duplicate email address: already on line 2"),
        (5, "manager", "Cy Cycle", "a member cannot manage themselves"),
    ]  # fmt: skip


def test_reporting_cycle_in_file_is_an_error(org):
    content = b"sales_agent,manager\nAnn Able,Bob Baker\nBob Baker,Ann Able\n"
    job = validate(org, {"teams.csv": content})
    assert [e["line"] for e in job.errors] == [2, 3]
    assert job.errors[0]["message"].startswith("reporting cycle")


def test_currency_symbol_conflicting_with_column_is_an_error(org):
    content = b"external_id;stage;amount;currency\nC1;Engaging;\xe2\x82\xac5;USD\n"
    job = validate(org, {"deals.csv": content})
    assert _errors(job) == [
        (2, "amount", "€5", "the amount is in EUR but the currency column says USD")
    ]


def test_won_stage_is_read_from_existing_stage_flags(org, personas):
    # "Closed" is unknown, so it would be created open: no close date needed.
    # "won" matches the existing Won stage, which needs one.
    content = b"external_id,stage,close_date\nW1,Closed,\nW2,won,\n"
    job = validate(org, {"deals.csv": content})
    assert _errors(job) == [
        (3, "close_date", "", "a won deal needs a close date"),
    ]


def test_duplicate_external_id_across_files(org):
    first = b"external_id,stage\nA1,Engaging\n"
    second = b"external_id,stage\nA2,Engaging\nA1,Lost\n"
    job = validate(org, {"one.csv": first, "two.csv": second})
    assert _errors(job) == [
        (3, "external_id", "A1", "duplicate external id: already on line 2 of one.csv")
    ]


def test_won_close_date_falls_back_to_stored(org):
    run_import(org, {"deals.csv": fixture_bytes("deals_bom_crlf.csv")})
    # Q1 is stored with a close date. Z1 is new and has none.
    job = validate(org, {"deals.csv": b"external_id,stage\nQ1,Won\nZ1,Won\n"})
    assert _errors(job) == [(3, "close_date", "", "a won deal needs a close date")]
