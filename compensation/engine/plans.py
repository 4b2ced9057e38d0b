"""Plan terms as the engine reads them, and the split of a period into segments.

A segment is a stretch of a statement period under one plan version of one
assignment. A period splits where an assignment starts or ends, or where a
newer published version takes effect. So after a plan change on the 16th,
the deals of the 1st to the 15th are paid under the old terms and the rest
under the new ones.
Amount tier bounds, thresholds and caps per period are prorated to the
segment by days; attainment uses the quota prorated to the segment's days.
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import MISSING, dataclass, fields
from decimal import Decimal
from typing import Any

from compensation.engine.tiers import TierTable
from compensation.engine.types import (
    CalculationError,
    Credit,
    LineKind,
    StatementLine,
    frozen_instance,
)
from compensation.engine.values import money

ONE_DAY = dt.timedelta(days=1)


class PayoutTiming:
    AT_CLOSE = "at_close"
    ON_PAYMENT = "on_payment"
    ON_FULL_PAYMENT = "on_full_payment"


class FxRateDate:
    CLOSE_DATE = "close_date"
    MONTH_START = "month_start"


@dataclass(frozen=True)
class Component:
    """A plan component with its parameters parsed by its kind's module."""

    name: str
    kind: str
    spec: Any
    cap_per_deal: Decimal | None = None
    cap_per_period: Decimal | None = None
    id: int | None = None


@dataclass(frozen=True)
class ClawbackTerms:
    """How much of a cancelled deal's commission is taken back.

    ``mode`` is "full" or "prorated". Prorated takes back the share of
    ``term_months`` the customer did not serve. A deal cancelled after the
    whole term is not clawed back in either mode.
    """

    mode: str
    term_months: int


@dataclass(frozen=True)
class PlanTerms:
    """One published plan version."""

    label: str
    currency: str
    effective_from: dt.date
    components: tuple[Component, ...]
    cap_per_period: Decimal | None = None
    payout_timing: str = PayoutTiming.AT_CLOSE
    fx_rate_date: str = FxRateDate.CLOSE_DATE
    clawback: ClawbackTerms | None = None
    year_payout_tiers: TierTable | None = None
    version_id: int | None = None
    plan_id: int | None = None

    @property
    def credit_basis(self) -> tuple[str, str]:
        """Return what the credits under these terms depend on: currency, rate date."""
        return (self.currency, self.fx_rate_date)


@dataclass(frozen=True)
class Assignment:
    """A member on a plan from ``start`` to ``end`` inclusive (None: open-ended).

    ``versions`` are the plan's published versions, oldest first.
    """

    start: dt.date
    end: dt.date | None
    versions: tuple[PlanTerms, ...]
    target_incentive: Decimal | None = None
    id: int | None = None

    def version_on(self, day: dt.date) -> PlanTerms | None:
        """Return the latest version in effect on ``day``."""
        current = None
        for version in self.versions:
            if version.effective_from <= day:
                current = version
        return current

    def year_start(self, day: dt.date) -> dt.date:
        """Return the anniversary of ``start`` that begins the plan year of ``day``."""
        years = day.year - self.start.year
        anniversary = _same_day_in_year(self.start, self.start.year + years)
        if anniversary > day:
            anniversary = _same_day_in_year(self.start, self.start.year + years - 1)
        return anniversary


def _same_day_in_year(day: dt.date, year: int) -> dt.date:
    # 29 February falls back to 28 February in other years.
    try:
        return day.replace(year=year)
    except ValueError:
        return day.replace(year=year, day=28)


@dataclass(frozen=True)
class TeamMember:
    """A member of a manager's reporting tree; ``depth`` 1 is a direct report."""

    member_id: int
    name: str
    depth: int
    credits: tuple[Credit, ...] = ()


@dataclass(frozen=True)
class Segment:
    """The part of a period under one plan version, with what it is paid on."""

    start: dt.date
    end: dt.date
    period_start: dt.date
    period_end: dt.date
    terms: PlanTerms
    assignment: Assignment
    payee_name: str = ""
    credits: tuple[Credit, ...] = ()
    team: tuple[TeamMember, ...] = ()
    quota: Decimal | None = None

    @property
    def days(self) -> int:
        return (self.end - self.start).days

    @property
    def period_days(self) -> int:
        return (self.period_end - self.period_start).days

    @property
    def is_partial(self) -> bool:
        return self.days != self.period_days

    @property
    def fraction(self) -> Decimal:
        """The segment's share of the period, by days."""
        return Decimal(self.days) / Decimal(self.period_days)

    @functools.cached_property
    def credit_texts(self) -> list[str]:
        """Each credit's amount as an explanation writes it, in credit order.

        Several components explain the same credits, so each amount is
        formatted once per segment.
        """
        return [money(credit.amount) for credit in self.credits]

    def prorate_note(self) -> str:
        if not self.is_partial:
            return ""
        return f" (prorated for {self.days} of {self.period_days} days)"

    def require_quota(self, component: Component) -> Decimal:
        if self.quota is None or self.quota <= 0:
            last_day = self.end - ONE_DAY
            raise CalculationError(
                f"{component.name} pays on attainment, but {self.payee_name} has "
                f"no bookings quota above zero for {self.start:%Y-%m-%d} to "
                f"{last_day:%Y-%m-%d}. Set the quota, or base the component "
                "on amounts."
            )
        return self.quota

    def line(self, component: Component, kind: str, **values: Any) -> StatementLine:
        """Build a line of ``component`` under this segment's plan version.

        ``values`` are the other fields of ``StatementLine``: ``amount`` and
        ``explanation`` are required. The line equals the one
        ``StatementLine(...)`` builds, with the same defaults, and an unknown
        or missing field raises TypeError as it would.
        """
        if not _LINE_REQUIRED <= values.keys() <= _LINE_CALLER_FIELDS:
            raise TypeError(
                f"Invalid fields {sorted(values)} for Segment.line(): it requires "
                f"{sorted(_LINE_REQUIRED)} and takes only "
                f"{sorted(_LINE_CALLER_FIELDS)}."
            )
        terms = self.terms
        line_values = {
            **_LINE_DEFAULTS,
            **values,
            "kind": kind,
            "currency": terms.currency,
            "component": component.name,
            "component_id": component.id,
            "plan_version": terms.label,
            "plan_version_id": terms.version_id,
        }
        # What StatementLine.__post_init__ does, which frozen_instance skips.
        if line_values["gross"] is None:
            line_values["gross"] = line_values["amount"]
        return frozen_instance(StatementLine, line_values)

    def commission_lines(
        self,
        component: Component,
        entries: list[tuple[Credit, Decimal, str]],
        rate: Decimal | None = None,
    ) -> list[StatementLine]:
        """Build a commission line of ``component`` for each credit's entry.

        An entry is a credit with the amount it earns and the sentence that
        explains it. ``rate`` is the rate every line pays, if there is one.
        """
        return [
            self.line(
                component,
                LineKind.COMMISSION,
                amount=amount,
                explanation=explanation,
                deal_id=credit.deal_id,
                deal_name=credit.deal_name,
                date=credit.credit_date,
                base=credit.amount,
                rate=rate,
            )
            for credit, amount, explanation in entries
        ]


# The StatementLine fields that a caller of Segment.line may pass, those it
# must pass, and the defaults of the others it may pass. Segment.line sets
# the remaining fields from the component and the plan version.
_LINE_CALLER_FIELDS = frozenset(field.name for field in fields(StatementLine)) - {
    "kind",
    "currency",
    "component",
    "component_id",
    "plan_version",
    "plan_version_id",
}
_LINE_REQUIRED = frozenset({"amount", "explanation"})
_LINE_DEFAULTS = {
    field.name: field.default
    for field in fields(StatementLine)
    if field.name in _LINE_CALLER_FIELDS and field.default is not MISSING
}


@dataclass(frozen=True)
class SegmentRange:
    start: dt.date
    end: dt.date
    assignment: Assignment
    terms: PlanTerms


def plan_segments(
    period_start: dt.date, period_end: dt.date, assignments: tuple[Assignment, ...]
) -> list[SegmentRange]:
    """Split ``[period_start, period_end)`` by assignment and plan version.

    Days covered by no assignment, or before the first published version,
    belong to no segment. Two assignments that overlap (a member on two
    plans at once) give segments on the same days, each paid on its own.
    """
    ranges = []
    for assignment in assignments:
        first = max(period_start, assignment.start)
        last = period_end
        if assignment.end is not None:
            last = min(last, assignment.end + ONE_DAY)
        if first >= last:
            continue
        cuts = {first, last}
        cuts.update(
            version.effective_from
            for version in assignment.versions
            if first < version.effective_from < last
        )
        if any(version.year_payout_tiers for version in assignment.versions):
            # The plan year schedule restarts on each anniversary of the start.
            anniversary = assignment.year_start(last - ONE_DAY)
            while anniversary > first:
                cuts.add(anniversary)
                anniversary = assignment.year_start(anniversary - ONE_DAY)
        bounds = sorted(cuts)
        for start, end in zip(bounds, bounds[1:], strict=False):
            terms = assignment.version_on(start)
            if terms is not None:
                ranges.append(SegmentRange(start, end, assignment, terms))
    return ranges
