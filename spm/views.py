from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from spm import services
from spm.access import admin_required, member_visible_or_404
from spm.forms import InviteForm, MembershipForm, OrganizationSettingsForm
from spm.models import AuditLog, Membership


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
        # The form has already set the values on the instance; reload so the
        # service sees the old values for the audit log.
        request.organization.refresh_from_db()
        services.organization_update(
            organization=request.organization, actor=request.user, **changes
        )
        messages.success(request, "Settings saved.")
        return redirect("spm:settings", org_slug=org_slug)
    return render(request, "spm/organization_settings.html", {"form": form})


@login_required
@admin_required
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
def audit_log(request, org_slug):
    entries = AuditLog.objects.select_related("actor").order_by("-created_at", "-id")
    page = Paginator(entries, 50).get_page(request.GET.get("page"))
    return render(request, "spm/audit_log.html", {"page": page})
