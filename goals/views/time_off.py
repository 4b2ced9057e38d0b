"""The time-off calendar.

The page lists the entries of the members the viewer may see, so a rep gets
only their own. An admin adds and deletes time off for anyone. A manager does
so for the members of their reporting tree, but not for themselves, so that
nobody lowers their own quota. Anything else gets 404.
"""

from __future__ import annotations

import datetime as dt

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from goals import services
from goals.forms import TimeOffFilterForm, TimeOffForm
from goals.models import TimeOff
from goals.periods import organization_today
from spm.access import visible_member_ids
from spm.models import Membership

# How far back the page lists entries that have ended.
RECENT_DAYS = 90


def manageable_member_ids(viewer: Membership, visible: set[int]) -> set[int]:
    """Return the ids of the members whose time off ``viewer`` may change."""
    if viewer.is_admin:
        return visible
    if viewer.is_manager:
        return visible - {viewer.pk}
    return set()


def _entries(visible: set[int], member: Membership | None, today: dt.date):
    entries = TimeOff.objects.filter(
        member_id__in=visible, end_date__gte=today - dt.timedelta(days=RECENT_DAYS)
    ).select_related("member")
    if member is not None:
        entries = entries.filter(member=member)
    entries = list(entries.order_by("start_date", "member__display_name", "pk"))
    for entry in entries:
        # Calendar days, both ends included.
        entry.days = (entry.end_date - entry.start_date).days + 1
    upcoming = [entry for entry in entries if entry.end_date >= today]
    recent = [entry for entry in reversed(entries) if entry.end_date < today]
    return upcoming, recent


@login_required
@require_http_methods(["GET", "POST"])
def time_off_list(request: HttpRequest, org_slug: str) -> HttpResponse:
    viewer = request.membership
    visible = visible_member_ids(viewer)
    manageable = manageable_member_ids(viewer, visible)
    if request.method == "POST" and not manageable:
        raise Http404("Page not found.")

    members = Membership.objects.filter(pk__in=manageable, is_active=True)
    form = TimeOffForm(request.POST or None, members=members.order_by("display_name"))
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            entry = services.time_off_create(
                organization=request.organization,
                actor=request.user,
                member=data["member"],
                kind=data["kind"],
                start_date=data["start_date"],
                end_date=data["end_date"],
                note=data["note"],
            )
        except services.TimeOffError as error:
            form.add_error(error.field, str(error))
        else:
            messages.success(
                request,
                f"Time off added for {entry.member.display_name}: "
                f"{entry.start_date:%Y-%m-%d} to {entry.end_date:%Y-%m-%d}.",
            )
            return redirect("goals:time-off", org_slug=org_slug)

    visible_members = Membership.objects.filter(pk__in=visible).order_by("display_name")
    filter_form = TimeOffFilterForm(request.GET or None, members=visible_members)
    member = None
    if filter_form.is_bound and filter_form.is_valid():
        member = filter_form.cleaned_data["member"]
    today = organization_today(request.organization)
    upcoming, recent = _entries(visible, member, today)
    context = {
        "form": form if manageable else None,
        "filter_form": filter_form if len(visible) > 1 else None,
        "upcoming": upcoming,
        "recent": recent,
        "recent_days": RECENT_DAYS,
        "manageable": manageable,
        "today": today,
    }
    status = 400 if form.is_bound else 200
    return render(request, "goals/time_off.html", context, status=status)


@login_required
@require_POST
def time_off_delete(request: HttpRequest, org_slug: str, time_off_id) -> HttpResponse:
    viewer = request.membership
    entry = (
        TimeOff.objects.select_related("member").filter(public_id=time_off_id).first()
    )
    if entry is None:
        raise Http404("No such time off.")
    if entry.member_id not in manageable_member_ids(viewer, visible_member_ids(viewer)):
        raise Http404("No such time off.")
    services.time_off_delete(time_off=entry, actor=request.user)
    messages.success(
        request,
        f"Time off of {entry.member.display_name} from {entry.start_date:%Y-%m-%d} "
        f"to {entry.end_date:%Y-%m-%d} deleted.",
    )
    return redirect(reverse("goals:time-off", kwargs={"org_slug": org_slug}))
