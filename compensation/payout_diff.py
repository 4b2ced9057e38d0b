"""Why a payout changed: snapshots of each calculation run and their comparison.

Each run stores a ``StatementSnapshot`` of what it computed for a statement:
per credited deal, the inputs that decide its commission (amount, currency,
credit date, exchange rate, share, plan version) and what it earned. Two
snapshots of one statement are compared deal by deal, and each difference
is given one or more causes:

- data: the deal's amount, close date or split changed, or the deal was
  added to or dropped from the period (its stage or close date moved). A
  deal whose own inputs did not change but whose commission did is put
  down to the period's other deals, which move tiers and caps.
- rule: the deal was paid under another plan version.
- fx: the exchange rate that converted the deal changed.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from zoneinfo import ZoneInfo

from activity.models import Deal
from compensation.engine.types import Statement as ComputedStatement
from compensation.models import CalculationRun, Statement, StatementSnapshot

ZERO = Decimal("0.00")


class Cause:
    DATA = "data"
    RULE = "rule"
    FX = "fx"

    LABELS = {DATA: "Data", RULE: "Rule", FX: "Exchange rate"}


def _deal_entries(computed: ComputedStatement) -> list[dict]:
    """Return one entry per deal of the computed statement, in line order."""
    entries: dict[int, dict] = {}
    # Each deal's commission is summed as a Decimal and written as text once,
    # which gives the same text as adding each line to the parsed text. Each
    # sum starts at the entry's first "commission" text, "0.00" or "0".
    commissions: dict[int, Decimal] = {}
    for credit in computed.credits:
        deal_id = credit.deal_id
        if deal_id in entries:
            continue
        fx_rate = credit.fx_rate
        fx_rate_date = credit.fx_rate_date
        entries[deal_id] = {
            "deal_id": deal_id,
            "deal_name": credit.deal_name,
            "deal_amount": str(credit.deal_source_amount),
            "deal_currency": credit.source_currency,
            "credit_date": credit.credit_date.isoformat(),
            "share": str(credit.share),
            "credited": str(credit.amount),
            "fx_rate": None if fx_rate is None else str(fx_rate),
            "fx_rate_date": None if fx_rate_date is None else str(fx_rate_date),
            "plan_version_id": None,
            "plan_version": "",
            "commission": "0.00",
        }
        commissions[deal_id] = ZERO
    for line in computed.lines:
        deal_id = line.deal_id
        if deal_id is None:
            continue
        entry = entries.get(deal_id)
        if entry is None:
            # A deal with lines but no credit in the period, such as a
            # clawback of an earlier period's deal.
            entry = entries[deal_id] = {
                "deal_id": deal_id,
                "deal_name": line.deal_name,
                "commission": "0",
            }
            commissions[deal_id] = Decimal(0)
        commissions[deal_id] += line.amount
        if line.plan_version_id is not None:
            entry["plan_version_id"] = line.plan_version_id
            entry["plan_version"] = line.plan_version
    for deal_id, commission in commissions.items():
        entries[deal_id]["commission"] = str(commission)
    return list(entries.values())


def _other_entries(computed: ComputedStatement) -> list[dict]:
    totals: dict[tuple[str, str], dict] = {}
    for line in computed.lines:
        if line.deal_id is not None:
            continue
        key = (line.kind, line.component)
        entry = totals.setdefault(
            key,
            {
                "kind": line.kind,
                "component": line.component,
                "plan_version": line.plan_version,
                "amount": "0.00",
            },
        )
        entry["amount"] = str(Decimal(entry["amount"]) + line.amount)
    return list(totals.values())


def snapshot_store(
    *, statement: Statement, run: CalculationRun, computed: ComputedStatement
) -> StatementSnapshot:
    """Store what ``run`` computed for ``statement``; a rerun replaces it."""
    snapshot, _ = StatementSnapshot.objects.update_or_create(
        statement=statement,
        run=run,
        defaults={
            "organization_id": statement.organization_id,
            "total": computed.total,
            "currency": computed.currency,
            "deals": _deal_entries(computed),
            "other_lines": _other_entries(computed),
        },
    )
    return snapshot


def snapshot_content(computed: ComputedStatement) -> tuple[list[dict], list[dict]]:
    """Return what a snapshot stores of a computed statement: deals, other lines."""
    return _deal_entries(computed), _other_entries(computed)


@dataclass
class Difference:
    """One deal (or one line without a deal) that pays differently in two runs."""

    label: str
    before: Decimal
    after: Decimal
    causes: list[tuple[str, str]] = field(default_factory=list)

    @property
    def change(self) -> Decimal:
        return self.after - self.before

    @property
    def cause_labels(self) -> list[str]:
        return [Cause.LABELS[cause] for cause, _ in self.causes]


@dataclass
class Comparison:
    before: StatementSnapshot
    after: StatementSnapshot
    differences: list[Difference]

    @property
    def change(self) -> Decimal:
        return self.after.total - self.before.total


def _money(value: str | Decimal) -> str:
    return f"{Decimal(value):,.2f}"


def _deal_causes(before: dict, after: dict) -> list[tuple[str, str]]:
    causes = []
    if before.get("deal_amount") != after.get("deal_amount"):
        causes.append(
            (
                Cause.DATA,
                f"deal amount changed from {_money(before['deal_amount'])} to "
                f"{_money(after['deal_amount'])} {after.get('deal_currency', '')}",
            )
        )
    if before.get("credit_date") != after.get("credit_date"):
        causes.append(
            (
                Cause.DATA,
                f"close date changed from {before['credit_date']} to "
                f"{after['credit_date']}",
            )
        )
    if before.get("share") != after.get("share"):
        causes.append(
            (
                Cause.DATA,
                f"credit share changed from {Decimal(before['share']):.2%} to "
                f"{Decimal(after['share']):.2%}",
            )
        )
    if before.get("plan_version_id") != after.get("plan_version_id"):
        causes.append(
            (
                Cause.RULE,
                f"paid under {after.get('plan_version') or 'no plan'} instead of "
                f"{before.get('plan_version') or 'no plan'}",
            )
        )
    if (before.get("fx_rate"), before.get("fx_rate_date")) != (
        after.get("fx_rate"),
        after.get("fx_rate_date"),
    ):
        was = f"{before.get('fx_rate') or 'none'} ({before.get('fx_rate_date') or '-'})"
        now = f"{after.get('fx_rate') or 'none'} ({after.get('fx_rate_date') or '-'})"
        causes.append((Cause.FX, f"exchange rate changed from {was} to {now}"))
    if not causes:
        causes.append(
            (
                Cause.DATA,
                "the deal is unchanged; the period's other deals changed its tier "
                "or cap",
            )
        )
    return causes


def _deal_state(deal: Deal | None) -> str:
    if deal is None:
        return "the deal was deleted"
    close = f"{deal.close_date:%Y-%m-%d}" if deal.close_date else "none"
    archived = ", archived" if deal.archived_at else ""
    return f"now in stage {deal.stage.name}, close date {close}{archived}"


def _deal_differences(before: StatementSnapshot, after: StatementSnapshot):
    old = {entry["deal_id"]: entry for entry in before.deals}
    new = {entry["deal_id"]: entry for entry in after.deals}
    gone_or_added = (old.keys() - new.keys()) | (new.keys() - old.keys())
    deals = Deal.objects.select_related("stage").in_bulk(gone_or_added)
    differences = []
    for deal_id in list(old) + [key for key in new if key not in old]:
        first, second = old.get(deal_id), new.get(deal_id)
        was = Decimal(first["commission"]) if first else ZERO
        now = Decimal(second["commission"]) if second else ZERO
        name = (second or first)["deal_name"]
        if first is None:
            # An entry without "credited" comes from lines only, such as the
            # clawback or payment of a deal credited in an earlier period.
            change = (
                "newly credited"
                if "credited" in second
                else "new line on a deal credited in an earlier period"
            )
            causes = [(Cause.DATA, f"{change}: {_deal_state(deals.get(deal_id))}")]
        elif second is None:
            change = (
                "no longer credited"
                if "credited" in first
                else "line removed on a deal credited in an earlier period"
            )
            causes = [(Cause.DATA, f"{change}: {_deal_state(deals.get(deal_id))}")]
        elif was == now:
            continue
        else:
            causes = _deal_causes(first, second)
        differences.append(Difference(name, was, now, causes))
    return differences


def _other_differences(before: StatementSnapshot, after: StatementSnapshot):
    def key(entry):
        return (entry["kind"], entry["component"])

    old = {key(entry): entry for entry in before.other_lines}
    new = {key(entry): entry for entry in after.other_lines}
    differences = []
    for name in list(old) + [k for k in new if k not in old]:
        first, second = old.get(name), new.get(name)
        was = Decimal(first["amount"]) if first else ZERO
        now = Decimal(second["amount"]) if second else ZERO
        if was == now:
            continue
        versions = {entry["plan_version"] for entry in (first, second) if entry}
        if len(versions) > 1 or first is None or second is None:
            cause = (Cause.RULE, "the plan version behind the line changed")
        else:
            cause = (Cause.DATA, "follows the period's credited deals")
        label = " ".join(part for part in name if part)
        differences.append(Difference(label, was, now, [cause]))
    return differences


def snapshots_of(statement: Statement) -> list[StatementSnapshot]:
    """Return the statement's snapshots with their runs, oldest first. One query."""
    return list(
        StatementSnapshot.objects.filter(statement=statement)
        .select_related("run")
        .order_by("created_at", "id")
    )


def compare(before: StatementSnapshot, after: StatementSnapshot) -> Comparison:
    """Compare two snapshots of a statement. One query, for dropped deals."""
    differences = _deal_differences(before, after) + _other_differences(before, after)
    return Comparison(before, after, differences)


def run_label(snapshot: StatementSnapshot, time_zone: str) -> str:
    """Name a run by its local start time and the total it computed."""
    created: dt.datetime = snapshot.run.created_at.astimezone(ZoneInfo(time_zone))
    return f"{created:%Y-%m-%d %H:%M %Z} ({_money(snapshot.total)} {snapshot.currency})"
