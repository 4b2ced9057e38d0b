"""The quota grid, its copy from the previous period, and CSV export and import.

Every page is for admins only, and anyone else gets 404.
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from goals import grid, services
from goals.calendar import DateRange
from goals.forms import QuotaImportForm, QuotaPeriodForm
from goals.models import QuotaMetric
from goals.periods import (
    next_quota_period,
    organization_today,
    previous_quota_period,
    quota_period_containing,
)
from goals.quota_csv import error_rows, export_rows, write_csv
from goals.values import parse_amount
from spm.access import admin_required

# The prefix of the hidden input that contains a cell's value as the page
# showed it. A cell posted with that value unchanged is left alone, so a stale
# page does not undo what someone else saved since.
SHOWN_PREFIX = "shown-"
# Import errors listed on the page. The CSV download has all stored ones.
IMPORT_ERRORS_SHOWN = 500
# Import errors kept in the session for the download.
IMPORT_ERRORS_STORED = 10_000


def _grid_url(
    org_slug: str, period: DateRange, metric: str, name: str = "goals:quotas"
) -> str:
    """Return the URL of page ``name`` for ``period`` and ``metric``."""
    query = urlencode({"on": period.start.isoformat(), "metric": metric})
    return reverse(name, kwargs={"org_slug": org_slug}) + "?" + query


def _selection(request: HttpRequest, params: QueryDict):
    """Return (period, metric, form), with no period when the form is invalid."""
    form = QuotaPeriodForm(params)
    if not form.is_valid():
        return None, QuotaMetric.BOOKINGS, form
    day = form.cleaned_data["on"] or organization_today(request.organization)
    period = quota_period_containing(request.organization, day)
    metric = form.cleaned_data["metric"] or QuotaMetric.BOOKINGS
    selection_form = QuotaPeriodForm(initial={"on": period.start, "metric": metric})
    return period, metric, selection_form


def _posted_cells(post: QueryDict, quota_grid: grid.QuotaGrid):
    """Return the cells the admin changed, and the rows whose input is invalid."""
    cells, invalid = [], []
    for row in quota_grid.rows():
        if row.key not in post:
            continue
        text = post[row.key].strip()
        row.text = text
        shown_text = post.get(SHOWN_PREFIX + row.key)
        if shown_text is not None and shown_text.strip() == text:
            continue
        if row.conflict is not None:
            if text:
                row.error = (
                    f"{row.name}: “{text}” cannot be saved here, {row.conflict_note}."
                )
                invalid.append(row)
            continue
        try:
            amount = parse_amount(text, quota_grid.metric)
        except ValueError as error:
            row.error = f"{row.name}: “{text}” {error}."
            invalid.append(row)
            continue
        seen = shown_text.strip() if shown_text is not None else None
        cells.append(services.QuotaCell(row.owner, amount, text, seen=seen))
    return cells, invalid


def _mark_problems(
    request: HttpRequest, quota_grid: grid.QuotaGrid, error: services.QuotaError
) -> list:
    """Put each problem of ``error`` on its row, and return those rows."""
    if not error.problems:
        messages.error(request, str(error))
    rows = []
    for problem in error.problems:
        for row in quota_grid.rows():
            if row.owner == problem.subject and not row.error:
                row.error = f"{problem}."
                rows.append(row)
    return rows


def _grid_context(request: HttpRequest, quota_grid, form, invalid=()) -> dict:
    organization = request.organization
    period = quota_grid.period
    previous = previous_quota_period(organization, period)
    following = next_quota_period(organization, period)
    slug = organization.slug
    return {
        "form": form,
        "grid": quota_grid,
        "period": period,
        "metric_label": QuotaMetric(quota_grid.metric).label,
        "previous": previous,
        "previous_url": _grid_url(slug, previous, quota_grid.metric),
        "next_url": _grid_url(slug, following, quota_grid.metric),
        "export_url": _grid_url(slug, period, quota_grid.metric, "goals:quotas-export"),
        "invalid": list(invalid),
        "shown_prefix": SHOWN_PREFIX,
    }


def _save_message(result: services.QuotaSaveResult, label: str) -> str:
    if not result.changed:
        return f"No quota of {label} changed."
    return (
        f"Quotas of {label} saved: {result.created} added, {result.updated} "
        f"changed, {result.deleted} removed."
    )


@login_required
@admin_required
@require_http_methods(["GET", "POST"])
def quota_grid(request: HttpRequest, org_slug: str) -> HttpResponse:
    params = request.POST if request.method == "POST" else request.GET
    period, metric, form = _selection(request, params)
    if period is None:
        context = {"form": form, "grid": None}
        return render(request, "goals/quotas.html", context, status=400)

    quota_grid = grid.quota_grid(request.organization, period, metric)
    if request.method == "GET":
        return render(
            request, "goals/quotas.html", _grid_context(request, quota_grid, form)
        )

    cells, invalid = _posted_cells(request.POST, quota_grid)
    if not invalid:
        try:
            result = services.quotas_save(
                organization=request.organization,
                actor=request.user,
                period_start=period.start,
                period_end=period.end,
                metric=metric,
                rows=cells,
            )
        except services.QuotaError as error:
            invalid = _mark_problems(request, quota_grid, error)
        else:
            messages.success(request, _save_message(result, period.label))
            return redirect(_grid_url(org_slug, period, metric))
    context = _grid_context(request, quota_grid, form, invalid)
    return render(request, "goals/quotas.html", context, status=400)


@login_required
@admin_required
@require_POST
def quota_copy(request: HttpRequest, org_slug: str) -> HttpResponse:
    period, metric, _form = _selection(request, request.POST)
    if period is None:
        messages.error(request, "The period to copy into is invalid.")
        return redirect("goals:quotas", org_slug=org_slug)
    result = services.quotas_copy_previous(
        organization=request.organization,
        actor=request.user,
        period_start=period.start,
        period_end=period.end,
        metric=metric,
    )
    text = (
        f"Copied {result.copied} quota{'s' * (result.copied != 1)} from "
        f"{result.previous.label}; kept {result.kept} already set."
    )
    if result.skipped_currency:
        text += (
            f" {result.skipped_currency} in another currency than "
            f"{request.organization.currency} were not copied."
        )
    messages.success(request, text)
    return redirect(_grid_url(org_slug, period, metric))


@login_required
@admin_required
@require_GET
def quota_export(request: HttpRequest, org_slug: str) -> HttpResponse:
    period, metric, form = _selection(request, request.GET)
    if period is None:
        errors = "; ".join(
            f"{name}: {' '.join(texts)}" for name, texts in form.errors.items()
        )
        return HttpResponse(errors, status=400, content_type="text/plain")
    quota_grid = grid.quota_grid(request.organization, period, metric)
    response = HttpResponse(
        write_csv(export_rows(quota_grid)), content_type="text/csv; charset=utf-8"
    )
    name = f"quotas-{metric}-{period.start:%Y-%m-%d}.csv"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


def _errors_key(request: HttpRequest) -> str:
    return f"goals.quota_import_errors.{request.organization.pk}"


@login_required
@admin_required
@require_http_methods(["GET", "POST"])
def quota_import(request: HttpRequest, org_slug: str) -> HttpResponse:
    """Upload a quota CSV: every valid row is saved, or none with the errors."""
    form = QuotaImportForm(request.POST or None, request.FILES or None)
    if request.method == "GET" or not form.is_valid():
        status = 400 if form.is_bound else 200
        return render(request, "goals/quota_import.html", {"form": form}, status=status)

    upload = form.cleaned_data["file"]
    # One byte past the limit is enough for the import to reject the file.
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    result = services.quotas_import(
        organization=request.organization,
        actor=request.user,
        file_name=upload.name,
        content=upload.read(limit + 1),
    )
    if result.errors:
        errors = [error.as_dict() for error in result.errors]
        request.session[_errors_key(request)] = errors[:IMPORT_ERRORS_STORED]
        context = {
            "form": QuotaImportForm(),
            "file_name": upload.name,
            "errors": errors[:IMPORT_ERRORS_SHOWN],
            "error_count": len(errors),
            "errors_shown": IMPORT_ERRORS_SHOWN,
            "errors_stored": IMPORT_ERRORS_STORED,
        }
        return render(request, "goals/quota_import.html", context, status=400)

    request.session.pop(_errors_key(request), None)
    saved = result.saved
    messages.success(
        request,
        f"{upload.name} imported: {saved.created} added, {saved.updated} changed, "
        f"{saved.unchanged} unchanged, {result.blank} with no amount skipped.",
    )
    return redirect("goals:quotas-import", org_slug=org_slug)


@login_required
@admin_required
@require_GET
def quota_import_errors(request: HttpRequest, org_slug: str) -> HttpResponse:
    """Download the errors of this session's last rejected quota file."""
    errors = request.session.get(_errors_key(request), [])
    response = HttpResponse(
        write_csv(error_rows(errors)), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = 'attachment; filename="quota-import-errors.csv"'
    return response
