"""CSV import pages: upload, mapping, validation results and progress.

Every page is for admins only, and a job of another organisation is a 404.
"""

from __future__ import annotations

import csv

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRefresh

from activity import services
from activity.forms import ImportMappingForm, ImportUploadForm
from activity.importing import selectors
from activity.importing.presets import PresetNotFound, preset_names
from activity.models import ImportJob
from spm.access import admin_required, require_admin
from spm.spreadsheet import spreadsheet_safe

Status = ImportJob.Status
# Cells a spreadsheet would run as a formula.


def _job_or_404(request: HttpRequest, job_id) -> ImportJob:
    require_admin(request.membership)
    job = selectors.import_job_get(public_id=job_id)
    if job is None:
        raise Http404("No such import.")
    return job


@login_required
@admin_required
@require_http_methods(["GET", "POST"])
def import_list(request: HttpRequest, org_slug: str) -> HttpResponse:
    require_admin(request.membership)
    form = ImportUploadForm(
        request.POST or None, request.FILES or None, presets=preset_names()
    )
    if request.method == "POST" and form.is_valid():
        files = [(upload.name, upload.read()) for upload in form.cleaned_data["files"]]
        try:
            job = services.import_job_create(
                organization=request.organization,
                actor=request.user,
                files=files,
                preset_name=form.cleaned_data["preset"],
            )
        except PresetNotFound as error:
            form.add_error("preset", str(error))
        else:
            return redirect(
                "activity:import-mapping", org_slug=org_slug, job_id=job.public_id
            )
    jobs = selectors.import_jobs_recent()
    return render(request, "activity/import_list.html", {"form": form, "jobs": jobs})


@login_required
@admin_required
@require_http_methods(["GET", "POST"])
def import_mapping(request: HttpRequest, org_slug: str, job_id) -> HttpResponse:
    job = _job_or_404(request, job_id)
    if job.status not in (Status.PENDING, Status.VALIDATED, Status.FAILED):
        messages.error(request, "This import can no longer be mapped.")
        return redirect("activity:import-detail", org_slug=org_slug, job_id=job_id)

    files = job.files.defer("content")
    form = ImportMappingForm(request.POST or None, files=files)
    if request.method == "POST" and form.is_valid():
        try:
            services.import_job_map(
                job=job,
                actor=request.user,
                mappings=form.mappings,
                save_preset_as=form.cleaned_data["save_preset_as"],
            )
        except services.PresetNameError as error:
            form.add_error("save_preset_as", str(error))
        except services.ImportJobStateError as error:
            messages.error(request, str(error))
        else:
            return redirect("activity:import-detail", org_slug=org_slug, job_id=job_id)
    return render(request, "activity/import_mapping.html", {"job": job, "form": form})


@login_required
@admin_required
@require_GET
def import_detail(request: HttpRequest, org_slug: str, job_id) -> HttpResponse:
    job = _job_or_404(request, job_id)
    context = {
        "job": job,
        "files": job.files.defer("content"),
        "errors": job.errors[: selectors.ERRORS_SHOWN],
        "errors_shown": selectors.ERRORS_SHOWN,
        "can_import": job.status in (Status.VALIDATED, Status.FAILED)
        and job.validated_at is not None
        and job.valid_rows > 0
        and not job.has_blocking_errors,
        "can_cancel": job.status in (Status.PENDING, Status.VALIDATED, Status.FAILED),
    }
    return render(request, "activity/import_detail.html", context)


@login_required
@admin_required
@require_GET
def import_progress(request: HttpRequest, org_slug: str, job_id) -> HttpResponse:
    """Return the progress bar, or make htmx reload the page once the job stops."""
    job = _job_or_404(request, job_id)
    if request.htmx and not job.is_running:
        return HttpResponseClientRefresh()
    return render(request, "activity/_import_progress.html", {"job": job})


@login_required
@admin_required
@require_GET
def import_errors_csv(request: HttpRequest, org_slug: str, job_id) -> HttpResponse:
    job = _job_or_404(request, job_id)
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = (
        f'attachment; filename="import-{job.public_id}-errors.csv"'
    )
    writer = csv.writer(response)
    for row in selectors.import_job_error_rows(job):
        writer.writerow([spreadsheet_safe(cell) for cell in row])
    return response


@login_required
@admin_required
@require_POST
def import_start(request: HttpRequest, org_slug: str, job_id) -> HttpResponse:
    job = _job_or_404(request, job_id)
    try:
        services.import_job_start(job=job, actor=request.user)
    except services.ImportJobStateError as error:
        messages.error(request, str(error))
    return redirect("activity:import-detail", org_slug=org_slug, job_id=job_id)


@login_required
@admin_required
@require_POST
def import_cancel(request: HttpRequest, org_slug: str, job_id) -> HttpResponse:
    job = _job_or_404(request, job_id)
    try:
        services.import_job_cancel(job=job, actor=request.user)
    except services.ImportJobStateError as error:
        messages.error(request, str(error))
    else:
        messages.success(request, "Import cancelled: nothing was imported.")
    return redirect("activity:import-detail", org_slug=org_slug, job_id=job_id)
