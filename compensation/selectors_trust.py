"""Reads behind the commission trust features: payroll rows, credited deals, cost.

Each function runs a fixed number of queries, whatever the number of reps
or lines.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass
from decimal import Decimal
from zoneinfo import ZoneInfo

from compensation import selectors
from compensation.models import Statement, StatementLine, StatementSnapshot
from measurement.selectors import MetricScope, bookings_by_member
from spm.models import Membership
from spm.money import round_money

ZERO = Decimal("0.00")
PAYROLL_COLUMNS = ("rep", "employee_id", "email", "amount", "currency")


def payroll_rows(
    member_ids: Collection[int], period_start: dt.date, period_end: dt.date
) -> list[dict[str, str]]:
    """Return one payroll row per approved or paid statement of the period.

    Drafts are left out because their lines can still change. One query.
    """
    rows = []
    for statement in selectors.period_statements(member_ids, period_start, period_end):
        if not statement.is_locked:
            continue
        member = statement.member
        email = member.email or (member.user.email if member.user else "")
        rows.append(
            {
                "rep": member.display_name,
                "employee_id": member.employee_id,
                "email": email,
                "amount": f"{statement.total:.2f}",
                "currency": statement.currency,
            }
        )
    return rows


# Credited-deals download.

CREDIT_COLUMNS = (
    "line",
    "kind",
    "deal",
    "credit_date",
    "component",
    "plan_version",
    "deal_amount",
    "deal_currency",
    "fx_rate",
    "fx_rate_date",
    "credit_share",
    "credited_amount",
    "rate",
    "tier",
    "formula",
    "amount",
)


def _formula(line: StatementLine) -> str:
    """Return "base x rate" for a line that is exactly that, else its explanation."""
    if line.base_amount is not None and line.rate is not None:
        return f"{line.base_amount} x {line.rate.normalize():f}"
    return line.explanation


def credit_rows(statement: Statement) -> list[dict[str, str]]:
    """Return one row per statement line, with the inputs that compute it.

    The deal amount, its currency and the exchange rate come from the run
    that last calculated the statement. Two queries.
    """
    snapshot = (
        StatementSnapshot.objects.filter(statement=statement)
        .order_by("-created_at", "-id")
        .first()
    )
    deals = {entry["deal_id"]: entry for entry in snapshot.deals} if snapshot else {}
    rows = []
    for number, line in enumerate(selectors.statement_lines(statement), start=1):
        deal = deals.get(line.deal_id, {})
        rows.append(
            {
                "line": str(number),
                "kind": line.line_type or line.kind,
                "deal": line.deal_name,
                "credit_date": f"{line.credit_date:%Y-%m-%d}"
                if line.credit_date
                else "",
                "component": line.component_name,
                "plan_version": line.plan_version_label,
                "deal_amount": deal.get("deal_amount") or "",
                "deal_currency": deal.get("deal_currency") or "",
                "fx_rate": deal.get("fx_rate") or "",
                "fx_rate_date": deal.get("fx_rate_date") or "",
                "credit_share": _plain(line.credit_share),
                "credited_amount": _plain(line.base_amount),
                "rate": _plain(line.rate),
                "tier": line.tier,
                "formula": _formula(line),
                "amount": f"{line.amount:.2f}",
            }
        )
    return rows


def _plain(value: Decimal | None) -> str:
    return "" if value is None else f"{value.normalize():f}"


# Cost of commission.


@dataclass
class TeamCost:
    """A team's commission and bookings in a period, in the organisation's currency."""

    team: str
    reps: int = 0
    commission: Decimal = ZERO
    bookings: Decimal = ZERO
    draft_statements: int = 0
    other_currency: bool = False

    @property
    def share(self) -> Decimal | None:
        """Commission as a fraction of bookings; None with no bookings."""
        if self.other_currency or self.bookings <= 0:
            return None
        return self.commission / self.bookings

    @property
    def share_percent(self) -> str:
        """The share as a percent with two decimals, such as "7.50%", or ""."""
        share = self.share
        return "" if share is None else f"{round_money(share * 100)}%"


def cost_of_commission(
    member_ids: Collection[int],
    start: dt.date,
    end: dt.date,
    time_zone: ZoneInfo,
    currency: str,
) -> tuple[list[TeamCost], TeamCost]:
    """Return each team's commission over bookings for ``[start, end)``, and the sum.

    Commission is the total of the members' statements of exactly that
    period, drafts included. Bookings are measurement's credited bookings.
    A team with a statement in a currency other than ``currency`` gets no
    share, because no exchange rate is applied here. Five queries.
    """
    members = list(
        Membership.objects.filter(pk__in=list(member_ids)).select_related("team")
    )
    team_of = {m.pk: (m.team.name if m.team else "No team") for m in members}
    teams: dict[str, TeamCost] = {}
    reps: dict[str, set[int]] = defaultdict(set)

    def team(member_id: int) -> TeamCost:
        name = team_of[member_id]
        return teams.setdefault(name, TeamCost(name))

    statements = Statement.objects.filter(
        member_id__in=team_of, period_start=start, period_end=end
    ).values_list("member_id", "total", "currency", "status")
    for member_id, total, statement_currency, status in statements:
        row = team(member_id)
        reps[row.team].add(member_id)
        row.commission += total
        row.draft_statements += status == Statement.Status.DRAFT
        row.other_currency |= statement_currency != currency
    scope = MetricScope(
        member_ids=list(team_of), start=start, end=end, time_zone=time_zone
    )
    for member_id, amount in bookings_by_member(scope).items():
        if member_id in team_of:
            row = team(member_id)
            reps[row.team].add(member_id)
            row.bookings += amount
    rows = sorted(teams.values(), key=lambda row: row.team)
    total = TeamCost("All teams")
    for row in rows:
        row.reps = len(reps[row.team])
        total.reps += row.reps
        total.commission += row.commission
        total.bookings += row.bookings
        total.draft_statements += row.draft_statements
        total.other_currency |= row.other_currency
    return rows, total
