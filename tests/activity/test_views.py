"""The import pages (upload, map, validate, import) and who may see them."""

from __future__ import annotations

import csv
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from activity.models import Deal, ImportJob, ImportPreset
from spm.models import AuditLog
from spm.tenancy import tenant_context
from tests.activity.conftest import fixture_bytes, validate
from tests.conftest import login

Status = ImportJob.Status


def _url(name: str, job: ImportJob | None = None, slug: str = "acme") -> str:
    kwargs = {"org_slug": slug}
    if job is not None:
        kwargs["job_id"] = job.public_id
    return reverse(f"activity:{name}", kwargs=kwargs)


def _upload(client, *names: str, preset: str = ""):
    files = [SimpleUploadedFile(name, fixture_bytes(name)) for name in names]
    return client.post(_url("import-list"), {"files": files, "preset": preset})


def _mapping_data(response) -> dict:
    """Return the mapping form's initial values, as the browser would post them."""
    form = response.context["form"]
    return {
        name: form[name].initial or ""
        for name in form.fields
        if name != "save_preset_as"
    }


@pytest.fixture
def admin_client(client, personas):
    return login(client, personas.admin)


def test_list_page_shows_upload_form(admin_client):
    response = admin_client.get(_url("import-list"))
    assert response.status_code == 200
    assert b'type="file"' in response.content
    assert b"maven" in response.content


def test_page_flow_upload_map_validate_import(
    admin_client, personas, django_capture_on_commit_callbacks
):
    # Upload: the job waits for its mapping.
    response = _upload(admin_client, "deals_bad_rows.csv", "products.csv")
    with tenant_context(personas.org):
        job = ImportJob.objects.get()
    assert response.status_code == 302
    assert response["Location"] == _url("import-mapping", job)
    assert job.status == Status.PENDING
    assert job.created_by == personas.admin.user

    # Mapping: every column has a select, pre-filled from the header names.
    response = admin_client.get(_url("import-mapping", job))
    assert response.status_code == 200
    data = _mapping_data(response)
    assert sorted(data.values()) == sorted(
        [
            "deals.external_id",
            "deals.owner",
            "deals.stage",
            "deals.close_date",
            "deals.amount",
            "products.name",
            "products.family",
            "products.list_price",
        ]
    )
    data["save_preset_as"] = "Our CRM"
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(_url("import-mapping", job), data)
    assert response.status_code == 302
    assert response["Location"] == _url("import-detail", job)

    # Validation ran: the page lists the errors and offers both choices.
    job.refresh_from_db()
    assert job.status == Status.VALIDATED
    assert (job.valid_rows, job.invalid_rows) == (3, 5)
    response = admin_client.get(_url("import-detail", job))
    assert b"Import 3 valid rows" in response.content
    assert b"Import nothing" in response.content
    assert b"2017-13-45" in response.content
    assert b"not a date (expected YYYY-MM-DD or M/D/YYYY)" in response.content

    # Import: the valid rows are written, the invalid ones skipped.
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(_url("import-start", job))
    job.refresh_from_db()
    assert job.status == Status.DONE
    assert job.progress == 100
    assert job.counts["deals"]["skipped"] == 5
    with tenant_context(personas.org):
        assert list(Deal.objects.values_list("external_id", flat=True)) == ["B1"]
        preset = ImportPreset.objects.get()
        assert AuditLog.objects.filter(action="import_preset.save").count() == 1
    assert preset.name == "Our CRM"
    assert preset.mapping["deals"]["opportunity_id"] == "external_id"
    response = admin_client.get(_url("import-detail", job))
    assert b"Import 3 valid rows" not in response.content


def test_saved_preset_prefills_mapping(admin_client, personas):
    with tenant_context(personas.org):
        ImportPreset.objects.create(
            organization=personas.org,
            name="Odd export",
            mapping={"deals": {"foo": "external_id", "bar": "stage"}},
        )
    files = [SimpleUploadedFile("odd.csv", b"foo,bar,baz\nX1,Engaging,1\n")]
    admin_client.post(_url("import-list"), {"files": files, "preset": "Odd export"})
    with tenant_context(personas.org):
        import_file = ImportJob.objects.get().files.get()
    assert import_file.kind == "deals"
    assert import_file.mapping == ["external_id", "stage", ""]


def test_mapping_mixing_kinds_is_rejected(admin_client, personas):
    _upload(admin_client, "products.csv")
    with tenant_context(personas.org):
        job = ImportJob.objects.get()
    data = _mapping_data(admin_client.get(_url("import-mapping", job)))
    first = next(iter(data))
    data[first] = "deals.external_id"
    response = admin_client.post(_url("import-mapping", job), data)
    assert response.status_code == 200
    assert "mapped to fields of deals and products" in response.content.decode()
    job.refresh_from_db()
    assert job.status == Status.PENDING


def test_builtin_preset_name_cannot_be_saved(admin_client, personas):
    _upload(admin_client, "products.csv")
    with tenant_context(personas.org):
        job = ImportJob.objects.get()
    data = _mapping_data(admin_client.get(_url("import-mapping", job)))
    data["save_preset_as"] = "Maven"
    response = admin_client.post(_url("import-mapping", job), data)
    assert response.status_code == 200
    assert "built-in preset" in response.content.decode()


def test_cancel_imports_nothing(admin_client, personas):
    job = validate(personas.org, {"deals.csv": fixture_bytes("deals_bad_rows.csv")})
    response = admin_client.post(_url("import-cancel", job))
    assert response.status_code == 302
    job.refresh_from_db()
    assert job.status == Status.CANCELLED
    with tenant_context(personas.org):
        assert Deal.objects.count() == 0


def test_blocking_error_offers_no_import(admin_client, personas):
    job = validate(personas.org, {"empty.csv": b""})
    response = admin_client.get(_url("import-detail", job))
    assert b"The file is empty." in response.content
    assert b"valid rows</button>" not in response.content
    response = admin_client.post(_url("import-start", job), follow=True)
    assert b"block the import" in response.content
    job.refresh_from_db()
    assert job.status == Status.VALIDATED


def test_errors_download_as_csv(admin_client, personas):
    content = fixture_bytes("deals_bad_rows.csv") + b"B9,Rita Rep,Won,=1+2,5\n"
    job = validate(personas.org, {"deals.csv": content})
    response = admin_client.get(_url("import-errors", job))
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0] == ["file", "line", "column", "value", "message"]
    assert rows[1] == [
        "deals.csv",
        "3",
        "close_date",
        "2017-13-45",
        "not a date (expected YYYY-MM-DD or M/D/YYYY)",
    ]
    assert len(rows) == 1 + 6
    # A value a spreadsheet would run as a formula is quoted.
    assert rows[6][1:4] == ["8", "close_date", "'=1+2"]


def test_progress_partial_polls_while_running(admin_client, personas):
    job = validate(personas.org, {"deals.csv": fixture_bytes("deals_bom_crlf.csv")})
    ImportJob.unscoped.filter(pk=job.pk).update(status=Status.IMPORTING, progress=42)

    response = admin_client.get(_url("import-progress", job), HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert b'hx-trigger="every 1s"' in response.content
    assert b'<progress class="progress" max="100" value="42">' in response.content

    page = admin_client.get(_url("import-detail", job))
    assert b'hx-trigger="every 1s"' in page.content


def test_progress_partial_reloads_page_when_finished(admin_client, personas):
    job = validate(personas.org, {"deals.csv": fixture_bytes("deals_bom_crlf.csv")})
    response = admin_client.get(_url("import-progress", job), HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert response["HX-Refresh"] == "true"


def test_list_shows_jobs(admin_client, personas):
    validate(personas.org, {"deals.csv": fixture_bytes("deals_bom_crlf.csv")})
    response = admin_client.get(_url("import-list"))
    assert b"Validated" in response.content


@pytest.mark.parametrize(
    "name", ["import-detail", "import-mapping", "import-progress", "import-errors"]
)
def test_other_org_job_is_404(client, personas, name):
    job = validate(personas.org, {"deals.csv": fixture_bytes("deals_bom_crlf.csv")})
    login(client, personas.outsider)
    response = client.get(_url(name, job, slug="globex"))
    assert response.status_code == 404


@pytest.mark.parametrize("name", ["import-start", "import-cancel"])
def test_other_org_cannot_post_to_job(client, personas, name):
    job = validate(personas.org, {"deals.csv": fixture_bytes("deals_bom_crlf.csv")})
    login(client, personas.outsider)
    response = client.post(_url(name, job, slug="globex"))
    assert response.status_code == 404
    job.refresh_from_db()
    assert job.status == Status.VALIDATED
    with tenant_context(personas.org):
        assert Deal.objects.count() == 0


@pytest.mark.parametrize("persona", ["manager", "rep1", "vp"])
@pytest.mark.parametrize(
    ("name", "method"),
    [
        ("import-list", "get"),
        ("import-list", "post"),
        ("import-detail", "get"),
        ("import-mapping", "get"),
        ("import-mapping", "post"),
        ("import-errors", "get"),
        ("import-start", "post"),
        ("import-cancel", "post"),
    ],
)
def test_non_admins_get_404(client, personas, persona, name, method):
    job = validate(personas.org, {"deals.csv": fixture_bytes("deals_bom_crlf.csv")})
    login(client, getattr(personas, persona))
    url = _url(name, None if name == "import-list" else job)
    response = getattr(client, method)(url)
    assert response.status_code == 404
    job.refresh_from_db()
    assert job.status == Status.VALIDATED


@pytest.mark.parametrize("name", ["import-start", "import-cancel"])
def test_state_changes_reject_get(admin_client, personas, name):
    job = validate(personas.org, {"deals.csv": fixture_bytes("deals_bom_crlf.csv")})
    response = admin_client.get(_url(name, job))
    assert response.status_code == 405
    job.refresh_from_db()
    assert job.status == Status.VALIDATED


def test_post_without_csrf_token_is_rejected(personas):
    job = validate(personas.org, {"deals.csv": fixture_bytes("deals_bom_crlf.csv")})
    client = login(Client(enforce_csrf_checks=True), personas.admin)
    response = client.post(_url("import-start", job))
    assert response.status_code == 403
    job.refresh_from_db()
    assert job.status == Status.VALIDATED


def test_anonymous_is_sent_to_login(client, personas):
    response = client.get(_url("import-list"))
    assert response.status_code == 302
    assert "login" in response["Location"]


def test_empty_upload_names_the_file(admin_client):
    empty = SimpleUploadedFile("q3-deals.csv", b"", content_type="text/csv")
    response = admin_client.post(_url("import-list"), {"files": [empty]})
    assert response.status_code == 200
    assert "q3-deals.csv is empty" in response.content.decode()
    assert not ImportJob.unscoped.exists()
