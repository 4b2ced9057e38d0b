"""Dispute pages: raise on a statement line, the thread, resolution and counts.

A rep raises disputes on their own statement only. Everyone who can see the
statement (the rep, their managers, admins) can read its disputes, and any
other dispute id is a 404. Only reviewers (admins, and managers of the
rep's tree) answer in the thread's name and resolve.
"""

from __future__ import annotations

import logging
from zoneinfo import ZoneInfo

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from compensation import services_disputes as services
from compensation.forms_trust import (
    DisputeRaiseForm,
    DisputeReplyForm,
    DisputeResolveForm,
)
from compensation.models import Dispute
from compensation.views import _statement_or_404, statement_context
from spm.access import visible_member_ids

logger = logging.getLogger(__name__)


def _dispute_or_404(request: HttpRequest, dispute_id) -> Dispute:
    dispute = services.dispute_get(dispute_id)
    if dispute is None or not services.can_see(request.membership, dispute):
        raise Http404("No such dispute.")
    return dispute


def _to_statement(org_slug: str, statement) -> HttpResponse:
    return redirect(
        "compensation:statement", org_slug=org_slug, statement_id=statement.public_id
    )


def _raise_failed(
    request: HttpRequest, statement, error: str, status: int = 400
) -> HttpResponse:
    """Render the statement again with the error, keeping the rep's line and text."""
    logger.info(
        "Dispute rejected on statement %s by member %s: %s",
        statement.public_id,
        request.membership.pk,
        error,
    )
    messages.error(request, f"Dispute not raised: {error}")
    context = statement_context(
        request,
        statement,
        dispute_line=request.POST.get("line", ""),
        dispute_message=request.POST.get("message", ""),
    )
    return render(request, "compensation/statement_detail.html", context, status=status)


@login_required
@require_POST
def dispute_raise(request: HttpRequest, org_slug: str, statement_id) -> HttpResponse:
    statement = _statement_or_404(request, statement_id)
    if statement.member_id != request.membership.pk:
        raise PermissionDenied("Only the rep can dispute their statement.")
    form = DisputeRaiseForm(request.POST)
    if not form.is_valid():
        error = "; ".join(
            f"{field}: {' '.join(errors)}" for field, errors in form.errors.items()
        )
        return _raise_failed(request, statement, error)
    line = services.dispute_line(statement, form.cleaned_data["line"])
    if line is None:
        return _raise_failed(
            request,
            statement,
            f"line {form.cleaned_data['line']} is not on this statement. It may "
            "have changed since you opened the page, so choose the line again.",
        )
    try:
        dispute = services.dispute_raise(
            statement=statement,
            line=line,
            raiser=request.membership,
            body=form.cleaned_data["message"],
        )
    except services.DisputeOpenError as error:
        return _raise_failed(request, statement, str(error), status=409)
    except services.DisputeError as error:
        return _raise_failed(request, statement, str(error))
    messages.success(request, "Dispute raised. Your manager has been notified.")
    return redirect(
        "compensation:dispute", org_slug=org_slug, dispute_id=dispute.public_id
    )


@login_required
@require_GET
def dispute_list(request: HttpRequest, org_slug: str) -> HttpResponse:
    viewer = request.membership
    visible = visible_member_ids(viewer)
    context = {
        "disputes": services.disputes_visible(viewer, visible),
        "counts": services.dispute_counts() if viewer.is_admin else None,
    }
    return render(request, "compensation/disputes.html", context)


def _detail(request, dispute, reply_form=None, resolve_form=None, status=200):
    reviewer = services.can_review(request.membership, dispute)
    open_ = not dispute.is_resolved
    can_write = open_ and (reviewer or dispute.raised_by_id == request.membership.pk)
    context = {
        "dispute": dispute,
        "thread": services.dispute_thread(dispute),
        "reply_form": (reply_form or DisputeReplyForm()) if can_write else None,
        "resolve_form": (resolve_form or DisputeResolveForm())
        if open_ and reviewer
        else None,
    }
    return render(request, "compensation/dispute_detail.html", context, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def dispute_detail(request: HttpRequest, org_slug: str, dispute_id) -> HttpResponse:
    """Show the thread, or add a message to it on POST."""
    dispute = _dispute_or_404(request, dispute_id)
    if request.method == "GET":
        return _detail(request, dispute)
    form = DisputeReplyForm(request.POST)
    if form.is_valid():
        try:
            services.dispute_reply(
                dispute=dispute,
                author=request.membership,
                body=form.cleaned_data["message"],
            )
        except services.DisputeError as error:
            if dispute.is_resolved:
                form.add_error(None, str(error))
                return _detail(request, dispute, reply_form=form, status=409)
            raise PermissionDenied(str(error)) from error
        return redirect(
            "compensation:dispute", org_slug=org_slug, dispute_id=dispute.public_id
        )
    return _detail(request, dispute, reply_form=form, status=400)


@login_required
@require_POST
def dispute_resolve(request: HttpRequest, org_slug: str, dispute_id) -> HttpResponse:
    dispute = _dispute_or_404(request, dispute_id)
    if not services.can_review(request.membership, dispute):
        raise PermissionDenied("Only an admin or the rep's manager can resolve this.")
    if dispute.is_resolved:
        # The page shows no resolve form any more, so the error goes above it.
        logger.info(
            "Resolve rejected: dispute %s is already resolved (member %s)",
            dispute.public_id,
            request.membership.pk,
        )
        zone = ZoneInfo(request.organization.time_zone)
        resolved_on = dispute.resolved_at.astimezone(zone)
        messages.error(
            request,
            f"This dispute was resolved on {resolved_on:%Y-%m-%d}, so it cannot be "
            "resolved again.",
        )
        return _detail(request, dispute, status=409)
    form = DisputeResolveForm(request.POST)
    if form.is_valid():
        try:
            services.dispute_resolve(
                dispute=dispute,
                reviewer=request.membership,
                root_cause=form.cleaned_data["root_cause"],
                resolution=form.cleaned_data["resolution"],
                actor=request.user,
            )
        except services.DisputeError as error:
            form.add_error(None, str(error))
            return _detail(request, dispute, resolve_form=form, status=409)
        messages.success(request, "Dispute resolved.")
        return redirect(
            "compensation:dispute", org_slug=org_slug, dispute_id=dispute.public_id
        )
    return _detail(request, dispute, resolve_form=form, status=400)
