"""Pages that let reps and managers check pay: payout changes, credited deals,
the what-if estimator, cost of commission and the reassigned-lead rule.
"""

from __future__ import annotations

import csv
import logging
from decimal import Decimal

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from compensation import (
    payout_diff,
    selectors,
    selectors_trust,
    services_crediting,
    whatif,
)
from compensation.engine.types import CalculationError
from compensation.forms_trust import CreditingPolicyForm
from compensation.models import StatementLine
from compensation.views import (
    _period,
    _statement_or_404,
    manager_required,
)
from spm.access import admin_required, visible_member_ids
from spm.spreadsheet import spreadsheet_safe

logger = logging.getLogger(__name__)


@login_required
@require_GET
def payout_changes(request: HttpRequest, org_slug: str, statement_id) -> HttpResponse:
    """Compare two calculation runs of a statement: ``?from=`` and ``?to=`` run ids.

    Without them, the last two runs are compared.
    """
    statement = _statement_or_404(request, statement_id)
    snapshots = payout_diff.snapshots_of(statement)
    by_run = {str(snapshot.run.public_id): snapshot for snapshot in snapshots}
    before = by_run.get(request.GET.get("from", ""))
    after = by_run.get(request.GET.get("to", ""))
    unknown = [
        request.GET[key]
        for key, found in (("from", before), ("to", after))
        if request.GET.get(key) and found is None
    ]
    if unknown:
        logger.info(
            "Payout changes of statement %s: unknown run ids %s",
            statement.public_id,
            unknown,
        )
        messages.error(
            request,
            f"No calculation run {', '.join(repr(value) for value in unknown)} of "
            "this statement; comparing its last two runs instead.",
        )
    elif (before is None) != (after is None):
        # One known run alone cannot be compared, so the message names the other.
        missing = "to" if after is None else "from"
        logger.info(
            "Payout changes of statement %s: no %r run id", statement.public_id, missing
        )
        messages.error(
            request,
            f"Choose both runs to compare: the {missing!r} run is missing, so "
            "the last two runs are compared instead.",
        )
    if before is None or after is None:
        if len(snapshots) < 2:
            before = after = None
        else:
            before, after = snapshots[-2], snapshots[-1]
    zone = request.organization.time_zone
    # Manual and adjustment lines belong to no run, so no comparison shows them.
    added = [
        line
        for line in selectors.statement_lines(statement)
        if line.kind != StatementLine.Kind.NORMAL
    ]
    context = {
        "statement": statement,
        "snapshots": [(s, payout_diff.run_label(s, zone)) for s in snapshots],
        "comparison": payout_diff.compare(before, after) if before else None,
        "before_label": payout_diff.run_label(before, zone) if before else "",
        "after_label": payout_diff.run_label(after, zone) if after else "",
        "added_lines": added,
        "added_total": sum((line.amount for line in added), Decimal("0.00")),
    }
    return render(request, "compensation/payout_changes.html", context)


@login_required
@require_GET
def credits_csv(request: HttpRequest, org_slug: str, statement_id) -> HttpResponse:
    """Send the statement's lines as CSV, with the inputs and formula of each."""
    statement = _statement_or_404(request, statement_id)
    rows = selectors_trust.credit_rows(statement)
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = (
        f'attachment; filename="credits-{statement.period_start:%Y-%m}.csv"'
    )
    writer = csv.writer(response)
    writer.writerow(selectors_trust.CREDIT_COLUMNS)
    for row in rows:
        writer.writerow(
            [spreadsheet_safe(row[name]) for name in selectors_trust.CREDIT_COLUMNS]
        )
    total_row = [""] * len(selectors_trust.CREDIT_COLUMNS)
    total_row[0], total_row[-1] = "total", f"{statement.total:.2f}"
    writer.writerow(total_row)
    return response


@login_required
@require_GET
def whatif_estimate(request: HttpRequest, org_slug: str) -> HttpResponse:
    """Project this period's earnings with the ticked open deals won.

    ``?deal=<public id>`` may repeat. htmx requests get the card alone, which
    My commission loads after the page.
    """
    member = request.membership
    period = _period(request)
    open_deals = whatif.open_deals_closing(member, period)
    chosen_ids = set(request.GET.getlist("deal"))
    chosen = [deal for deal in open_deals if str(deal.public_id) in chosen_ids]
    context = {"period": period, "open_deals": open_deals, "chosen_ids": chosen_ids}
    try:
        estimate = whatif.estimate(member, period, chosen)
        everything = estimate.projected
        if len(chosen) != len(open_deals):
            everything = whatif.estimate(member, period, open_deals).projected
        context["estimate"] = estimate
        context["nudges"] = whatif.nudges(
            member, period, estimate.current, open_deals, everything
        )
    except CalculationError as error:
        context["error"] = str(error)
    template = (
        "compensation/_whatif.html" if request.htmx else "compensation/whatif.html"
    )
    return render(request, template, context)


@login_required
@manager_required
@require_GET
def cost_of_commission(request: HttpRequest, org_slug: str) -> HttpResponse:
    viewer = request.membership
    period = _period(request)
    organization = request.organization
    rows, total = selectors_trust.cost_of_commission(
        visible_member_ids(viewer),
        period.start,
        period.end,
        organization.zoneinfo,
        organization.currency,
    )
    context = {"period": period, "rows": rows, "total": total}
    return render(request, "compensation/cost.html", context)


@login_required
@admin_required
@require_http_methods(["GET", "POST"])
def crediting_policy(request: HttpRequest, org_slug: str) -> HttpResponse:
    policy = services_crediting.crediting_policy_get()
    if request.method == "GET":
        form = CreditingPolicyForm(
            initial={
                "reassigned_lead_rule": policy.reassigned_lead_rule,
                "first_owner_percent": policy.first_owner_percent,
            }
        )
        return render(request, "compensation/crediting_policy.html", {"form": form})
    form = CreditingPolicyForm(request.POST)
    if not form.is_valid():
        return render(
            request, "compensation/crediting_policy.html", {"form": form}, status=400
        )
    services_crediting.crediting_policy_update(
        organization=request.organization,
        rule=form.cleaned_data["reassigned_lead_rule"],
        first_owner_percent=form.cleaned_data["first_owner_percent"],
        actor=request.user,
    )
    messages.success(
        request, "Crediting rule saved. The next calculation run applies it."
    )
    return redirect("compensation:crediting-policy", org_slug=org_slug)
