"""Pages: the sequences with their counts, and a public unsubscribe link."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core import signing
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods

from followups import selectors, services
from followups.models import OptOut
from routing.views import managers_only
from spm.access import visible_member_ids
from spm.models import Organization
from spm.tenancy import tenant_context


@login_required
@managers_only
@require_GET
def sequence_list(request: HttpRequest, org_slug: str) -> HttpResponse:
    """List the sequences and latest enrollments of the viewer's reps, with counts."""
    member_ids = visible_member_ids(request.membership)
    context = {
        "sequences": selectors.sequences_with_counts(member_ids),
        "enrollments": selectors.recent_enrollments(member_ids),
        "shown": selectors.ENROLLMENTS_SHOWN,
    }
    return render(request, "followups/sequence_list.html", context)


# Mail clients send the one-click unsubscribe (RFC 8058) as a POST with no
# CSRF token; the signed token in the URL is what authorises it.
@csrf_exempt
@require_http_methods(["GET", "POST"])
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    """Show a confirmation button (GET) or record the opt-out (POST), with no sign-in.

    A GET changes nothing, because link scanners in mail systems fetch links.
    """
    try:
        organization_id, email = services.unsubscribe_token_read(token)
    except (signing.BadSignature, KeyError, ValueError):
        return render(request, "followups/unsubscribe_invalid.html", status=400)
    organization = Organization.objects.filter(pk=organization_id).first()
    if organization is None:
        return render(request, "followups/unsubscribe_invalid.html", status=400)
    if request.method == "POST":
        with tenant_context(organization):
            services.opt_out_record(
                organization=organization,
                email=email,
                reason=OptOut.Reason.UNSUBSCRIBED,
            )
        done = True
    else:
        done = False
    context = {"sender": organization.name, "email": email, "done": done}
    return render(request, "followups/unsubscribe.html", context)
