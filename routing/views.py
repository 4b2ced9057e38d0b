"""Pages: a lead's routing decision, the fallback queue, and a rep's own leads."""

from __future__ import annotations

import functools

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from routing import selectors, sla
from routing.qualification import qualification_context
from spm.access import require_manager_or_admin

PAGE_SIZE = 50


def managers_only(view):
    """Return 404 to reps before any other check, the method check included."""

    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        require_manager_or_admin(request.membership)
        return view(request, *args, **kwargs)

    return wrapper


@login_required
@managers_only
@require_GET
def lead_detail(request: HttpRequest, org_slug: str, lead_id) -> HttpResponse:
    """Show a lead and its decision record, to managers and admins."""
    lead = selectors.lead_by_public_id(lead_id)
    if lead is None or not selectors.lead_visible_to(request.membership, lead):
        raise Http404("No such lead.")
    context = {
        "lead": lead,
        "assignment": selectors.assignment_for(lead),
        "timers": sla.lead_timers(lead),
        "rep_delay": sla.rep_delay_minutes(lead),
        **qualification_context(lead),
    }
    return render(request, "routing/lead_detail.html", context)


@login_required
@managers_only
@require_GET
def fallback_queue(request: HttpRequest, org_slug: str) -> HttpResponse:
    """List the leads that no rule or rep could take, oldest first."""
    page = Paginator(selectors.fallback_queue(), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    escalations = selectors.open_escalations(request.membership)
    return render(
        request, "routing/queue.html", {"page": page, "escalations": escalations}
    )


@login_required
@require_GET
def my_leads(request: HttpRequest, org_slug: str) -> HttpResponse:
    """List the signed-in member's leads with the time each waited for a touch."""
    leads = selectors.leads_owned_by(request.membership)
    page = Paginator(leads, PAGE_SIZE).get_page(request.GET.get("page"))
    page.object_list = list(page.object_list)
    now = timezone.now()

    # One query each for the whole page, whatever its number of leads.
    touched = selectors.first_activity_times(page.object_list)
    states = sla.sla_states(page.object_list, now)
    rows = []
    for lead in page.object_list:
        lead.first_activity_at = touched.get(lead.pk)
        rows.append((lead, states.get(lead.pk)))
    context = {"page": page, "rows": rows, "now": now}
    return render(request, "routing/my_leads.html", context)
