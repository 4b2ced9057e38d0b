"""Statements of simple plans, calculated straight into what a run stores.

Most members are paid on flat and tiered components alone, on their own
deals of the period. For them a run skips the engine's credit splitting,
line objects and encoding passes. ``calculate`` reads their deals with one
query and runs the components' own arithmetic and sentences
(``flat.entries`` and ``tiered.entries``). It writes the lines straight into
the block and the snapshot entries the store writes, and the block is the
one the engine's lines encode to, byte for byte.

A member is left to the engine when any of these applies:

- a component other than flat or tiered, a cap, a plan year schedule, a
  clawback term, payout on payment or a draw;
- more than one segment in the period (two assignments, a plan change or a
  partial month), or days of the period with no plan;
- a deal of the period that is split, shared between reassigned-lead
  owners, cancelled, in a currency other than the plan's, or of an amount
  that is not whole cents above zero;
- a split or share of another owner's deal in the period.

This path runs on PostgreSQL only, and only for a run's statements: the
what-if estimator, the plan preview and the tests without PostgreSQL use
the engine.
"""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from operator import itemgetter
from zoneinfo import ZoneInfo

from django.db import connection

from activity.dates import period_bounds
from activity.models import Deal, DealSplit, Stage
from compensation import calculation_batch as batch
from compensation import line_blocks, services
from compensation.crediting import HUNDRED
from compensation.engine import flat, tiered
from compensation.engine.plans import PayoutTiming, Segment, SegmentRange, plan_segments
from compensation.engine.types import CalculationError, LineKind
from compensation.fields import Table
from compensation.models import DealOwnerShare
from goals.calendar import DateRange
from spm.models import Membership, Organization
from spm.money import CENT

ZERO = Decimal("0.00")
# The keys of a snapshot's deal entry, in payout_diff's order.
SNAPSHOT_COLUMNS = (
    "deal_id",
    "deal_name",
    "deal_amount",
    "deal_currency",
    "credit_date",
    "share",
    "credited",
    "fx_rate",
    "fx_rate_date",
    "plan_version_id",
    "plan_version",
    "commission",
)
# The component kinds this path calculates.
KINDS = frozenset({"flat", "tiered"})
_DEAL_ID = itemgetter(0)
_CREDIT_DATE = itemgetter(3)
_LINE_DATE = itemgetter(line_blocks.FIELDS.index("credit_date"))
# Whether a line stores its base amount in cents, the scale of a deal amount.
_BASE_IN_CENTS = line_blocks.number_text(CENT, "base_amount") == str(CENT)


class OwnerCredit(tuple):
    """A deal of the period its owner takes whole: (deal id, name, amount, date).

    The amount is in the plan's currency and the date is the credit date.
    The components read a credit's ``amount``, as they read the engine's
    ``Credit``, so a segment of these credits goes through the same code.
    A tuple is quicker to build than a ``Credit``, and a run builds one per
    deal.
    """

    __slots__ = ()

    deal_id = property(itemgetter(0))
    deal_name = property(itemgetter(1))
    amount = property(itemgetter(2))
    credit_date = property(itemgetter(3))


class DirectStatement:
    """A member's statement as a run stores it: a block of lines and snapshot entries.

    It has the attributes of the engine's ``Statement`` that the store
    reads, but no line objects: the store takes a draft's lines from the
    block, also when they are stored as rows (a dispute was raised on one).
    """

    held = ()
    notes = ()
    draw_balance = ZERO

    def __init__(
        self,
        *,
        member: Membership,
        period: DateRange,
        currency: str,
        block: line_blocks.BlockContent,
        deals: Table,
    ) -> None:
        self.member_id = member.pk
        self.member_name = str(member)
        self.period_start = period.start
        self.period_end = period.end
        self.currency = currency
        self.block = block
        self.total = self.earned = block.total
        self.deals = deals


def segment_range(plan: batch.MemberPlan, period: DateRange) -> SegmentRange | None:
    """Return the member's one segment of ``period`` if their plan is simple."""
    if plan.draws or plan.tree or plan.on_payment or len(plan.periods) != 1:
        return None
    ranges = plan_segments(period.start, period.end, tuple(plan.assignments))
    if len(ranges) != 1:
        return None
    found = ranges[0]
    terms = found.terms
    if (
        (found.start, found.end) != (period.start, period.end)
        or not terms.components
        or terms.cap_per_period is not None
        or terms.year_payout_tiers is not None
        or terms.clawback is not None
        or terms.payout_timing != PayoutTiming.AT_CLOSE
    ):
        return None
    for component in terms.components:
        if (
            component.kind not in KINDS
            or component.cap_per_deal is not None
            or component.cap_per_period is not None
        ):
            return None
    return found


def calculate(
    plans: list[batch.MemberPlan],
    period: DateRange,
    organization: Organization,
    results: dict,
) -> list[batch.MemberPlan]:
    """Calculate the statements of the members on simple plans into ``results``.

    Returns the plans left for the engine. Three queries, plus two per
    distinct segment paid on attainment for quotas.
    """
    ranges = {}
    for plan in plans:
        found = segment_range(plan, period)
        if found is not None:
            ranges[plan.member.pk] = found
    if not ranges:
        return plans
    currencies = {
        member_id: found.terms.currency for member_id, found in ranges.items()
    }
    deals, to_engine = _deals(currencies, period, organization)
    direct = [
        plan
        for plan in plans
        if plan.member.pk in ranges and plan.member.pk not in to_engine
    ]
    figures = batch.quota_figures(direct)
    for plan in direct:
        member = plan.member
        try:
            quotas = services._quotas(member, plan.assignments, plan.periods, figures)
            results[member.pk] = _statement(
                member, period, ranges[member.pk], deals.get(member.pk, ()), quotas
            )
        except CalculationError as error:
            results[member.pk] = error
    done = {plan.member.pk for plan in direct}
    return [plan for plan in plans if plan.member.pk not in done]


def _deals(
    currencies: dict[int, str], period: DateRange, organization: Organization
) -> tuple[dict[int, list[OwnerCredit]], set[int]]:
    """Return the won deals of the period owned by each member, and who to leave out.

    ``currencies`` has the plan currency of each member to read. Each
    member's deals are their ``OwnerCredit``, in no order. The members left
    out have a deal the engine must credit (see the module's docstring),
    or a split or share of another owner's deal. Two queries.
    """
    quote = connection.ops.quote_name
    deal_table = quote(Deal._meta.db_table)
    stage_table = quote(Stage._meta.db_table)
    split_table = quote(DealSplit._meta.db_table)
    share_table = quote(DealOwnerShare._meta.db_table)
    first, last = period_bounds(period.start, period.end, organization.time_zone)
    # The deals won_deals_of_members reads, for owners only, with whether
    # the engine must credit them: another table gives them credits, or the
    # amount is not whole cents above zero. The time a deal was won is only
    # read when it has no close date.
    window = (
        "((deal.close_date >= %s AND deal.close_date < %s) OR "
        "(deal.close_date IS NULL AND deal.stage_changed_at >= %s "
        "AND deal.stage_changed_at < %s))"
    )
    window_params = [period.start, period.end, first, last]
    sql = (
        "SELECT deal.id, COALESCE(NULLIF(deal.name, ''), "
        "NULLIF(deal.external_id, ''), deal.public_id::text), deal.amount, "
        "COALESCE(NULLIF(deal.currency, ''), %s), deal.owner_id, deal.close_date, "
        "CASE WHEN deal.close_date IS NULL THEN deal.stage_changed_at END, "
        "deal.archived_at IS NOT NULL OR deal.amount <= 0 "
        "OR scale(deal.amount) <> 2 "
        f"OR deal.id IN (SELECT deal_id FROM {split_table} "
        "WHERE organization_id = %s) "
        f"OR deal.id IN (SELECT deal_id FROM {share_table} "
        "WHERE organization_id = %s) "
        f"FROM {deal_table} AS deal JOIN {stage_table} AS stage "
        "ON stage.id = deal.stage_id "
        "WHERE deal.organization_id = %s AND stage.is_won "
        "AND deal.amount IS NOT NULL AND deal.owner_id = ANY(%s::bigint[]) "
        f"AND {window}"
    )
    other_owners_sql = (
        f"SELECT part.member_id FROM {split_table} AS part JOIN {deal_table} AS deal "
        "ON deal.id = part.deal_id WHERE part.organization_id = %s "
        f"AND part.member_id = ANY(%s::bigint[]) AND {window} "
        f"UNION SELECT part.member_id FROM {share_table} AS part "
        f"JOIN {deal_table} AS deal ON deal.id = part.deal_id "
        "WHERE part.organization_id = %s "
        f"AND part.member_id = ANY(%s::bigint[]) AND {window}"
    )
    organization_id = organization.pk
    member_ids = list(currencies)
    zone = ZoneInfo(organization.time_zone)
    deals: dict[int, list[OwnerCredit]] = defaultdict(list)
    to_engine: set[int] = set()
    with connection.cursor() as cursor:
        cursor.execute(
            sql,
            [organization.currency]
            + [organization_id] * 3
            + [member_ids]
            + window_params,
        )
        for (
            deal_id,
            name,
            amount,
            currency,
            owner_id,
            close_date,
            closed_at,
            engine_only,
        ) in cursor.fetchall():
            if engine_only or currency != currencies[owner_id]:
                to_engine.add(owner_id)
                continue
            day = close_date or closed_at.astimezone(zone).date()
            deals[owner_id].append(OwnerCredit((deal_id, name, amount, day)))
        cursor.execute(
            other_owners_sql,
            [organization_id, member_ids, *window_params] * 2,
        )
        to_engine.update(member_id for (member_id,) in cursor.fetchall())
    return deals, to_engine


def _statement(
    member: Membership,
    period: DateRange,
    found: SegmentRange,
    deals: list[OwnerCredit],
    quotas: dict,
) -> DirectStatement:
    """Calculate one member's statement into a block and snapshot entries.

    Raises CalculationError as the engine does, for a missing quota.
    """
    terms = found.terms
    currency = terms.currency
    # Credits are taken in order of credit date, then deal id, as the engine
    # takes them. Two stable sorts give that order in about a third of the
    # time of one sort on a (date, id) key, because they compare single values.
    credits = sorted(deals, key=_DEAL_ID)
    credits.sort(key=_CREDIT_DATE)
    segment = Segment(
        start=found.start,
        end=found.end,
        period_start=period.start,
        period_end=period.end,
        terms=terms,
        assignment=found.assignment,
        payee_name=str(member),
        credits=tuple(credits),
        quota=quotas.get((found.start, found.end)),
    )
    share = line_blocks.number_text(HUNDRED / HUNDRED, "credit_share")
    number_text = line_blocks.number_text
    # Each amount is whole cents (see _deals), so its text is the text of
    # the base amount a line stores, of the deal amount and of the credit.
    amount_texts = [str(amount) for _, _, amount, _ in credits]
    if not _BASE_IN_CENTS:
        amount_texts = [
            number_text(amount, "base_amount") for _, _, amount, _ in credits
        ]
    # The values of a line that depend on its credit alone, in FIELDS order.
    credit_values = [
        (deal_id, name, day, share, text)
        for (deal_id, name, _, day), text in zip(credits, amount_texts, strict=True)
    ]
    rows = []
    # What each credit's lines pay, one list per component, in credit order.
    amounts = []
    for component in terms.components:
        head = (
            LineKind.COMMISSION,
            component.id,
            component.name,
            terms.version_id,
            terms.label,
        )
        # Each kind's entries are one per credit, in the segment's order. The
        # components round each amount to the cent, as the column stores it.
        # The column has no -0.00, which ``or ZERO`` turns into 0.00.
        if component.kind == "flat":
            # A flat line pays one rate, and its sentence names no tier.
            paid = flat.entries(component, segment)
            rate = number_text(component.spec.rate, "rate")
            rows += [
                [*head, *values, rate, "", explanation, str(amount or ZERO)]
                for values, (_, amount, explanation) in zip(
                    credit_values, paid, strict=True
                )
            ]
        else:
            tier_column: list[str] = []
            paid = tiered.entries(component, segment, tier_column)
            rows += [
                [*head, *values, None, tiers, explanation, str(amount or ZERO)]
                for values, (_, amount, explanation), tiers in zip(
                    credit_values, paid, tier_column, strict=True
                )
            ]
        amounts.append([amount for _, amount, _ in paid])
    commissions = [sum(paid, ZERO) for paid in zip(*amounts, strict=True)]
    total = sum(commissions, ZERO)
    # The engine orders a segment's lines by date, keeping the component order.
    if len(terms.components) > 1:
        rows.sort(key=_LINE_DATE)

    # The entries payout_diff.snapshot_content gives the engine's statement,
    # as a table. The credit date stays a date, which orjson writes in the
    # same ISO form.
    share_text = str(HUNDRED / HUNDRED)
    version_id = terms.version_id
    label = terms.label
    entries = Table(
        SNAPSHOT_COLUMNS,
        [
            (
                deal_id,
                name,
                text,
                currency,
                day,
                share_text,
                text,
                None,
                None,
                version_id,
                label,
                str(commission),
            )
            for (deal_id, name, _, day), text, commission in zip(
                credits, amount_texts, commissions, strict=True
            )
        ],
    )
    return DirectStatement(
        member=member,
        period=period,
        currency=currency,
        block=line_blocks.pack(rows, total, ()),
        deals=entries,
    )
