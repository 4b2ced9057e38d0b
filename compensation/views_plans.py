"""Plan builder pages: plans, draft versions and components, preview, diff,
assignments and exchange rates for admins, and a rep's own plan document.

Admin pages return 404 to everyone else, as the other admin pages do, so
their existence is not revealed. Writes go through
compensation.services_plans, which audits each change.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from compensation import plan_preview
from compensation import selectors_plans as selectors
from compensation import services_plans as services
from compensation.engine.types import ParamsError
from compensation.forms_plans import (
    AssignmentEndForm,
    AssignmentForm,
    ComponentForm,
    DraftForm,
    FxImportForm,
    FxRateForm,
    PlanCreateForm,
    PreviewForm,
    VersionForm,
)
from compensation.models import PlanComponent, PlanVersion
from compensation.plan_document import plan_document
from compensation.plan_document import version_diff as describe_changes
from goals.calendar import month_range
from goals.periods import organization_today
from spm.access import admin_required

FX_RATES_SHOWN = 200


def _add_errors(form, error: ValidationError) -> None:
    """Put a service's ValidationError on the form field it names, else on the form."""
    if not hasattr(error, "error_dict"):
        for message in error.messages:
            form.add_error(None, message)
        return
    for name, field_messages in error.message_dict.items():
        for message in field_messages:
            form.add_error(name if name in form.fields else None, message)


def _error_messages(request: HttpRequest, error: ValidationError) -> None:
    for message in error.messages:
        messages.error(request, message)


def _version_url(version: PlanVersion) -> str:
    return reverse(
        "compensation:version",
        kwargs={"org_slug": version.organization.slug, "version_id": version.public_id},
    )


def _document_or_error(version: PlanVersion):
    """Return (document, "") or (None, the reason it cannot be written)."""
    try:
        return plan_document(version), ""
    except ParamsError as error:
        return None, str(error)


# Plans ------------------------------------------------------------------------


@login_required
@admin_required
@require_http_methods(["GET", "POST"])
def plan_list(request: HttpRequest, org_slug: str) -> HttpResponse:
    """List the plans. A POST creates one with an empty draft version 1."""
    status = 200
    if request.method == "POST":
        form = PlanCreateForm(request.POST)
        if form.is_valid():
            try:
                plan = services.plan_create(
                    organization=request.organization,
                    actor=request.user,
                    **form.cleaned_data,
                )
            except ValidationError as error:
                _add_errors(form, error)
            else:
                messages.success(request, f"Plan {plan.name} created as a draft.")
                version = plan.versions.get()
                return redirect(_version_url(version))
        status = 400
    else:
        today = organization_today(request.organization)
        form = PlanCreateForm(
            initial={
                "currency": request.organization.currency,
                "effective_from": today.replace(day=1),
            }
        )
    context = {"plans": selectors.plan_list(), "form": form}
    return render(request, "compensation/plans/list.html", context, status=status)


def _plan_context(request: HttpRequest, plan, **forms) -> dict:
    versions = selectors.plan_versions(plan)
    published = [v for v in versions if v.is_published]
    current = max(published, key=lambda v: (v.effective_from, v.number), default=None)
    document, document_error = (None, "")
    if current is not None:
        document, document_error = _document_or_error(current)
    today = organization_today(request.organization)
    return {
        "plan": plan,
        "versions": versions,
        "draft": next((v for v in versions if not v.is_published), None),
        "current": current,
        "document": document,
        "document_error": document_error,
        "assignments": selectors.plan_assignments(plan),
        "assignment_form": forms.get("assignment_form")
        or AssignmentForm(initial={"start_date": today.replace(day=1)}),
        "draft_form": forms.get("draft_form")
        or DraftForm(initial={"effective_from": today}),
    }


@login_required
@admin_required
@require_GET
def plan_detail(request: HttpRequest, org_slug: str, plan_id) -> HttpResponse:
    plan = selectors.plan_get(plan_id)
    return render(
        request, "compensation/plans/detail.html", _plan_context(request, plan)
    )


@login_required
@admin_required
@require_POST
def plan_draft_create(request: HttpRequest, org_slug: str, plan_id) -> HttpResponse:
    """Start a new draft version as a copy of the plan's latest published one."""
    plan = selectors.plan_get(plan_id)
    form = DraftForm(request.POST)
    if form.is_valid():
        try:
            draft = services.plan_draft_create(
                plan=plan,
                actor=request.user,
                effective_from=form.cleaned_data["effective_from"],
            )
        except ValidationError as error:
            _add_errors(form, error)
        else:
            messages.success(request, f"Draft {draft.label} started.")
            return redirect(_version_url(draft))
    context = _plan_context(request, plan, draft_form=form)
    return render(request, "compensation/plans/detail.html", context, status=400)


@login_required
@admin_required
@require_POST
def plan_assign(request: HttpRequest, org_slug: str, plan_id) -> HttpResponse:
    plan = selectors.plan_get(plan_id)
    form = AssignmentForm(request.POST)
    if form.is_valid():
        try:
            assignment = services.plan_assignment_create(
                plan=plan, actor=request.user, **form.cleaned_data
            )
        except ValidationError as error:
            _add_errors(form, error)
        else:
            messages.success(request, f"{assignment.member} assigned to {plan.name}.")
            return redirect("compensation:plan", org_slug=org_slug, plan_id=plan_id)
    context = _plan_context(request, plan, assignment_form=form)
    return render(request, "compensation/plans/detail.html", context, status=400)


@login_required
@admin_required
@require_POST
def assignment_end(request: HttpRequest, org_slug: str, assignment_id) -> HttpResponse:
    """Set the assignment's last day; errors return to the plan page as messages."""
    assignment = selectors.assignment_get(assignment_id)
    form = AssignmentEndForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Invalid end date: " + form.errors.as_text())
    else:
        end_date = form.cleaned_data["end_date"]
        try:
            services.plan_assignment_end(
                assignment=assignment, actor=request.user, end_date=end_date
            )
        except ValidationError as error:
            _error_messages(request, error)
        else:
            messages.success(
                request,
                f"{assignment.member} is on {assignment.plan} until {end_date}.",
            )
    return redirect(
        "compensation:plan", org_slug=org_slug, plan_id=assignment.plan.public_id
    )


@login_required
@admin_required
@require_POST
def assignment_delete(
    request: HttpRequest, org_slug: str, assignment_id
) -> HttpResponse:
    assignment = selectors.assignment_get(assignment_id)
    plan = assignment.plan
    try:
        services.plan_assignment_delete(assignment=assignment, actor=request.user)
    except ValidationError as error:
        _error_messages(request, error)
    else:
        messages.success(request, f"Assignment of {assignment.member} deleted.")
    return redirect("compensation:plan", org_slug=org_slug, plan_id=plan.public_id)


# Versions and components ------------------------------------------------------


def _version_context(version: PlanVersion, form) -> dict:
    document, document_error = _document_or_error(version)
    others = [
        other
        for other in selectors.plan_versions(version.plan)
        if other.pk != version.pk and other.is_published
    ]
    return {
        "version": version,
        "plan": version.plan,
        "components": list(version.components.all()),
        "form": form,
        "document": document,
        "document_error": document_error,
        "other_versions": others,
        "preview_form": PreviewForm(),
        "component_kinds": PlanComponent.Kind.choices,
    }


@login_required
@admin_required
@require_http_methods(["GET", "POST"])
def version_detail(request: HttpRequest, org_slug: str, version_id) -> HttpResponse:
    """Show a version, and edit the plan-wide terms of a draft."""
    version = selectors.version_get(version_id)
    form = None
    status = 200
    if request.method == "POST":
        form = VersionForm(request.POST, instance=version)
        if version.is_published:
            messages.error(
                request,
                f"{version.label} is published, so it is read-only. Start a new "
                "draft to change the plan.",
            )
            return redirect(_version_url(version))
        if form.is_valid():
            try:
                services.plan_version_update(
                    version=version, actor=request.user, values=form.cleaned_data
                )
            except ValidationError as error:
                _add_errors(form, error)
            else:
                messages.success(request, f"{version.label} saved.")
                return redirect(_version_url(version))
        status = 400
        # The form wrote the invalid values onto the instance, so reload it.
        version = selectors.version_get(version_id)
    elif not version.is_published:
        form = VersionForm(instance=version)
    return render(
        request,
        "compensation/plans/version.html",
        _version_context(version, form),
        status=status,
    )


def _component_page(
    request: HttpRequest, version: PlanVersion, component: PlanComponent | None
) -> HttpResponse:
    if version.is_published:
        messages.error(
            request,
            f"{version.label} is published, so its components are read-only. "
            "Start a new draft to change them.",
        )
        return redirect(_version_url(version))
    status = 200
    if request.method == "POST":
        form = ComponentForm(request.POST)
        if form.is_valid():
            try:
                saved = services.plan_component_save(
                    version=version,
                    component=component,
                    actor=request.user,
                    values=form.component_values(),
                )
            except ValidationError as error:
                _add_errors(form, error)
            else:
                messages.success(request, f"Component {saved.name} saved.")
                return redirect(_version_url(version))
        status = 400
    elif component is not None:
        form = ComponentForm(initial=ComponentForm.initial_for(component))
    else:
        kind = request.GET.get("kind", PlanComponent.Kind.FLAT)
        form = ComponentForm(
            initial={"kind": kind, "order": version.components.count() + 1}
        )
    context = {"version": version, "component": component, "form": form}
    return render(
        request, "compensation/plans/component_form.html", context, status=status
    )


@login_required
@admin_required
@require_http_methods(["GET", "POST"])
def component_create(request: HttpRequest, org_slug: str, version_id) -> HttpResponse:
    return _component_page(request, selectors.version_get(version_id), None)


@login_required
@admin_required
@require_http_methods(["GET", "POST"])
def component_edit(request: HttpRequest, org_slug: str, component_id) -> HttpResponse:
    component = selectors.component_get(component_id)
    return _component_page(request, component.version, component)


@login_required
@admin_required
@require_POST
def component_delete(request: HttpRequest, org_slug: str, component_id) -> HttpResponse:
    component = selectors.component_get(component_id)
    version = component.version
    try:
        services.plan_component_delete(component=component, actor=request.user)
    except ValidationError as error:
        _error_messages(request, error)
    else:
        messages.success(request, f"Component {component.name} deleted.")
    return redirect(_version_url(version))


@login_required
@admin_required
@require_POST
def version_publish(request: HttpRequest, org_slug: str, version_id) -> HttpResponse:
    version = selectors.version_get(version_id)
    try:
        services.plan_version_publish(version=version, actor=request.user)
    except ValidationError as error:
        _error_messages(request, error)
    else:
        messages.success(
            request,
            f"{version.label} published, effective from {version.effective_from}.",
        )
        locked = selectors.locked_statements_from(
            version.plan_id, version.effective_from
        )
        if locked:
            messages.warning(
                request,
                f"{locked} approved or paid statement{'s' if locked != 1 else ''} "
                f"of this plan's members end after {version.effective_from}. They "
                "stay as they are, and the next calculation of their months adds "
                "any change to each member's next draft as an adjustment line.",
            )
    return redirect(_version_url(version))


@login_required
@admin_required
@require_GET
def version_preview(request: HttpRequest, org_slug: str, version_id) -> HttpResponse:
    """Show what the version would pay each rep in a past month, storing nothing."""
    version = selectors.version_get(version_id)
    form = PreviewForm(request.GET or None)
    rows, published, period = [], None, None
    status = 200
    if form.is_bound and form.is_valid():
        period = month_range(form.cleaned_data["period"])
        published = selectors.latest_published(version.plan_id)
        if published is not None and published.pk == version.pk:
            published = None
        rows = plan_preview.draft_preview(
            draft=version,
            published=published,
            period=period,
            member=form.cleaned_data.get("member"),
        )
    elif form.is_bound:
        status = 400
    context = {
        "version": version,
        "plan": version.plan,
        "form": form,
        "rows": rows,
        "published": published,
        "period": period,
    }
    return render(request, "compensation/plans/preview.html", context, status=status)


@login_required
@admin_required
@require_GET
def version_diff(request: HttpRequest, org_slug: str, version_id) -> HttpResponse:
    """List the changes to the version from ``?against=<version id>``.

    Without ``against`` the version is compared with the published version
    numbered just below it. A version of another plan is a 404.
    """
    version = selectors.version_get(version_id)
    against = None
    if request.GET.get("against"):
        against = selectors.version_get(request.GET["against"])
        if against.plan_id != version.plan_id:
            raise Http404("No such plan version.")
    else:
        earlier = [
            other
            for other in selectors.plan_versions(version.plan)
            if other.is_published and other.number < version.number
        ]
        against = earlier[0] if earlier else None
    changes, error = [], ""
    if against is not None:
        try:
            changes = describe_changes(against, version)
        except ParamsError as problem:
            error = str(problem)
    context = {
        "version": version,
        "against": against,
        "plan": version.plan,
        "changes": changes,
        "error": error,
    }
    return render(request, "compensation/plans/diff.html", context)


# Exchange rates ---------------------------------------------------------------


def _fx_page(request, form=None, import_form=None, errors=(), status=200):
    context = {
        "rates": selectors.fx_rate_list(FX_RATES_SHOWN),
        "shown": FX_RATES_SHOWN,
        "form": form or FxRateForm(),
        "import_form": import_form or FxImportForm(),
        "import_errors": list(errors),
    }
    return render(request, "compensation/plans/fx_rates.html", context, status=status)


@login_required
@admin_required
@require_http_methods(["GET", "POST"])
def fx_rates(request: HttpRequest, org_slug: str) -> HttpResponse:
    """List the exchange rates. A POST sets one pair's rate on one day."""
    if request.method == "GET":
        return _fx_page(request)
    form = FxRateForm(request.POST)
    if not form.is_valid():
        return _fx_page(request, form=form, status=400)
    services.fx_rate_save(
        organization=request.organization, actor=request.user, **form.cleaned_data
    )
    data = form.cleaned_data
    messages.success(
        request,
        f"Saved 1 {data['base_currency']} = {data['rate']} {data['quote_currency']} "
        f"on {data['date']}.",
    )
    return redirect("compensation:fx-rates", org_slug=org_slug)


@login_required
@admin_required
@require_POST
def fx_rate_delete(request: HttpRequest, org_slug: str) -> HttpResponse:
    """Delete the rate that the posted date, from and to name."""
    form = FxRateForm(request.POST)
    form.fields["rate"].required = False
    if form.is_valid():
        data = form.cleaned_data
        rate = selectors.fx_rate_by_key(
            data["date"], data["base_currency"], data["quote_currency"]
        )
        if rate is not None:
            services.fx_rate_delete(rate=rate, actor=request.user)
            messages.success(request, f"Deleted the rate {rate}.")
        else:
            messages.error(request, "No such rate; it may have been deleted already.")
    else:
        messages.error(request, "Invalid rate to delete: " + form.errors.as_text())
    return redirect("compensation:fx-rates", org_slug=org_slug)


@login_required
@admin_required
@require_POST
def fx_import(request: HttpRequest, org_slug: str) -> HttpResponse:
    """Import a CSV of rates: all rows, or none when any row is invalid."""
    form = FxImportForm(request.POST, request.FILES)
    if not form.is_valid():
        return _fx_page(request, import_form=form, status=400)
    upload = form.cleaned_data["file"]
    try:
        count = services.fx_rates_import(
            organization=request.organization,
            actor=request.user,
            content=upload.read(),
            filename=upload.name,
        )
    except services.FxImportError as error:
        messages.error(request, str(error))
        return _fx_page(request, import_form=form, errors=error.errors, status=400)
    messages.success(request, f"Imported {count} rate{'s' if count != 1 else ''}.")
    return redirect("compensation:fx-rates", org_slug=org_slug)


# A rep's own plan -------------------------------------------------------------


@login_required
@require_GET
def my_plan(request: HttpRequest, org_slug: str) -> HttpResponse:
    """Show the plan documents of the viewer's plans in effect today.

    htmx loads it into My commission; without htmx it is a page of its own.
    """
    today = organization_today(request.organization)
    documents = []
    for version in selectors.member_current_plans(request.membership, today):
        document, error = _document_or_error(version)
        documents.append((version, document, error))
    template = (
        "compensation/plans/_my_plan.html"
        if request.htmx
        else "compensation/plans/my_plan.html"
    )
    return render(request, template, {"documents": documents, "today": today})
