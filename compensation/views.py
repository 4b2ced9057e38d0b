"""Commission pages: a rep's own statements, the statements list, and one statement.

Everyone sees their own statements. Managers see those of their reporting
tree, admins all of them, and any other statement id is a 404. Managers and
admins approve, either the selected statements or every draft of the period
in a background task. Admins calculate, mark paid and export for payroll.
"""

from __future__ import annotations

import csv
import datetime as dt
import functools
import logging
import uuid
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseClientRefresh

from compensation import selectors
from compensation import services_statements as services
from compensation.forms import ManualAdjustmentForm
from compensation.models import Statement
from compensation.selectors_trust import PAYROLL_COLUMNS, payroll_rows
from compensation.services_disputes import MAX_MESSAGE_LENGTH, statement_disputes
from goals.calendar import DateRange, month_range
from goals.periods import organization_today
from spm.access import admin_required, require_manager_or_admin, visible_member_ids
from spm.models import Membership
from spm.spreadsheet import spreadsheet_safe

logger = logging.getLogger(__name__)

# Statements per page of the statements list. A page is what a manager
# reviews and selects for approval at once.
STATEMENTS_PER_PAGE = 100


def manager_required(view):
    """Return 404 to reps before any other check, the method check included."""

    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        require_manager_or_admin(request.membership)
        return view(request, *args, **kwargs)

    return wrapper


def _period(request: HttpRequest) -> DateRange:
    """Return the month that ``?period=YYYY-MM`` names, or the current month."""
    value = request.GET.get("period") or request.POST.get("period") or ""
    current = month_range(organization_today(request.organization))
    if value:
        try:
            return month_range(dt.datetime.strptime(value, "%Y-%m").date())
        except ValueError:
            messages.error(
                request,
                f"Invalid period {value!r}: use a month such as 2024-03. Showing "
                f"{current.label} instead.",
            )
    return current


def _list_url(
    org_slug: str, period: DateRange, request: HttpRequest | None = None
) -> str:
    """Return the statements list of ``period``.

    With ``request``, a posted list form's status filter and page are kept,
    so the manager returns to the page they approved from.
    """
    url = reverse("compensation:statements", kwargs={"org_slug": org_slug})
    query = {"period": f"{period.start:%Y-%m}"}
    if request is not None:
        status = request.POST.get("status", "")
        if status in Statement.Status.values:
            query["status"] = status
        page = request.POST.get("page", "")
        if page.isdigit() and page != "1":
            query["page"] = page
    return f"{url}?{urlencode(query)}"


def _statement_or_404(request: HttpRequest, statement_id) -> Statement:
    statement = selectors.statement_get(statement_id)
    if statement is None or statement.member_id not in visible_member_ids(
        request.membership
    ):
        raise Http404("No such statement.")
    return statement


def _selected(request: HttpRequest, visible: set[int], action: str) -> list[Statement]:
    """Return the posted statements that the viewer may see.

    The others are left out with one error message that counts them and
    names ``action``, without saying whether they exist.
    """
    posted = set(request.POST.getlist("statement"))
    public_ids = []
    for value in posted:
        try:
            public_ids.append(uuid.UUID(value))
        except ValueError:
            continue
    statements = selectors.statements_by_public_id(public_ids)
    selected = [s for s in statements if s.member_id in visible]
    left_out = len(posted) - len(selected)
    if left_out:
        logger.info(
            "Statement %s rejected for member %s: %s of %s ids not found in reach",
            action,
            request.membership.pk,
            left_out,
            len(posted),
        )
        messages.error(
            request,
            f"{left_out} of the selected statements "
            f"{'was' if left_out == 1 else 'were'} not found in your reporting "
            f"tree, so you cannot {action} {'it' if left_out == 1 else 'them'}.",
        )
    elif not selected:
        messages.error(request, f"Select at least one statement to {action}.")
    return selected


@login_required
@require_GET
def my_commission(request: HttpRequest, org_slug: str) -> HttpResponse:
    member = request.membership
    period = _period(request)
    statements = selectors.member_statements(member.pk)
    current = next(
        (
            s
            for s in statements
            if (s.period_start, s.period_end) == (period.start, period.end)
        ),
        None,
    )
    context = {
        "period": period,
        "statement": current,
        "lines": selectors.statement_lines(current) if current else [],
        "past": [s for s in statements if s.period_start < period.start],
    }
    return render(request, "compensation/mine.html", context)


def _approve_all_context(
    viewer: Membership,
    visible: set[int],
    period: DateRange,
    summary: list[selectors.StatusSummary],
) -> dict:
    """Return the list page's "Approve all drafts" entries. Two queries at most.

    The drafts are counted only when the summary has some, and the latest
    approval run that the viewer may see is read.
    """
    drafts = next(row.count for row in summary if row.status == Statement.Status.DRAFT)
    drafts_to_approve = 0
    if drafts:
        drafts_to_approve = selectors.drafts_to_approve_query(
            viewer, visible, period.start, period.end
        ).count()
    approval_run = selectors.approval_run_latest(viewer, period.start, period.end)
    # The viewer's own queued or running approval would reject a second click.
    busy = (
        approval_run is not None
        and approval_run.is_active
        and approval_run.requested_by_id == viewer.pk
    )
    return {
        "drafts_to_approve": drafts_to_approve,
        "can_approve_all": drafts_to_approve > 0 and not busy,
        "approval_run": approval_run,
    }


@login_required
@manager_required
@require_GET
def statement_list(request: HttpRequest, org_slug: str) -> HttpResponse:
    """List the period's statements of the viewer's reach, a page at a time.

    A summary above the list counts every statement by status, with totals
    by currency. ``status`` shows one status only, and ``page`` picks the
    page.
    """
    viewer = request.membership
    period = _period(request)
    visible = visible_member_ids(viewer)
    status = request.GET.get("status", "")
    if status not in Statement.Status.values:
        if status:
            messages.error(
                request,
                f"There is no statement status {status!r}; all statements are shown.",
            )
        status = ""
    statements = selectors.period_statements_query(
        visible, period.start, period.end, status
    )
    page = Paginator(statements, STATEMENTS_PER_PAGE).get_page(request.GET.get("page"))
    rows = [
        (statement, services.can_approve(viewer, statement, visible))
        for statement in page.object_list
    ]
    run = None
    if viewer.is_admin:
        run = selectors.calculation_run_latest(period.start, period.end)
    summary = selectors.period_summary(visible, period.start, period.end)
    context = {
        "period": period,
        "previous_month": month_range(period.start - dt.timedelta(days=1)),
        "next_month": month_range(period.end),
        "page": page,
        "rows": rows,
        "status": status,
        "summary": summary,
        "run": run,
        **_approve_all_context(viewer, visible, period, summary),
        "can_approve_any": any(allowed for _, allowed in rows),
        "archived_payouts": selectors.archived_deal_payouts(
            visible, period.start, period.end
        ),
    }
    return render(request, "compensation/statements.html", context)


@login_required
@manager_required
@require_POST
def statements_approve(request: HttpRequest, org_slug: str) -> HttpResponse:
    viewer = request.membership
    period = _period(request)
    visible = visible_member_ids(viewer)
    selected = _selected(request, visible, "approve")
    approved = 0
    for statement in selected:
        try:
            services.statement_approve(
                statement=statement,
                approver=viewer,
                actor=request.user,
                visible=visible,
            )
        except services.StatementError as error:
            messages.error(request, str(error))
        else:
            approved += 1
    if approved:
        messages.success(
            request, f"Approved {approved} statement{'s' if approved != 1 else ''}."
        )
    if request.POST.get("return_to") == "detail" and len(selected) == 1:
        return redirect(
            "compensation:statement",
            org_slug=org_slug,
            statement_id=selected[0].public_id,
        )
    return redirect(_list_url(org_slug, period, request))


@login_required
@manager_required
@require_POST
def statements_approve_all(request: HttpRequest, org_slug: str) -> HttpResponse:
    """Queue the approval of every draft of the period that the viewer may approve."""
    period = _period(request)
    try:
        run = services.approval_run_queue(
            viewer=request.membership, period=period, actor=request.user
        )
    except services.StatementError as error:
        messages.error(request, str(error))
    else:
        messages.success(
            request,
            f"Approval of {run.statement_count} draft "
            f"statement{'s' if run.statement_count != 1 else ''} for "
            f"{period.label} queued. Its progress and result show under Last "
            "approval of all drafts.",
        )
    return redirect(_list_url(org_slug, period))


@login_required
@manager_required
@require_GET
def approval_progress(request: HttpRequest, org_slug: str, run_id) -> HttpResponse:
    """Return an approval run's progress, or make htmx reload the page once it stops.

    Managers see only the runs they requested, admins every run.
    """
    run = selectors.approval_run_get(request.membership, run_id)
    if run is None:
        raise Http404("No such approval run.")
    if request.htmx and not run.is_active:
        return HttpResponseClientRefresh()
    return render(
        request, "compensation/_approval_progress.html", {"approval_run": run}
    )


@login_required
@admin_required
@require_POST
def statements_mark_paid(request: HttpRequest, org_slug: str) -> HttpResponse:
    viewer = request.membership
    period = _period(request)
    selected = _selected(request, visible_member_ids(viewer), "mark paid")
    paid = 0
    for statement in selected:
        try:
            services.statement_mark_paid(
                statement=statement, payer=viewer, actor=request.user
            )
        except services.StatementError as error:
            messages.error(request, str(error))
        else:
            paid += 1
    if paid:
        messages.success(
            request, f"Marked {paid} statement{'s' if paid != 1 else ''} paid."
        )
    if request.POST.get("return_to") == "detail" and len(selected) == 1:
        return redirect(
            "compensation:statement",
            org_slug=org_slug,
            statement_id=selected[0].public_id,
        )
    return redirect(_list_url(org_slug, period, request))


@login_required
@admin_required
@require_POST
def statements_calculate(request: HttpRequest, org_slug: str) -> HttpResponse:
    period = _period(request)
    try:
        services.calculation_run_queue(
            organization=request.organization, period=period, actor=request.user
        )
    except services.CalculationBusyError as error:
        messages.error(request, str(error))
    else:
        messages.success(
            request,
            f"Calculation of {period.label} queued. Its progress and result show "
            "under Last calculation.",
        )
    return redirect(_list_url(org_slug, period))


@login_required
@admin_required
@require_GET
def run_progress(request: HttpRequest, org_slug: str, run_id) -> HttpResponse:
    """Return the progress bar, or make htmx reload the page once the run stops."""
    run = selectors.calculation_run_get(run_id)
    if run is None:
        raise Http404("No such calculation run.")
    if request.htmx and not run.is_active:
        return HttpResponseClientRefresh()
    return render(request, "compensation/_run_progress.html", {"run": run})


@login_required
@admin_required
@require_GET
def payroll_export(request: HttpRequest, org_slug: str) -> HttpResponse:
    """Send the period's approved and paid statements as CSV, one row per rep.

    Without a period it is the current month, as in the payroll API. An
    invalid period is a 400, never a silent fall back to the current month.
    """
    value = request.GET.get("period", "")
    try:
        if value:
            dt.datetime.strptime(value, "%Y-%m")
    except ValueError:
        return HttpResponse(
            f"Invalid period {value!r}: use a month such as 2024-03.",
            status=400,
            content_type="text/plain; charset=utf-8",
        )
    period = _period(request)
    rows = payroll_rows(
        visible_member_ids(request.membership), period.start, period.end
    )
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = (
        f'attachment; filename="payroll-{period.start:%Y-%m}.csv"'
    )
    writer = csv.writer(response)
    writer.writerow(PAYROLL_COLUMNS)
    for row in rows:
        writer.writerow([spreadsheet_safe(row[name]) for name in PAYROLL_COLUMNS])
    return response


def statement_context(request: HttpRequest, statement: Statement, **extra) -> dict:
    """Return the statement page's context, with ``extra`` entries on top.

    The page itself and the failed adjustment and dispute requests render
    the same page, so each keeps the disputes and the approve button.
    """
    viewer = request.membership
    may_change = services.can_approve(viewer, statement)
    context = {
        "statement": statement,
        "lines": selectors.statement_lines(statement),
        "disputes": statement_disputes(statement),
        "can_dispute": statement.member_id == viewer.pk,
        "can_approve": may_change and statement.status == Statement.Status.DRAFT,
        "can_mark_paid": viewer.is_admin
        and statement.status == Statement.Status.APPROVED,
        "form": ManualAdjustmentForm()
        if may_change and not statement.is_locked
        else None,
        "dispute_line": "",
        "dispute_message": "",
        "dispute_message_max": MAX_MESSAGE_LENGTH,
    }
    context.update(extra)
    # A dispute form posted with a line that changed since selects no line.
    context["line_ids"] = {str(line.public_id) for line in context["lines"]}
    return context


@login_required
@require_GET
def statement_detail(request: HttpRequest, org_slug: str, statement_id) -> HttpResponse:
    statement = _statement_or_404(request, statement_id)
    context = statement_context(request, statement)
    return render(request, "compensation/statement_detail.html", context)


@login_required
@manager_required
@require_POST
def statement_adjust(request: HttpRequest, org_slug: str, statement_id) -> HttpResponse:
    viewer = request.membership
    statement = _statement_or_404(request, statement_id)
    form = ManualAdjustmentForm(request.POST)
    if form.is_valid():
        try:
            services.statement_adjust(
                statement=statement,
                amount=form.cleaned_data["amount"],
                reason=form.cleaned_data["reason"],
                editor=viewer,
                actor=request.user,
            )
        except services.StatementLockedError as error:
            # 409: the statement is final, so no form could make this succeed.
            messages.error(request, str(error))
            context = statement_context(request, statement, form=None)
            return render(
                request, "compensation/statement_detail.html", context, status=409
            )
        except services.StatementError as error:
            form.add_error(None, str(error))
        else:
            messages.success(request, "Manual adjustment added.")
            return redirect(
                "compensation:statement",
                org_slug=org_slug,
                statement_id=statement.public_id,
            )
    context = statement_context(request, statement, form=form)
    return render(request, "compensation/statement_detail.html", context, status=400)
