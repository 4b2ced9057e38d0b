"""The rows that statement calculation reads, loaded once for many members.

``compensation.services.calculate_statements`` calculates the statements of
several members from one load: assignments, published versions, draws, the
reporting tree, won deals, exchange rates, payments and quotas each take a
fixed number of queries, whatever the number of members. Each member then
gets exactly the inputs ``calculate_statement`` would read for them alone:
their own history window, their deals and their reports' deals, and the
same errors.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from compensation import selectors, services
from compensation.crediting import DealInput, FxRates, credit_deal, rate_date
from compensation.engine import (
    Assignment,
    CalculationError,
    Credit,
    DrawTerms,
    FxRateDate,
    PayoutTiming,
    PlanTerms,
    Statement,
)
from compensation.models import PlanVersion
from goals.calendar import DateRange
from goals.selectors import member_quotas
from spm.models import Membership, Organization


@dataclass
class MemberPlan:
    """One member's plans and draws, and the periods their statement depends on."""

    member: Membership
    assignments: list[Assignment]
    draws: list[DrawTerms]
    terms: list[PlanTerms]
    on_payment: bool
    periods: list[tuple[dt.date, dt.date]] = field(default_factory=list)
    # (member id, name, depth) of the reporting tree, when a plan has overrides.
    tree: list[tuple[int, str, int]] = field(default_factory=list)
    # The won deals of the member and their tree from ``first_day`` on, with
    # the extra deals of the call, and the cancellations among them.
    deals: list[DealInput] = field(default_factory=list)
    cancellations: dict[int, dt.date] = field(default_factory=dict)

    @property
    def first_day(self) -> dt.date:
        return self.periods[0][0]

    @property
    def member_ids(self) -> set[int]:
        return {self.member.pk} | {pk for pk, _, _ in self.tree}

    @property
    def has_override(self) -> bool:
        return any(c.kind == "override" for t in self.terms for c in t.components)


def _terms_of(
    version: PlanVersion, cache: dict[int, PlanTerms | CalculationError]
) -> PlanTerms:
    """Return the version's terms, parsed once per load. Raises CalculationError."""
    if version.pk not in cache:
        try:
            cache[version.pk] = services._plan_terms(version)
        except CalculationError as error:
            cache[version.pk] = error
    terms = cache[version.pk]
    if isinstance(terms, CalculationError):
        raise terms
    return terms


def _draw_terms(draw) -> DrawTerms:
    return DrawTerms(
        amount=draw.amount,
        currency=draw.currency,
        recoverable=draw.recoverable,
        start=draw.start_date,
        end=draw.end_date,
        id=draw.pk,
    )


def member_plans(
    members: Sequence[Membership],
    period: DateRange,
    errors: dict[int, Statement | CalculationError],
) -> list[MemberPlan]:
    """Load the members' plans and draws, and work out each one's periods.

    A member whose plans cannot be read gets their CalculationError in
    ``errors`` and is left out. Three to six queries.
    """
    member_ids = [member.pk for member in members]
    rows_by_member = selectors.assignments_by_member(member_ids, period.end)
    plan_ids = {row.plan_id for rows in rows_by_member.values() for row in rows}
    versions = selectors.published_versions(plan_ids) if plan_ids else {}
    draws_by_member = selectors.draws_by_member(member_ids)
    cache: dict[int, PlanTerms | CalculationError] = {}
    plans = []
    for member in members:
        try:
            assignments = [
                services._assignment(
                    row,
                    versions.get(row.plan_id, []),
                    member,
                    lambda version: _terms_of(version, cache),
                )
                for row in rows_by_member.get(member.pk, [])
            ]
        except CalculationError as error:
            errors[member.pk] = error
            continue
        terms = services._all_terms(assignments)
        plans.append(
            MemberPlan(
                member=member,
                assignments=assignments,
                draws=[_draw_terms(d) for d in draws_by_member.get(member.pk, [])],
                terms=terms,
                on_payment=any(t.payout_timing != PayoutTiming.AT_CLOSE for t in terms),
            )
        )

    # How far back the periods that carry into each statement go.
    paying = [plan.member.pk for plan in plans if plan.on_payment]
    earliest_paid_close = {}
    if paying:
        earliest_paid_close = selectors.earliest_close_of_paid_deals_by_member(
            paying, period.start, period.end
        )
    for plan in plans:
        history_start = services._history_start(
            period,
            plan.assignments,
            plan.draws,
            earliest_paid_close.get(plan.member.pk),
        )
        plan.periods = services._periods(period, history_start)

    if any(plan.has_override for plan in plans):
        children = selectors.reports_to_map()
        for plan in plans:
            if plan.has_override:
                plan.tree = selectors.reporting_tree(plan.member.pk, children)
    return plans


@dataclass
class Inputs:
    """The deals, rates, payments and quotas of every member of a load."""

    rates: FxRates
    payments: selectors.DealPayments
    quota_figures: services.QuotaFigures
    # Credits of one deal under one credit basis, or the error crediting
    # raised, shared by every member whose statement counts the deal.
    credit_cache: dict = field(default_factory=dict)

    @staticmethod
    def rates_needed(
        deals: list[DealInput], terms: list[PlanTerms], organization: Organization
    ) -> bool:
        """Return whether ``calculate_statement`` would load rates for these."""
        sources = {deal.currency or organization.currency for deal in deals}
        targets = {t.currency for t in terms}
        return bool(sources - targets) or len(targets) > 1

    def credits_by_basis(
        self,
        deals: list[DealInput],
        terms: list[PlanTerms],
        rates: FxRates,
        organization: Organization,
    ) -> dict[tuple[str, str], list[Credit]]:
        """Credit the deals under each basis, as ``services._credits_by_basis``.

        Each deal is credited once per basis for all members. That is safe
        because the rates of a load cover every member's rates, and a rate
        is found only on its exact pair and day.
        """
        credits = {}
        for basis in sorted({t.credit_basis for t in terms}):
            currency, fx_rate_date = basis
            basis_credits = []
            for deal in deals:
                key = (id(deal), basis)
                found = self.credit_cache.get(key)
                if found is None:
                    try:
                        found = credit_deal(
                            deal,
                            currency=currency,
                            rates=rates,
                            time_zone=organization.time_zone,
                            default_currency=organization.currency,
                            fx_rate_date=fx_rate_date,
                        )
                    except CalculationError as error:
                        found = error
                    self.credit_cache[key] = found
                if isinstance(found, CalculationError):
                    raise found
                basis_credits.extend(found)
            credits[basis] = basis_credits
        return credits


def load_inputs(
    plans: list[MemberPlan],
    period: DateRange,
    organization: Organization,
    extra_deals: Sequence[DealInput] = (),
) -> Inputs:
    """Load the deals, rates, payments and quotas of the members' statements.

    Two queries for deals, plus one for rates, one for payments and two per
    distinct segment paid on attainment, each only when a member needs it.
    """
    first_day = min(plan.first_day for plan in plans)
    member_ids = set().union(*(plan.member_ids for plan in plans))
    deals = selectors.won_deals_of_members(
        member_ids, first_day, period.end, organization.time_zone
    )
    extra = list(extra_deals)
    for plan in plans:
        plan.deals, plan.cancellations = deals.of_members(
            plan.member_ids, plan.first_day
        )
        plan.deals += extra

    # One set of rates that contains every member's rates: the union of the
    # currencies, over the earliest member's window.
    sources = set()
    targets = set()
    for plan in plans:
        if Inputs.rates_needed(plan.deals, plan.terms, organization):
            sources |= {deal.currency or organization.currency for deal in plan.deals}
            targets |= {t.currency for t in plan.terms}
    rates = FxRates({})
    if sources:
        rates = selectors.fx_rates(
            sources, targets, rate_date(first_day, FxRateDate.MONTH_START), period.end
        )

    payments = selectors.DealPayments({}, [])
    paying = [plan for plan in plans if plan.on_payment]
    if paying:
        currencies = {}
        for plan in paying:
            for deal in plan.deals:
                currencies[deal.deal_id] = deal.currency or organization.currency
        if currencies:
            payments = selectors.payments_of_deals(currencies)

    return Inputs(rates, payments, quota_figures(plans))


def quota_figures(plans: list[MemberPlan]) -> services.QuotaFigures:
    """Load the quotas of the members' segments paid on attainment.

    Two queries per distinct segment.
    """
    segments: dict[tuple[dt.date, dt.date], list[Membership]] = defaultdict(list)
    for plan in plans:
        for key in services.quota_segments(plan.assignments, plan.periods):
            segments[key].append(plan.member)
    return {
        key: member_quotas(members, key[0], key[1]) for key, members in segments.items()
    }
