"""Pages: a lead's routing decision, the fallback queue, and a rep's own leads."""

from __future__ import annotations

import functools
import logging

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from routing import selectors, sla
from routing.forms_leads import LeadAssignForm
from routing.qualification import qualification_context
from routing.reassignment import (
    ReassignmentError,
    assignable_members,
    can_change_owner,
    lead_reassign,
)
from spm.access import require_manager_or_admin
from spm.models import Membership

logger = logging.getLogger(__name__)

PAGE_SIZE = 50


def managers_only(view):
    """Return 404 to reps before any other check, the method check included."""

    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        require_manager_or_admin(request.membership)
        return view(request, *args, **kwargs)

    return wrapper


@login_required
@require_GET
def lead_detail(request: HttpRequest, org_slug: str, lead_id) -> HttpResponse:
    """Show a lead with its score, SLA and owners, and to managers its decision.

    A rep may open only the leads they own. The page leaves out the routing
    decision, which names the other reps considered, and the actions.
    """
    viewer = request.membership
    lead = selectors.lead_by_public_id(lead_id)
    if lead is None:
        raise Http404("No such lead.")
    manages = viewer.is_admin or viewer.is_manager
    if manages and not selectors.lead_visible_to(viewer, lead):
        raise Http404("No such lead.")
    if not manages and lead.owner_id != viewer.pk:
        raise Http404("No such lead.")
    context = {
        "lead": lead,
        "manages": manages,
        "assignment": selectors.assignment_for(lead),
        "timers": sla.lead_timers(lead),
        "rep_delay": sla.rep_delay_minutes(lead),
        "reassignments": selectors.lead_reassignments(lead),
        "assignees": _assignees(viewer, lead) if manages else [],
        **qualification_context(lead),
    }
    return render(request, "routing/lead_detail.html", context)


def _assignees(viewer: Membership, lead) -> list[Membership]:
    """Return whom ``viewer`` may give the lead to: no one for a finished lead."""
    if not can_change_owner(lead):
        return []
    return [
        member for member in assignable_members(viewer) if member.pk != lead.owner_id
    ]


@login_required
@managers_only
@require_POST
def lead_assign(request: HttpRequest, org_slug: str, lead_id) -> HttpResponse:
    """Give a lead to a rep by hand, from the lead's page or the queue."""
    lead = selectors.lead_by_public_id(lead_id)
    if lead is None or not selectors.lead_visible_to(request.membership, lead):
        raise Http404("No such lead.")
    form = LeadAssignForm(request.POST, viewer=request.membership)
    if not form.is_valid():
        messages.error(request, form.error_text())
        return _back(form, org_slug, lead)
    expected = form.cleaned_data["expected_owner"]
    expected_owner_id = None
    if expected is not None:
        expected_owner_id = (
            Membership.objects.filter(public_id=expected)
            .values_list("pk", flat=True)
            .first()
        )
    member = form.cleaned_data["member"]
    try:
        lead_reassign(
            lead_id=lead.pk,
            member=member,
            actor=request.membership,
            expected_owner_id=expected_owner_id,
            reason=form.cleaned_data["reason"],
        )
    except ReassignmentError as error:
        logger.info(
            "Lead %s not given to member %s: %s",
            lead.pk,
            member.pk,
            error,
            extra={"organization_id": request.organization.pk},
        )
        messages.error(request, str(error))
    else:
        messages.success(request, f"Lead {lead} assigned to {member.display_name}.")
    return _back(form, org_slug, lead)


def _back(form: LeadAssignForm, org_slug: str, lead) -> HttpResponse:
    if form.cleaned_data.get("from_queue"):
        return redirect("routing:queue", org_slug=org_slug)
    return redirect("routing:lead", org_slug=org_slug, lead_id=lead.public_id)


@login_required
@managers_only
@require_GET
def fallback_queue(request: HttpRequest, org_slug: str) -> HttpResponse:
    """List the leads that no rule or rep could take, oldest first."""
    page = Paginator(selectors.fallback_queue(), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    escalations = selectors.open_escalations(request.membership)
    context = {
        "page": page,
        "escalations": escalations,
        # One list for every row's form, read once.
        "assignees": list(assignable_members(request.membership)),
    }
    return render(request, "routing/queue.html", context)


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
