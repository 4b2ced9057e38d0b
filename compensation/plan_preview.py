"""Draft preview: what a draft version would pay, beside the published version.

The preview runs the engine on a past period's credited deals as the
statement calculation does (compensation.services.calculate_statement), but
with one version of one plan applied to the whole period, and it writes
nothing. Draws and the member's other plans are left out, so the two
payouts differ only by the plan terms.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from compensation import selectors
from compensation.engine import Assignment, CalculationError, Payee, calculate_periods
from compensation.models import PlanAssignment, PlanVersion

# The flow below mirrors calculate_statement step by step, so it reuses the
# same loading helpers instead of a second copy of them.
from compensation.services import (
    _credits_by_basis,
    _fx_rates,
    _history_start,
    _periods,
    _plan_terms,
    _quotas,
    _split_by_member,
)
from goals.calendar import DateRange
from spm.models import Membership
from spm.tenancy import get_current_organization


@dataclass(frozen=True)
class PreviewRow:
    member: Membership
    draft_total: Decimal | None
    published_total: Decimal | None
    currency: str
    error: str = ""

    @property
    def difference(self) -> Decimal | None:
        if self.draft_total is None or self.published_total is None:
            return None
        return self.draft_total - self.published_total


def _whole_period(version: PlanVersion):
    """Return the version's terms, in effect on every day the calculation reads."""
    return dataclasses.replace(_plan_terms(version), effective_from=dt.date.min)


def _assignments(
    rows: list[PlanAssignment], version: PlanVersion, period: DateRange
) -> list[Assignment]:
    terms = (_whole_period(version),)
    if not rows:
        # A rep chosen by hand who is not on the plan: preview as if assigned
        # for the whole period, with no target incentive.
        return [Assignment(start=period.start, end=None, versions=terms)]
    return [
        Assignment(
            start=row.start_date,
            end=row.end_date,
            versions=terms,
            target_incentive=row.target_incentive,
            id=row.pk,
        )
        for row in rows
    ]


def _payout(
    member: Membership, period: DateRange, assignments: list[Assignment]
) -> Decimal:
    organization = get_current_organization()
    terms = [t for a in assignments for t in a.versions]
    periods = _periods(period, _history_start(period, assignments, [], None))
    tree = []
    if any(c.kind == "override" for t in terms for c in t.components):
        tree = selectors.reporting_tree(member.pk)
    member_ids = {member.pk} | {pk for pk, _, _ in tree}
    deals, cancellations = selectors.won_deals(
        member_ids, periods[0][0], period.end, organization.time_zone
    )
    rates = _fx_rates(deals, terms, organization, periods[0][0], period.end)
    credits = _credits_by_basis(deals, terms, rates, organization)
    own_credits, team = _split_by_member(credits, member.pk, tree)
    payee = Payee(
        member_id=member.pk,
        name=str(member),
        assignments=tuple(assignments),
        credits=own_credits,
        team=team,
        quotas=_quotas(member, assignments, periods),
        cancellations=cancellations,
    )
    # NOTE: plans paid on payment read no payments here, so the preview shows
    # what such a plan earns at close, not what it releases in the period.
    return calculate_periods(payee, periods)[-1].earned


def preview_members(
    version: PlanVersion, period: DateRange, member: Membership | None
) -> tuple[list[Membership], dict[int, list[PlanAssignment]]]:
    """Return the members to preview and their assignments to the plan in ``period``.

    Without ``member``: everyone assigned to the plan on any day of the
    period. Two queries.
    """
    rows = PlanAssignment.objects.filter(
        plan_id=version.plan_id, start_date__lt=period.end
    ).exclude(end_date__lt=period.start)
    if member is not None:
        rows = rows.filter(member=member)
    by_member: dict[int, list[PlanAssignment]] = {}
    members: dict[int, Membership] = {}
    for row in rows.select_related("member").order_by("member__display_name", "id"):
        by_member.setdefault(row.member_id, []).append(row)
        members[row.member_id] = row.member
    if member is not None:
        members = {member.pk: member}
    return list(members.values()), by_member


def _safe_payout(member, period, version, rows) -> tuple[Decimal | None, str]:
    try:
        return _payout(member, period, _assignments(rows, version, period)), ""
    except CalculationError as error:
        return None, f"{version.label}: {error}"


def draft_preview(
    *,
    draft: PlanVersion,
    published: PlanVersion | None,
    period: DateRange,
    member: Membership | None = None,
) -> list[PreviewRow]:
    """Calculate each member's payout under ``draft`` and ``published``, in memory.

    A member whose data the engine rejects (a missing quota or exchange
    rate) gets the engine's message instead of a number.
    """
    members, rows = preview_members(draft, period, member)
    preview = []
    for person in members:
        person_rows = rows.get(person.pk, [])
        draft_total, draft_error = _safe_payout(person, period, draft, person_rows)
        published_total, published_error = None, ""
        if published is not None:
            published_total, published_error = _safe_payout(
                person, period, published, person_rows
            )
        preview.append(
            PreviewRow(
                member=person,
                draft_total=draft_total,
                published_total=published_total,
                currency=draft.plan.currency,
                error="; ".join(e for e in (draft_error, published_error) if e),
            )
        )
    return preview
