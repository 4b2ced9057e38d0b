"""Dashboards: the manager's team table and each member's performance page."""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET

from goals.calendar import add_months
from measurement import (
    charts,
    lead_conversion,
    progress,
    quota_details,
    selectors,
    tables,
)
from measurement.periods import (
    Period,
    PeriodForm,
    adjacent_periods,
    organization_today,
    period_from_query,
)
from measurement.selectors import MetricScope
from spm.access import (
    member_visible_or_404,
    require_manager_or_admin,
    visible_member_ids,
)
from spm.models import Membership, Team

TREND_MONTHS = 12


def _query(params: QueryDict, **changes: str) -> str:
    """Return ``?<params>`` with ``changes`` applied and empty values dropped."""
    merged = {key: params.get(key, "") for key in params}
    merged.update(changes)
    return "?" + urlencode({key: value for key, value in merged.items() if value})


def _period_links(request: HttpRequest, period: Period) -> dict:
    before, after = adjacent_periods(period, request.organization)
    # Dates of the other selector mode would override the new period.
    blank = {"on": "", "start": "", "end": ""}
    return {
        "previous_url": _query(request.GET, **{**blank, **before.query()}),
        "next_url": _query(request.GET, **{**blank, **after.query()}),
    }


def _invalid_period(request: HttpRequest, template: str, form: PeriodForm, **extra):
    context = {"form": form, "period": None, **extra}
    return render(request, template, context, status=400)


@login_required
@require_GET
def home(request: HttpRequest, org_slug: str) -> HttpResponse:
    if request.membership.role == Membership.Role.REP:
        return redirect("measurement:my-performance", org_slug=org_slug)
    return redirect("measurement:team", org_slug=org_slug)


def _selected_team(teams: list[Team], public_id: str) -> Team | None:
    """Return the team named by ``?team=``, or 404 when the viewer has no such team."""
    if not public_id:
        return None
    for team in teams:
        if str(team.public_id) == public_id:
            return team
    raise Http404("No such team.")


def _sort_headers(request: HttpRequest, sort: str, direction: str) -> list[dict]:
    headers = []
    for column in tables.COLUMNS:
        active = column.key == sort
        flipped = "asc" if active and direction == "desc" else "desc"
        if not active and not column.numeric:
            flipped = "asc"
        headers.append(
            {
                "column": column,
                "url": _query(request.GET, sort=column.key, dir=flipped),
                "direction": direction if active else "",
            }
        )
    return headers


def _team_charts(metrics: selectors.TeamMetrics) -> list[charts.Chart]:
    return [
        charts.bookings_by_rep(metrics.rows),
        charts.win_rate_by_rep(metrics.rows),
        charts.pipeline_by_stage(metrics.pipeline_by_stage),
        charts.bookings_by_month(metrics.bookings_by_month),
        charts.attainment_vs_pace(metrics.rows),
        charts.coverage_by_rep(metrics.rows),
    ]


@login_required
@require_GET
def team_dashboard(request: HttpRequest, org_slug: str) -> HttpResponse:
    require_manager_or_admin(request.membership)
    visible = visible_member_ids(request.membership)
    teams = selectors.visible_teams(visible)
    team = _selected_team(teams, request.GET.get("team", ""))
    period, form = period_from_query(request.GET, request.organization)
    if period is None:
        return _invalid_period(request, "measurement/team.html", form, teams=teams)

    metrics = selectors.team_metrics(
        member_ids=visible,
        start=period.start,
        end=period.end,
        time_zone=request.organization.zoneinfo,
        team=team,
    )
    progress.attach_progress(
        metrics.rows,
        organization=request.organization,
        start=period.start,
        end=period.end,
        today=organization_today(request.organization),
    )
    # Sorting reorders metrics.rows in place, so the charts follow the table.
    rows = metrics.rows
    sort, direction = tables.sort_rows(
        rows, request.GET.get("sort", ""), request.GET.get("dir", "")
    )
    if request.GET.get("format") == "csv":
        return tables.csv_response(rows, period)

    context = {
        "form": form,
        "period": period,
        **_period_links(request, period),
        "teams": teams,
        "team": team,
        "sort": sort,
        "direction": direction,
        "headers": _sort_headers(request, sort, direction),
        "table": [(row, tables.display_cells(row)) for row in rows],
        "team_quotas": quota_details.team_quota_lines(
            teams=teams, selected=team, rows=rows, start=period.start, end=period.end
        ),
        "charts": _team_charts(metrics),
        # The funnel reads every stage change of the period's deals, so it
        # loads in its own request and the table does not wait for it.
        "funnel_url": reverse("measurement:team-funnel", kwargs={"org_slug": org_slug})
        + _query(request.GET, sort="", dir=""),
        "lead_conversion": lead_conversion.conversion_by_band(
            MetricScope(
                [row.member.pk for row in rows],
                period.start,
                period.end,
                request.organization.zoneinfo,
            ),
            {row.member.pk: row.member.display_name for row in rows},
        ),
        "score_bands": lead_conversion.BAND_ORDER,
        "csv_url": _query(request.GET, format="csv"),
        "period_query": "?" + urlencode(period.query()),
    }
    return render(request, "measurement/team.html", context)


@login_required
@require_GET
def team_funnel(request: HttpRequest, org_slug: str) -> HttpResponse:
    """Render the team dashboard's conversion funnel for the same query.

    The dashboard loads it after the page (htmx), because it reads the
    whole stage history of the period's deals.
    """
    require_manager_or_admin(request.membership)
    visible = visible_member_ids(request.membership)
    team = _selected_team(selectors.visible_teams(visible), request.GET.get("team", ""))
    period, form = period_from_query(request.GET, request.organization)
    if period is None:
        problems = "; ".join(
            f"{field}: {' '.join(messages)}" for field, messages in form.errors.items()
        )
        return HttpResponse(f"Invalid period ({problems})", status=400)
    rows, conversion = selectors.funnel_rows(
        member_ids=visible,
        start=period.start,
        end=period.end,
        time_zone=request.organization.zoneinfo,
        team=team,
    )
    chart = charts.conversion_funnel_by_rep(conversion, rows)
    return render(request, "measurement/_chart.html", {"chart": chart})


def _member_goals(
    request: HttpRequest, member: Membership, period: Period, card: selectors.Scorecard
) -> dict:
    """Return the page's goal figures, reusing the bookings and activity counts."""
    member_progress = progress.progress_from_bookings(
        organization=request.organization,
        members=[member],
        start=period.start,
        end=period.end,
        today=organization_today(request.organization),
        bookings={member.pk: card.bookings},
        activity_counts_in_period={member.pk: card.activities},
    )[member.pk]
    quota = member_progress.quota
    reasons = quota_details.proration_reasons(member, quota, period.start, period.end)
    relief = []
    if quota is not None and quota.away_days:
        relief = quota_details.relief_lines(member, period.start, period.end)
    return {
        "progress": member_progress,
        "proration_reasons": reasons,
        "relief": relief,
        "other_quotas": quota_details.other_quota_lines(
            member, period.start, period.end, won=card.won
        ),
    }


def _member_page(request: HttpRequest, member: Membership) -> HttpResponse:
    is_self = member.pk == request.membership.pk
    period, form = period_from_query(request.GET, request.organization)
    if period is None:
        return _invalid_period(
            request, "measurement/member.html", form, member=member, is_self=is_self
        )

    time_zone = request.organization.zoneinfo
    scope = MetricScope([member.pk], period.start, period.end, time_zone)
    card = selectors.scorecards_by_member(scope)[member.pk]
    goals = _member_goals(request, member, period, card)

    # The trend covers the twelve months up to the month the period ends in.
    trend_end = add_months(period.last_day, 1)
    trend_scope = MetricScope(
        [member.pk], add_months(trend_end, -TREND_MONTHS), trend_end, time_zone
    )
    trend = selectors.scorecards_by_month(trend_scope)

    context = {
        "member": member,
        "is_self": is_self,
        "form": form,
        "period": period,
        **_period_links(request, period),
        "card": card,
        **goals,
        "activity_types": selectors.ACTIVITY_TYPES,
        "trend": trend,
        "charts": [charts.trend_bookings(trend), charts.trend_won_lost(trend)],
    }
    return render(request, "measurement/member.html", context)


@login_required
@require_GET
def my_performance(request: HttpRequest, org_slug: str) -> HttpResponse:
    return _member_page(request, request.membership)


@login_required
@require_GET
def rep_performance(request: HttpRequest, org_slug: str, member_id) -> HttpResponse:
    member = member_visible_or_404(request.membership, member_id)
    return _member_page(request, member)
