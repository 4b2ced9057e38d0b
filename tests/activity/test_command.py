"""The import_csv management command."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from activity.models import Deal, ImportJob
from spm.tenancy import tenant_context
from tests.activity.conftest import FIXTURES, table_counts


def _call(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("import_csv", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_command_imports_and_prints_counts(org):
    out, err = _call(
        "--organization",
        "acme",
        str(FIXTURES / "products.csv"),
        str(FIXTURES / "deals_bom_crlf.csv"),
    )
    assert "Read 6 rows: 6 valid, 0 invalid." in out
    assert "products: 3 created, 0 updated, 0 unchanged, 0 skipped" in out
    assert "deals: 4 created, 0 updated, 0 unchanged, 0 skipped" in out
    assert err == ""
    with tenant_context(org):
        assert Deal.objects.count() == 4


def test_command_rerun_counts_unchanged(org):
    path = str(FIXTURES / "deals_bom_crlf.csv")
    _call("--organization", "acme", path)
    out, _ = _call("--organization", "acme", path)
    assert "deals: 0 created, 0 updated, 4 unchanged, 0 skipped" in out


def test_command_with_invalid_rows_exits_without_writing(org):
    before = table_counts(org)
    err = StringIO()
    with pytest.raises(CommandError) as raised:
        call_command(
            "import_csv",
            "--organization=acme",
            str(FIXTURES / "deals_bad_rows.csv"),
            stdout=StringIO(),
            stderr=err,
        )
    assert raised.value.returncode == 1
    assert "5 rows are invalid: nothing was imported" in str(raised.value)
    lines = err.getvalue().splitlines()
    assert len(lines) == 5
    assert lines[0] == (
        'deals_bad_rows.csv: line 3, column close_date, value "2017-13-45": '
        "not a date (expected YYYY-MM-DD or M/D/YYYY)"
    )
    assert lines[4] == (
        'deals_bad_rows.csv: line 7, column opportunity_id, value "B1": '
        "duplicate external id: already on line 2"
    )
    assert table_counts(org) == before
    with tenant_context(org):
        assert ImportJob.objects.get().status == ImportJob.Status.CANCELLED


def test_command_skip_invalid_imports_valid_rows(org):
    out, err = _call(
        "--organization", "acme", "--skip-invalid", str(FIXTURES / "deals_bad_rows.csv")
    )
    assert "deals: 1 created, 0 updated, 0 unchanged, 5 skipped" in out
    assert err.count("\n") == 5
    with tenant_context(org):
        assert list(Deal.objects.values_list("external_id", flat=True)) == ["B1"]


def test_command_file_error_stops_even_with_skip_invalid(org):
    before = table_counts(org)
    err = StringIO()
    with pytest.raises(CommandError, match="A file cannot be imported"):
        call_command(
            "import_csv",
            "--organization=acme",
            "--skip-invalid",
            str(FIXTURES / "empty.csv"),
            str(FIXTURES / "products.csv"),
            stdout=StringIO(),
            stderr=err,
        )
    assert err.getvalue() == "empty.csv: The file is empty.\n"
    assert table_counts(org) == before


def test_command_maven_preset_on_fixture(org):
    out, _ = _call(
        "--organization", "acme", "--preset", "maven", str(FIXTURES / "products.csv")
    )
    assert "products: 2 created" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--organization=nope", "x.csv"], 'No organisation has the slug "nope".'),
        (["--organization=acme", "--preset=nope", "PRODUCTS"], "No import preset"),
        (["--organization=acme", "/nonexistent/deals.csv"], "Cannot read"),
    ],
)
def test_command_argument_errors(org, args, message):
    args = [str(FIXTURES / "products.csv") if a == "PRODUCTS" else a for a in args]
    with pytest.raises(CommandError, match=message):
        _call(*args)
