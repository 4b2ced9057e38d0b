"""Deterministic, realistic CRM data for one organisation.

``generate_organization_data`` fills an empty organisation with a sales team:
a head of sales, and one manager per team of about five reps. It adds a
seven-stage pipeline, accounts and contacts, and deals with their stage
history, product lines and split credits. Activities and inbound leads come
last. The demo command and the benchmarks use it.

The same arguments give the same data: every random choice comes from one
``random.Random(seed)`` in a fixed order, and every date is counted from the
``today`` argument. Events fall on days before ``today``, so nothing is in the
future. Public ids (UUIDs) and primary keys differ between runs.
"""

from __future__ import annotations

import datetime as dt
import random
import time
from dataclasses import dataclass

from django.db import transaction

from activity.generator.activities import (
    create_activities,
    create_leads,
    lead_activities,
)
from activity.generator.context import Run, months_before
from activity.generator.crm import create_accounts, create_pipeline, create_products
from activity.generator.deals import create_deals
from activity.generator.people import create_sales_organization
from activity.models import Deal, Pipeline
from spm.models import Membership, Organization
from spm.tenancy import tenant_context

__all__ = ["GeneratedSummary", "generate_organization_data"]


@dataclass(frozen=True)
class GeneratedSummary:
    """The memberships a caller may link logins to, and what was created."""

    organization: Organization
    head: Membership
    managers: list[Membership]
    reps: list[Membership]
    teams: int
    accounts: int
    contacts: int
    deals: int
    won: int
    lost: int
    open: int
    stage_changes: int
    splits: int
    activities: int
    leads: int
    seconds: float


def generate_organization_data(
    *,
    organization: Organization,
    today: dt.date,
    reps: int = 12,
    deals: int = 2500,
    activities: int = 30_000,
    leads: int = 500,
    accounts: int | None = None,
    months: int = 24,
    seed: int = 7,
) -> GeneratedSummary:
    """Fill ``organization``, which must have no pipeline or deal yet.

    ``months`` is the span of deal creation dates before ``today``, and
    ``accounts`` defaults to one account per five deals (at least ten).
    Everything is written in one transaction, so a failure leaves no rows.
    """
    started = time.perf_counter()
    run = Run(
        organization=organization,
        rng=random.Random(seed),
        zone=organization.zoneinfo,
        first_day=months_before(today, months),
        last_day=today - dt.timedelta(days=1),
    )
    with tenant_context(organization), transaction.atomic():
        _check_empty(organization)
        sales = create_sales_organization(run, reps=reps)
        pipeline, stages = create_pipeline(run)
        products = create_products(run)
        account_infos, companies = create_accounts(
            run, sales.reps, accounts or max(10, deals // 5)
        )
        deal_totals = create_deals(
            run,
            reps=sales.reps,
            accounts=account_infos,
            pipeline=pipeline,
            stages=stages,
            products=products,
            count=deals,
        )
        lead_plans = create_leads(run, sales.reps, companies, leads)
        activity_count = create_activities(
            run,
            reps=sales.reps,
            accounts=account_infos,
            deals_by_rep=deal_totals.by_rep,
            lead_rows=lead_activities(run, lead_plans),
            count=activities,
        )
    return GeneratedSummary(
        organization=organization,
        head=sales.head,
        managers=sales.managers,
        reps=[rep.membership for rep in sales.reps],
        teams=len(sales.teams),
        accounts=len(account_infos),
        contacts=sum(len(a.contact_ids) for a in account_infos),
        deals=deals,
        won=deal_totals.won,
        lost=deal_totals.lost,
        open=deal_totals.open,
        stage_changes=deal_totals.stage_changes,
        splits=deal_totals.splits,
        activities=activity_count,
        leads=leads,
        seconds=time.perf_counter() - started,
    )


def _check_empty(organization: Organization) -> None:
    if Pipeline.objects.exists() or Deal.objects.exists():
        raise ValueError(
            f"Organisation {organization.slug!r} already has a pipeline or deals: "
            "generate data only into an empty organisation."
        )
