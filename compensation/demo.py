"""A commission plan for a generated organisation, and statements to review.

Every rep goes on one published plan: a flat rate on bookings, plus a
marginal accelerator on the part of the month's bookings above quota. The
quota is the rep's quarterly bookings quota from goals/demo.py, prorated to
the month. Statements are calculated for the last complete month, which
the admin approves so payroll has rows, and for the current month, which
stays a draft with one open dispute.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from compensation.models import CompPlan, Statement
from compensation.selectors import statement_lines
from compensation.services_disputes import dispute_line, dispute_raise
from compensation.services_plans import (
    plan_assignment_create,
    plan_component_save,
    plan_create,
    plan_version_publish,
)
from compensation.services_statements import statement_approve, statements_calculate
from goals.calendar import add_months, month_range
from spm.models import Membership, Organization, User

PLAN_NAME = "Account Executive plan"
# The plan starts this many months before the current one, so the plan page
# and the statements of earlier months have terms to show.
PLAN_HISTORY_MONTHS = 12
TARGET_INCENTIVE = Decimal(60_000)
COMPONENTS = [
    {
        "name": "Base commission",
        "kind": "flat",
        "order": 1,
        "params": {"rate": "0.06"},
    },
    {
        "name": "Accelerator",
        "kind": "tiered",
        "order": 2,
        "params": {
            "basis": "attainment",
            "mode": "marginal",
            "tiers": [
                {"from": "0", "to": "100", "rate": "0"},
                {"from": "100", "to": "150", "rate": "0.04"},
                {"from": "150", "rate": "0.08"},
            ],
        },
    },
]
DISPUTE_MESSAGE = (
    "I co-sold this deal with the partner team, and I expected the full "
    "credit on it. Could you check the split?"
)


@dataclass(frozen=True)
class DemoStatements:
    approved: int
    drafts: int
    disputes: int


def create_demo_plan(
    *,
    organization: Organization,
    actor: User,
    reps: list[Membership],
    today: dt.date,
) -> CompPlan:
    """Create and publish the plan, and assign every rep to it.

    Call it inside the organisation's tenant context.
    """
    start = add_months(today, -PLAN_HISTORY_MONTHS)
    plan = plan_create(
        organization=organization,
        actor=actor,
        name=PLAN_NAME,
        currency=organization.currency,
        description="6% of bookings, plus 4% above quota and 8% above 150%.",
        effective_from=start,
    )
    version = plan.versions.get()
    for values in COMPONENTS:
        plan_component_save(version=version, component=None, actor=actor, values=values)
    plan_version_publish(version=version, actor=actor)
    for rep in reps:
        plan_assignment_create(
            plan=plan,
            member=rep,
            actor=actor,
            start_date=start,
            end_date=None,
            target_incentive=TARGET_INCENTIVE,
        )
    return plan


def create_demo_statements(
    *, organization: Organization, admin: Membership, today: dt.date
) -> DemoStatements:
    """Calculate last month's and this month's statements, and review last month's.

    Call it inside the organisation's tenant context, after
    ``create_demo_plan``.
    """
    last_month = month_range(add_months(today, -1))
    this_month = month_range(today)
    for period in (last_month, this_month):
        statements_calculate(organization=organization, period=period, actor=admin.user)

    approved = 0
    for statement in Statement.objects.filter(
        period_start=last_month.start, status=Statement.Status.DRAFT
    ).order_by("id"):
        statement_approve(statement=statement, approver=admin, actor=admin.user)
        approved += 1

    drafts = Statement.objects.filter(
        period_start=this_month.start, status=Statement.Status.DRAFT
    ).order_by("member__external_id", "id")
    disputes = 0
    # The first draft with a line on a deal, in the order of the reps' ids.
    for statement in drafts.select_related("member"):
        deal_line = next(
            (line for line in statement_lines(statement) if line.deal_id), None
        )
        if deal_line is None:
            continue
        dispute_raise(
            statement=statement,
            line=dispute_line(statement, deal_line.public_id),
            raiser=statement.member,
            body=DISPUTE_MESSAGE,
        )
        disputes = 1
        break
    return DemoStatements(approved=approved, drafts=drafts.count(), disputes=disputes)
