from csp.decorators import csp_update
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import (
    require_GET,
    require_http_methods,
    require_POST,
)
from drf_spectacular.views import SpectacularSwaggerSplitView

from followups.audit_text import step_audit_text
from spm import selectors, services
from spm.access import admin_required, member_visible_or_404
from spm.forms import (
    ApiKeyForm,
    AuditLogFilterForm,
    InviteForm,
    MembershipForm,
    OrganizationSettingsForm,
)
from spm.models import ApiKey, Membership

AUDIT_LOG_PAGE_SIZE = 50

# SHA-256 of the one <style> block in drf-spectacular 0.30's Swagger UI page.
SWAGGER_UI_STYLE_HASH = "'sha256-MMpT0iDxyjALd9PdfepImGX3DBfJPXZ4IlDWdPAgtn0='"

# The API documentation page. The split view serves Swagger UI's start-up
# script as a file (?script) instead of inline, so the page runs under
# script-src 'self'. Only the page's own <style> block is added to style-src.
api_docs = csp_update({"style-src": [SWAGGER_UI_STYLE_HASH]})(
    SpectacularSwaggerSplitView.as_view(url_name="api-schema")
)


@login_required
def home(request):
    """Send a signed-in user to their first organisation."""
    membership = (
        Membership.unscoped.filter(user=request.user, is_active=True)
        .select_related("organization")
        .order_by("organization__name")
        .first()
    )
    if membership is None:
        return render(request, "spm/no_organization.html")
    return redirect("measurement:home", org_slug=membership.organization.slug)


@login_required
@admin_required
@require_http_methods(["GET", "POST"])
def organization_settings(request, org_slug):
    form = OrganizationSettingsForm(request.POST or None, instance=request.organization)
    if request.method == "POST" and form.is_valid():
        changes = {field: form.cleaned_data[field] for field in form.fields}
        # The form has already set the new values on the instance. Reload it,
        # so the service reads the old values for the audit log.
        request.organization.refresh_from_db()
        services.organization_update(
            organization=request.organization, actor=request.user, **changes
        )
        messages.success(request, "Settings saved.")
        return redirect("spm:settings", org_slug=org_slug)
    return render(request, "spm/organization_settings.html", {"form": form})


@login_required
@admin_required
@require_GET
def member_list(request, org_slug):
    members = Membership.objects.select_related("user", "team", "reports_to")
    return render(request, "spm/member_list.html", {"members": members})


@login_required
@admin_required
@require_http_methods(["GET", "POST"])
def member_edit(request, org_slug, member_id):
    member = member_visible_or_404(request.membership, member_id)
    form = MembershipForm(request.POST or None, instance=member)
    if request.method == "POST" and form.is_valid():
        changes = {field: form.cleaned_data[field] for field in form.fields}
        member.refresh_from_db()
        try:
            services.membership_update(membership=member, actor=request.user, **changes)
        except services.MembershipChangeError as error:
            form.add_error(error.field, str(error))
        else:
            messages.success(request, f"{member.display_name} saved.")
            return redirect("spm:members", org_slug=org_slug)
    invite_form = InviteForm(initial={"email": member.email})
    return render(
        request,
        "spm/member_edit.html",
        {"member": member, "form": form, "invite_form": invite_form},
    )


@login_required
@admin_required
@require_POST
def member_invite(request, org_slug, member_id):
    member = member_visible_or_404(request.membership, member_id)
    form = InviteForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Enter a valid email address to invite.")
        return redirect("spm:member-edit", org_slug=org_slug, member_id=member_id)
    try:
        services.membership_invite(
            membership=member,
            email=form.cleaned_data["email"],
            actor=request.user,
            signup_url=request.build_absolute_uri(reverse("account_signup")),
        )
    except services.MembershipChangeError as error:
        messages.error(request, str(error))
        return redirect("spm:member-edit", org_slug=org_slug, member_id=member_id)
    messages.success(request, f"Invitation sent to {form.cleaned_data['email']}.")
    return redirect("spm:members", org_slug=org_slug)


@login_required
@admin_required
@require_POST
def member_remove(request, org_slug, member_id):
    member = member_visible_or_404(request.membership, member_id)
    try:
        services.membership_remove(membership=member, actor=request.user)
    except services.MembershipChangeError as error:
        messages.error(request, str(error))
        return redirect("spm:member-edit", org_slug=org_slug, member_id=member_id)
    messages.success(request, f"{member.display_name} was removed.")
    return redirect("spm:members", org_slug=org_slug)


@login_required
@admin_required
@require_GET
def audit_log(request, org_slug):
    """List the audit log, filtered by action, actor and dates. It is read-only."""
    organization = request.organization
    form = AuditLogFilterForm(
        request.GET or None,
        actions=selectors.audit_log_actions(organization=organization),
        actors=selectors.audit_log_actors(organization=organization),
    )
    filters = form.cleaned_data if form.is_bound and form.is_valid() else {}
    entries = selectors.audit_log_list(
        organization=organization,
        action=filters.get("action", ""),
        actor=filters.get("actor"),
        start=filters.get("start"),
        end=filters.get("end"),
    )
    if form.is_bound and form.errors:
        # An invalid filter shows its error and no entries, not the whole log.
        entries = entries.none()
    page = Paginator(entries, AUDIT_LOG_PAGE_SIZE).get_page(request.GET.get("page"))
    page.object_list = list(page.object_list)
    selectors.audit_log_stage_names_set(page.object_list)
    _sequence_steps_describe(page.object_list)
    return render(request, "spm/audit_log.html", {"page": page, "form": form})


def _sequence_steps_describe(entries) -> None:
    """Replace the step dicts of follow-up sequence entries with sentences."""
    for entry in entries:
        if not entry.action.startswith("followups.sequence."):
            continue
        for values in (entry.old_shown, entry.new_shown):
            steps = values.get("steps") if isinstance(values, dict) else None
            if isinstance(steps, list):
                values["steps"] = [
                    step_audit_text(step) if isinstance(step, dict) else step
                    for step in steps
                ]


@login_required
@admin_required
@require_GET
def api_key_list(request, org_slug):
    return _render_api_key_list(request, ApiKeyForm())


def _render_api_key_list(request, form, status=200):
    keys = selectors.api_key_list(organization=request.organization)
    context = {"api_keys": keys, "form": form, "key_scheme": services.API_KEY_PREFIX}
    return render(request, "spm/api_key_list.html", context, status=status)


@never_cache
@login_required
@admin_required
@require_POST
def api_key_create(request, org_slug):
    """Create a key and show it in this response only: only its hash is stored."""
    form = ApiKeyForm(request.POST)
    if not form.is_valid():
        return _render_api_key_list(request, form, status=400)
    api_key, key = services.api_key_create(
        organization=request.organization,
        name=form.cleaned_data["name"],
        actor=request.user,
    )
    return render(request, "spm/api_key_created.html", {"api_key": api_key, "key": key})


@login_required
@admin_required
@require_POST
def api_key_revoke(request, org_slug, key_id):
    try:
        api_key = ApiKey.objects.get(public_id=key_id)
    except ApiKey.DoesNotExist:
        raise Http404("No such API key.") from None
    services.api_key_revoke(api_key=api_key, actor=request.user)
    messages.success(request, f"The key {api_key} is revoked.")
    return redirect("spm:api-keys", org_slug=org_slug)
