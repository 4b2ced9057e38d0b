"""Inbound leads and the activities reps log on leads, deals and accounts."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterator
from dataclasses import dataclass, field

from activity.generator import catalog
from activity.generator.context import (
    Run,
    cumulative,
    insert,
    insert_stream,
    weekday_on_or_after,
)
from activity.generator.crm import AccountInfo
from activity.generator.deals import DealRef
from activity.generator.people import SOURCE, RepProfile
from activity.models import Activity, Lead

# Leads arrive over the last year of the span, on any day, from 7:00 to 22:00.
LEAD_DAYS = 365
LEAD_FIRST_HOUR, LEAD_LAST_HOUR = 7, 21
# Leads created this close to the end of the span may still be untouched,
# and this share of them is not assigned yet.
RECENT_LEAD_DAYS = 2
UNASSIGNED_RECENT_SHARE = 0.2
# Share of activities on a rep's deals. The rest prospect the rep's accounts.
DEAL_ACTIVITY_SHARE = 0.85
# Status of a lead that was worked, with relative weights.
WORKED_STATUSES = [
    (Lead.Status.WORKING, 25),
    (Lead.Status.QUALIFIED, 25),
    (Lead.Status.DISQUALIFIED, 30),
    (Lead.Status.CONVERTED, 20),
]


@dataclass
class LeadPlan:
    lead: Lead
    rep: RepProfile | None
    # (activity type, time) of each touch, the first being the response.
    touches: list[tuple[str, dt.datetime]] = field(default_factory=list)


def create_leads(
    run: Run, reps: list[RepProfile], companies: list[tuple[str, str]], count: int
) -> list[LeadPlan]:
    """Create ``count`` inbound leads, assigned to reps and worked by them."""
    sources, source_weights = zip(*catalog.LEAD_SOURCES, strict=True)
    countries, country_weights = zip(*catalog.COUNTRIES, strict=True)
    source_cumulative = cumulative(source_weights)
    country_cumulative = cumulative(country_weights)
    plans = []
    for number in range(1, count + 1):
        first = run.rng.choice(catalog.FIRST_NAMES)
        last = run.rng.choice(catalog.LAST_NAMES)
        company, domain = companies[(number - 1) % len(companies)]
        lead = Lead(
            organization=run.organization,
            first_name=first,
            last_name=last,
            email=f"{first}.{last}@{domain}".lower(),
            company=company,
            country=run.weighted(countries, country_cumulative),
            source=run.weighted(sources, source_cumulative),
            created_at=_lead_created_at(run),
            external_source=SOURCE,
            external_id=f"L{number:07d}",
        )
        plans.append(_work_lead(run, lead, reps))
    insert(Lead, [plan.lead for plan in plans])
    return plans


def _lead_created_at(run: Run) -> dt.datetime:
    first = max(run.first_day, run.last_day - dt.timedelta(days=LEAD_DAYS - 1))
    day = first + dt.timedelta(days=run.rng.randint(0, (run.last_day - first).days))
    return dt.datetime(
        day.year,
        day.month,
        day.day,
        run.rng.randint(LEAD_FIRST_HOUR, LEAD_LAST_HOUR),
        run.rng.randrange(60),
        tzinfo=run.zone,
    )


def _work_lead(run: Run, lead: Lead, reps: list[RepProfile]) -> LeadPlan:
    """Assign the lead, then plan its touches and set its status from them."""
    rng = run.rng
    recent = lead.created_at.date() > run.last_day - dt.timedelta(RECENT_LEAD_DAYS)
    if recent and rng.random() < UNASSIGNED_RECENT_SHARE:
        return LeadPlan(lead, None)

    rep = rng.choice(reps)
    lead.owner = rep.membership
    # Routing takes seconds to a few minutes.
    lead.assigned_at = lead.created_at + dt.timedelta(seconds=rng.randint(5, 300))
    delay = rng.lognormvariate(math.log(rep.response_minutes), 1.0)
    response = run.next_working_time(lead.assigned_at + dt.timedelta(minutes=delay))
    if response.date() > run.last_day:
        return LeadPlan(lead, rep)

    plan = LeadPlan(lead, rep, [(rng.choice(("call", "email")), response)])
    kinds, weights = _kinds(catalog.LEAD_FOLLOW_UP_WEIGHTS)
    for _ in range(rng.choice((0, 1, 1, 2))):
        later = plan.touches[-1][1].date() + dt.timedelta(days=rng.randint(1, 5))
        later = weekday_on_or_after(later)
        if later > run.last_day:
            break
        plan.touches.append((run.weighted(kinds, weights), run.working_time(later)))
    _set_worked_status(run, plan)
    return plan


def _set_worked_status(run: Run, plan: LeadPlan) -> None:
    statuses, weights = zip(*WORKED_STATUSES, strict=True)
    lead = plan.lead
    lead.status = run.rng.choices(statuses, weights)[0]
    if lead.status != Lead.Status.CONVERTED:
        return
    last_touch = plan.touches[-1][1]
    converted_on = weekday_on_or_after(
        last_touch.date() + dt.timedelta(days=run.rng.randint(1, 10))
    )
    if converted_on > run.last_day:
        lead.status = Lead.Status.QUALIFIED
    else:
        lead.converted_at = run.working_time(converted_on)


def lead_activities(run: Run, plans: list[LeadPlan]) -> list[Activity]:
    """Return (unsaved) the activities of every touch on the leads."""
    rows = []
    for plan in plans:
        for kind, moment in plan.touches:
            rows.append(
                Activity(
                    organization=run.organization,
                    type=kind,
                    subject=run.rng.choice(catalog.SUBJECTS[kind]),
                    occurred_at=moment,
                    owner=plan.rep.membership,
                    lead=plan.lead,
                )
            )
    return rows


def create_activities(
    run: Run,
    *,
    reps: list[RepProfile],
    accounts: list[AccountInfo],
    deals_by_rep: dict[int, list[DealRef]],
    lead_rows: list[Activity],
    count: int,
) -> int:
    """Create the lead activities, then more on deals and accounts up to ``count``.

    Returns the number created, which is more than ``count`` only when the
    lead touches alone are more.
    """
    remaining = max(count - len(lead_rows), 0)
    rows = _deal_and_account_activities(run, reps, accounts, deals_by_rep, remaining)
    return insert_stream(Activity, _numbered(lead_rows, rows))


def _numbered(first: list[Activity], rest: Iterator[Activity]) -> Iterator[Activity]:
    number = 0
    for source in (first, rest):
        for activity in source:
            number += 1
            activity.external_source = SOURCE
            activity.external_id = f"A{number:08d}"
            yield activity


def _deal_and_account_activities(
    run: Run,
    reps: list[RepProfile],
    accounts: list[AccountInfo],
    deals_by_rep: dict[int, list[DealRef]],
    count: int,
) -> Iterator[Activity]:
    rng = run.rng
    rep_cumulative = cumulative(rep.activity_factor * rep.capacity for rep in reps)
    deal_kinds, deal_weights = _kinds(catalog.DEAL_ACTIVITY_WEIGHTS)
    prospect_kinds, prospect_weights = _kinds(catalog.PROSPECTING_ACTIVITY_WEIGHTS)
    for _ in range(count):
        rep = run.weighted(reps, rep_cumulative)
        deals = deals_by_rep[rep.membership.pk]
        if deals and rng.random() < DEAL_ACTIVITY_SHARE:
            deal = rng.choice(deals)
            day = run.day_between(deal.created_on, deal.last_active_day)
            account = accounts[deal.account_index]
            kind = run.weighted(deal_kinds, deal_weights)
            deal_id = deal.pk
        else:
            account = accounts[rng.choice(rep.account_indexes or range(len(accounts)))]
            day = run.day_between(run.first_day, run.last_day)
            kind = run.weighted(prospect_kinds, prospect_weights)
            deal_id = None
        contact_id = None
        if account.contact_ids and rng.random() < 0.6:
            contact_id = rng.choice(account.contact_ids)
        yield Activity(
            organization=run.organization,
            type=kind,
            subject=rng.choice(catalog.SUBJECTS[kind]),
            occurred_at=run.working_time(day),
            owner=rep.membership,
            deal_id=deal_id,
            account_id=account.pk,
            contact_id=contact_id,
        )


def _kinds(weights: dict[str, int]) -> tuple[list[str], list[float]]:
    return list(weights), cumulative(weights.values())
