"""Statement calculation for one member and one period.

``calculate_statement`` reads the member's assignments, published plan
versions, draws, credited deals, payments, exchange rates and quotas with a
fixed number of queries, whatever the number of deals, and returns an
in-memory ``Statement``. It writes nothing; compensation.services_statements
stores the result.

Some balances carry from period to period: a recoverable draw, the plan
year's gross commission, commission waiting for payments, and what was paid
on a deal that is now cancelled. They are rebuilt by calculating the earlier
periods they depend on, from the same rows.

NOTE: those earlier periods are recalculated from the CRM data as it is now,
not read from the stored statements (compensation.models.Statement). A deal
that has left its won stage since is missing from them.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gc
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from decimal import Decimal

from django.db import connection

from compensation import calculation_batch as batch
from compensation import direct as direct_statements
from compensation import selectors
from compensation.crediting import DealInput, FxRates, credit_deals, rate_date
from compensation.engine import (
    Assignment,
    CalculationError,
    ClawbackTerms,
    Credit,
    DrawTerms,
    FxRateDate,
    ParamsError,
    Payee,
    PlanTerms,
    Statement,
    TeamMember,
    calculate_periods,
)
from compensation.engine.plans import plan_segments
from compensation.models import PlanAssignment, PlanVersion
from goals.calendar import DateRange, add_months
from goals.selectors import QuotaFigure, member_quotas
from spm.models import Membership, Organization
from spm.tenancy import get_current_organization

__all__ = [
    "CalculationError",
    "Statement",
    "calculate_statement",
    "calculate_statements",
]

# Loaded quotas: segment (start, end), then member id.
QuotaFigures = dict[tuple[dt.date, dt.date], dict[int, QuotaFigure]]


def _months_in(period: DateRange) -> int:
    """Return the whole months of ``period``; statements run on whole months."""
    months = (
        (period.end.year - period.start.year) * 12
        + period.end.month
        - period.start.month
    )
    if period.start.day != 1 or period.end.day != 1 or months < 1:
        raise ValueError(
            f"Invalid statement period {period.start} to {period.end}: a period "
            "runs from the first day of a month to the first day of a later month."
        )
    return months


def _plan_terms(version: PlanVersion) -> PlanTerms:
    components = []
    for component in version.components.all():
        try:
            components.append(component.to_engine())
        except ParamsError as error:
            raise CalculationError(
                f"{version.label}, component {component.name!r}: {error}"
            ) from error
    clawback = None
    if version.clawback:
        clawback = ClawbackTerms(version.clawback, version.clawback_term_months)
    try:
        year_tiers = version.year_payout_table()
    except ParamsError as error:
        raise CalculationError(f"{version.label}: {error}") from error
    return PlanTerms(
        label=version.label,
        currency=version.plan.currency,
        effective_from=version.effective_from,
        components=tuple(components),
        cap_per_period=version.cap_per_period,
        payout_timing=version.payout_timing,
        fx_rate_date=version.fx_rate_date,
        clawback=clawback,
        year_payout_tiers=year_tiers,
        version_id=version.pk,
        plan_id=version.plan_id,
    )


def _assignment(
    row: PlanAssignment,
    versions: list[PlanVersion],
    member: Membership,
    terms_of: Callable[[PlanVersion], PlanTerms] = _plan_terms,
) -> Assignment:
    target = row.target_incentive
    if target is not None and row.target_incentive_currency != row.plan.currency:
        raise CalculationError(
            f"{member}'s target incentive on {row.plan} is in "
            f"{row.target_incentive_currency}, but the plan pays in "
            f"{row.plan.currency}. Set it in {row.plan.currency}."
        )
    return Assignment(
        start=row.start_date,
        end=row.end_date,
        versions=tuple(terms_of(version) for version in versions),
        target_incentive=target,
        id=row.pk,
    )


def _all_terms(assignments: list[Assignment]) -> list[PlanTerms]:
    return [terms for assignment in assignments for terms in assignment.versions]


def _history_start(
    period: DateRange,
    assignments: list[Assignment],
    draws: list[DrawTerms],
    earliest_paid_close: dt.date | None,
) -> dt.date:
    """Return the first day whose credits can change this period's statement."""
    start = period.start
    for draw in draws:
        if draw.recoverable and draw.start < period.start:
            start = min(start, draw.start)
    for assignment in assignments:
        for terms in assignment.versions:
            if terms.year_payout_tiers is not None:
                start = min(start, assignment.year_start(period.start))
            if terms.clawback is not None:
                start = min(
                    start, add_months(period.start, -terms.clawback.term_months)
                )
    if earliest_paid_close is not None:
        start = min(start, earliest_paid_close)
    # Nothing is earned before the first assignment, nor owed before the first draw.
    floors = [a.start for a in assignments] + [d.start for d in draws]
    return max(start, min(floors)) if floors else period.start


def _periods(
    period: DateRange, history_start: dt.date
) -> list[tuple[dt.date, dt.date]]:
    months = _months_in(period)
    periods = [(period.start, period.end)]
    while periods[0][0] > history_start:
        start = periods[0][0]
        periods.insert(0, (add_months(start, -months), start))
    return periods


def _needs_quota(terms: PlanTerms) -> bool:
    return any(
        component.kind == "bonus"
        or (component.kind == "tiered" and component.spec.basis == "attainment")
        for component in terms.components
    )


def quota_segments(
    assignments: list[Assignment], periods: list[tuple[dt.date, dt.date]]
) -> list[tuple[dt.date, dt.date]]:
    """Return the ``(start, end)`` of each segment that is paid on attainment."""
    keys = []
    for start, end in periods:
        for found in plan_segments(start, end, tuple(assignments)):
            key = (found.start, found.end)
            if key not in keys and _needs_quota(found.terms):
                keys.append(key)
    return keys


def _quotas(
    member: Membership,
    assignments: list[Assignment],
    periods: list[tuple[dt.date, dt.date]],
    figures: QuotaFigures | None = None,
) -> dict[tuple[dt.date, dt.date], Decimal]:
    """Return the member's bookings quota of each segment paid on attainment.

    ``figures`` holds the quotas already loaded per segment (``(start,
    end)``, then member id). Without it, two queries per such segment
    (goals.selectors.member_quotas).
    """
    quotas = {}
    for start, end in periods:
        for found in plan_segments(start, end, tuple(assignments)):
            key = (found.start, found.end)
            if key in quotas or not _needs_quota(found.terms):
                continue
            if figures is None:
                loaded = member_quotas([member], found.start, found.end)
            else:
                loaded = figures[key]
            figure = loaded.get(member.pk)
            if figure is None:
                continue
            if figure.currency and figure.currency != found.terms.currency:
                raise CalculationError(
                    f"{member}'s quota for {found.start} is in {figure.currency}, "
                    f"but {found.terms.label} pays in {found.terms.currency}; "
                    "attainment needs both in one currency."
                )
            quotas[key] = figure.amount
    return quotas


def _fx_rates(
    deals: list[DealInput],
    terms: list[PlanTerms],
    organization: Organization,
    start: dt.date,
    end: dt.date,
) -> FxRates:
    sources = {deal.currency or organization.currency for deal in deals}
    targets = {t.currency for t in terms}
    if not sources - targets and len(targets) <= 1:
        return FxRates({})
    first_day = rate_date(start, FxRateDate.MONTH_START)
    return selectors.fx_rates(sources, targets, first_day, end)


def _credits_by_basis(
    deals: list[DealInput],
    terms: list[PlanTerms],
    rates: FxRates,
    organization: Organization,
) -> dict[tuple[str, str], list[Credit]]:
    credits = {}
    for basis in sorted({t.credit_basis for t in terms}):
        currency, fx_rate_date = basis
        credits[basis] = credit_deals(
            deals,
            currency=currency,
            rates=rates,
            time_zone=organization.time_zone,
            default_currency=organization.currency,
            fx_rate_date=fx_rate_date,
        )
    return credits


def _split_by_member(
    credits: dict[tuple[str, str], list[Credit]],
    member_id: int,
    tree: list[tuple[int, str, int]],
) -> tuple[dict, dict]:
    """Return the member's own credits, and their reports' for overrides, by basis."""
    own_credits = {}
    team = {}
    for basis, basis_credits in credits.items():
        by_member = defaultdict(list)
        for credit in basis_credits:
            by_member[credit.member_id].append(credit)
        own_credits[basis] = tuple(by_member.get(member_id, ()))
        team[basis] = tuple(
            TeamMember(pk, name, depth, tuple(by_member.get(pk, ())))
            for pk, name, depth in tree
        )
    return own_credits, team


def calculate_statement(
    member: Membership, period: DateRange, extra_deals: Sequence[DealInput] = ()
) -> Statement:
    """Calculate ``member``'s statement for ``period`` (whole months), in memory.

    ``extra_deals`` are counted as won in addition to the stored ones; the
    what-if estimator passes open deals this way.

    Runs inside the member's organisation (``tenant_context``). Raises
    ``CalculationError``, naming the deal, rate or setting to fix, when an
    input is invalid: splits that do not add up to 100%, a missing exchange
    rate or a missing quota.
    """
    result = calculate_statements([member], period, extra_deals)[member.pk]
    if isinstance(result, CalculationError):
        raise result
    return result


def calculate_statements(
    members: Sequence[Membership],
    period: DateRange,
    extra_deals: Sequence[DealInput] = (),
    *,
    direct: bool = False,
) -> dict[int, Statement | direct_statements.DirectStatement | CalculationError]:
    """Calculate the statements of several members for ``period``, in memory.

    Returns each member's statement, or the ``CalculationError`` that stopped
    it, by member id, so one member's bad data does not stop the others.
    Every member gets the result ``calculate_statement`` gives them alone.
    The rows are read once for all members, so the number of queries does
    not grow with the number of members or deals. It grows only with the
    number of distinct segments paid on attainment (two each, for quotas).
    ``extra_deals`` are added to every member's stored deals.

    With ``direct``, on PostgreSQL and without extra deals, the members on
    simple plans get a ``DirectStatement``, calculated straight into the
    block and snapshot a run stores (compensation.direct). Only the
    statement store reads those.

    Runs inside the members' organisation (``tenant_context``) and raises
    ValueError for a member of another organisation or a period that is not
    whole months.
    """
    organization = get_current_organization()
    for member in members:
        if member.organization_id != organization.pk:
            raise ValueError(f"{member} is not a member of {organization}.")
    _months_in(period)
    results: dict[int, Statement | CalculationError] = {}
    with cyclic_gc_paused():
        plans = batch.member_plans(members, period, results)
        if direct and plans and not extra_deals and connection.vendor == "postgresql":
            plans = direct_statements.calculate(plans, period, organization, results)
        if not plans:
            return results
        inputs = batch.load_inputs(plans, period, organization, extra_deals)
        for plan in plans:
            try:
                results[plan.member.pk] = _calculate_one(plan, inputs, organization)
            except CalculationError as error:
                results[plan.member.pk] = error
    return results


@contextlib.contextmanager
def cyclic_gc_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector, then restore it as it was.

    A batch builds several container objects per deal and keeps nearly all
    of them until it returns. The collector's passes over them freed few
    objects but took about 30% of this function's CPU time in a benchmark
    run of 1,000 reps (bench/compensation.py, CPython 3.11). Reference
    counting still frees every object outside a cycle, and the cycles
    left are collected after the batch. A run's batch keeps the collector
    paused until it has stored the statements and let them go
    (services_statements.calculation_batch_run).

    NOTE: the collector is process-wide, so in a threaded server it is
    paused for every thread while one calculation runs.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _calculate_one(
    plan: batch.MemberPlan, inputs: batch.Inputs, organization: Organization
) -> Statement:
    member = plan.member
    terms = plan.terms
    deals = plan.deals
    rates = FxRates({})
    if inputs.rates_needed(deals, terms, organization):
        rates = inputs.rates
    credits = inputs.credits_by_basis(deals, terms, rates, organization)
    own_credits, team = _split_by_member(credits, member.pk, plan.tree)
    payments = {}
    if plan.on_payment and deals:
        payments = inputs.payments.of_deals({deal.deal_id for deal in deals})
    quotas = _quotas(member, plan.assignments, plan.periods, inputs.quota_figures)
    payee = Payee(
        member_id=member.pk,
        name=str(member),
        assignments=tuple(plan.assignments),
        credits=own_credits,
        team=team,
        quotas=quotas,
        draws=tuple(plan.draws),
        cancellations=plan.cancellations,
        payments=payments,
    )
    return calculate_periods(payee, plan.periods)[-1]
