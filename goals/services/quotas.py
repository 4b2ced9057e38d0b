"""Quota writes: the grid save, the copy from the previous period, imports.

Each change is checked against the stored quotas under a row lock. Each
created, changed or deleted quota gets an audit log entry with its old and
new values as plain JSON: dates as YYYY-MM-DD, amounts as strings such as
"100000.00".
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from goals import grid
from goals.calendar import DateRange
from goals.models import Quota, QuotaMetric
from goals.periods import previous_quota_period, quota_period_starting
from goals.values import MAX_WHOLE_DIGITS, amount_text
from spm.models import AuditLog, Membership, Organization, Team, User


@dataclass(frozen=True)
class QuotaProblem:
    """Why one quota cannot be saved: the owner's name, the value and the reason.

    ``line`` and ``column`` locate the value in an imported file.
    """

    owner: str
    value: str
    message: str
    line: int | None = None
    column: str = ""
    # The member or team itself, so a page can mark its row.
    subject: Membership | Team | None = field(default=None, compare=False)

    def __str__(self) -> str:
        where = f"line {self.line}: " if self.line else ""
        return f"{where}{self.owner}: “{self.value}” {self.message}"


class QuotaError(ValueError):
    """Invalid quota changes. Nothing was saved.

    ``problems`` lists each invalid change. It is empty for a problem of the
    whole save, which ``message`` then states.
    """

    def __init__(self, problems: Sequence[QuotaProblem], message: str = "") -> None:
        super().__init__(message or "; ".join(str(problem) for problem in problems))
        self.problems = list(problems)


@dataclass(frozen=True)
class QuotaChange:
    """The amount to store for one owner, metric and period (None deletes)."""

    owner: Membership | Team
    metric: str
    period: DateRange
    amount: Decimal | None
    # Where the change comes from in an imported file, for error messages.
    line: int | None = None
    value: str = ""
    # The stored amount the editor saw, as amount_text writes it ("" for none).
    # None skips the check, as imports do.
    seen: str | None = None


@dataclass
class QuotaSaveResult:
    created: int = 0
    updated: int = 0
    deleted: int = 0
    unchanged: int = 0

    @property
    def changed(self) -> int:
        return self.created + self.updated + self.deleted


def _owner_filter(owner: Membership | Team) -> dict:
    if isinstance(owner, Membership):
        return {"member": owner}
    return {"team": owner}


def _owner_key(owner: Membership | Team) -> tuple[str, int]:
    return ("member" if isinstance(owner, Membership) else "team", owner.pk)


def _quota_values(quota: Quota, owner: Membership | Team) -> dict:
    return {
        "member": owner.display_name if isinstance(owner, Membership) else None,
        "team": owner.name if isinstance(owner, Team) else None,
        "metric": quota.metric,
        "period_start": quota.period_start.isoformat(),
        "period_end": quota.period_end.isoformat(),
        "amount": amount_text(quota.amount, quota.metric),
        "currency": quota.currency,
    }


def _amount_problem(amount: Decimal, metric: str) -> str:
    if amount < 0:
        return "must not be negative"
    if len(str(int(amount))) > MAX_WHOLE_DIGITS:
        return f"is too large (at most {MAX_WHOLE_DIGITS} digits)"
    if metric == QuotaMetric.DEAL_COUNT and amount != amount.to_integral_value():
        return "must be a whole number of deals"
    if amount != amount.quantize(Decimal("0.01")):
        return "has more than 2 decimal places"
    return ""


def _stored_for(
    changes: Sequence[QuotaChange], *, lock: bool
) -> dict[tuple[str, int, str], list[Quota]]:
    """Return the stored quotas that overlap any change, in one query.

    They are keyed by (owner kind, owner id, metric). With ``lock`` the rows
    are locked until the transaction ends.
    """
    if not changes:
        return {}
    start = min(change.period.start for change in changes)
    end = max(change.period.end for change in changes)
    member_ids = {c.owner.pk for c in changes if isinstance(c.owner, Membership)}
    team_ids = {c.owner.pk for c in changes if isinstance(c.owner, Team)}
    queryset = Quota.objects.filter(
        Q(member_id__in=member_ids) | Q(team_id__in=team_ids),
        metric__in={change.metric for change in changes},
        period_start__lt=end,
        period_end__gt=start,
    )
    if lock:
        queryset = queryset.select_for_update()
    stored: dict[tuple[str, int, str], list[Quota]] = defaultdict(list)
    for quota in queryset.order_by("pk"):
        kind = "member" if quota.member_id else "team"
        stored[(kind, quota.member_id or quota.team_id, quota.metric)].append(quota)
    return stored


def _match(
    change: QuotaChange, stored: dict[tuple[str, int, str], list[Quota]]
) -> tuple[Quota | None, Quota | None]:
    """Return the stored quota of exactly the change's period, and a conflict.

    A conflict is a stored quota over another period that overlaps it.
    """
    exact = conflict = None
    for quota in stored.get((*_owner_key(change.owner), change.metric), []):
        if quota.period_end <= change.period.start:
            continue
        if quota.period_start >= change.period.end:
            continue
        same = (quota.period_start, quota.period_end) == (
            change.period.start,
            change.period.end,
        )
        if same:
            exact = quota
        elif conflict is None:
            conflict = quota
    return exact, conflict


def quota_problems(
    changes: Sequence[QuotaChange], *, lock: bool = False
) -> tuple[list[QuotaProblem], dict]:
    """Check ``changes`` against each other and the stored quotas.

    Returns the problems and the stored quotas (as ``_stored_for``), so a
    caller that finds none can write with the rows it read.
    """
    problems = []
    seen: dict[tuple, QuotaChange] = {}
    for change in changes:
        key = (*_owner_key(change.owner), change.metric, change.period.start)
        if key in seen:
            earlier = seen[key].line
            where = f" (already on line {earlier})" if earlier else ""
            problems.append(
                _problem(change, f"is a second quota for this period{where}")
            )
            continue
        seen[key] = change
        if change.amount is not None:
            message = _amount_problem(change.amount, change.metric)
            if message:
                problems.append(_problem(change, message))

    stored = _stored_for(changes, lock=lock)
    for change in changes:
        exact, conflict = _match(change, stored)
        current = amount_text(exact.amount if exact else None, change.metric)
        if change.seen is not None and change.seen != current:
            now = current or "no quota"
            problems.append(
                _problem(
                    change,
                    f"was not saved: someone else changed this quota to {now} "
                    "after the page was opened. Reload the page to see it.",
                )
            )
            continue
        if conflict is not None and not (exact is None and change.amount is None):
            last_day = conflict.period_end - dt.timedelta(days=1)
            problems.append(
                _problem(
                    change,
                    "cannot be saved: a quota of "
                    f"{amount_text(conflict.amount, conflict.metric)} is set for "
                    f"{conflict.period_start:%Y-%m-%d} to {last_day:%Y-%m-%d}, "
                    "which overlaps this period. Set the quota period in the "
                    "organisation settings back to that length to change it.",
                )
            )
    return problems, stored


def _problem(change: QuotaChange, message: str) -> QuotaProblem:
    value = change.value or amount_text(change.amount, change.metric)
    column = "amount" if change.line else ""
    return QuotaProblem(
        str(change.owner), value, message, change.line, column, change.owner
    )


# Rows per INSERT, UPDATE or DELETE statement when many quotas change at once.
BATCH_SIZE = 1_000


def _audit_entry(
    organization: Organization,
    actor: User | None,
    action: str,
    quota: Quota,
    old: dict | None = None,
    new: dict | None = None,
) -> AuditLog:
    """Return an unsaved audit log entry for ``quota``.

    The fields are those spm.services.audit_log_write sets. That function
    inserts one row per call, and an import of thousands of quotas inserts
    its entries in batches instead.
    """
    return AuditLog(
        organization=organization,
        actor=actor,
        action=action,
        object_type=quota._meta.label_lower,
        object_id=str(quota.public_id),
        old=old,
        new=new,
    )


def write_changes(
    *,
    organization: Organization,
    actor: User | None,
    changes: Sequence[QuotaChange],
    stored: dict,
    action: str = "quota.create",
) -> QuotaSaveResult:
    """Create, update and delete the quotas of ``changes``, and audit each one.

    ``stored`` comes from ``quota_problems(changes, lock=True)`` in the same
    transaction, which must have found no problem. ``action`` names the
    audit entries of created quotas. Rows are written in batches.
    """
    result = QuotaSaveResult()
    creates, updates, deletes, entries = [], [], [], []
    now = timezone.now()
    for change in changes:
        exact, _conflict = _match(change, stored)
        currency = grid.quota_currency(organization, change.metric)
        if exact is None and change.amount is None:
            result.unchanged += 1
        elif exact is None:
            quota = Quota(
                organization=organization,
                metric=change.metric,
                period_start=change.period.start,
                period_end=change.period.end,
                amount=change.amount,
                currency=currency,
                **_owner_filter(change.owner),
            )
            creates.append(quota)
            new = _quota_values(quota, change.owner)
            entries.append(_audit_entry(organization, actor, action, quota, new=new))
        elif change.amount is None:
            deletes.append(exact.pk)
            old = _quota_values(exact, change.owner)
            entries.append(
                _audit_entry(organization, actor, "quota.delete", exact, old=old)
            )
        elif exact.amount == change.amount and exact.currency == currency:
            result.unchanged += 1
        else:
            old = _quota_values(exact, change.owner)
            exact.amount = change.amount
            exact.currency = currency
            exact.updated_at = now
            updates.append(exact)
            new = _quota_values(exact, change.owner)
            entries.append(
                _audit_entry(organization, actor, "quota.update", exact, old, new)
            )

    _insert_all(creates)
    _update_all(organization, updates)
    for first in range(0, len(deletes), BATCH_SIZE):
        Quota.objects.filter(pk__in=deletes[first : first + BATCH_SIZE]).delete()
    AuditLog.unscoped.bulk_create(entries, batch_size=BATCH_SIZE)
    result.created, result.updated = len(creates), len(updates)
    result.deleted = len(deletes)
    return result


def _update_all(organization: Organization, quotas: list[Quota]) -> None:
    """Write the amount, currency and updated_at of ``quotas``.

    One UPDATE per row through executemany. Django's bulk_update builds a
    CASE expression per row in Python instead, which took about a second
    per thousand rows on a 2-core development machine.
    """
    if not quotas:
        return
    ops = connection.ops
    table = ops.quote_name(Quota._meta.db_table)
    sql = (
        f"UPDATE {table} SET amount = %s, currency = %s, updated_at = %s "
        "WHERE id = %s AND organization_id = %s"
    )
    params = [
        (
            ops.adapt_decimalfield_value(quota.amount, 18, 2),
            quota.currency,
            ops.adapt_datetimefield_value(quota.updated_at),
            quota.pk,
            organization.pk,
        )
        for quota in quotas
    ]
    with connection.cursor() as cursor:
        cursor.executemany(sql, params)


def _insert_all(quotas: list[Quota]) -> None:
    """Insert ``quotas``. A quota that another request inserted for the same
    owner and period since the check becomes a QuotaError."""
    try:
        with transaction.atomic():
            Quota.objects.bulk_create(quotas, batch_size=BATCH_SIZE)
    except IntegrityError:
        raise QuotaError(
            [],
            "Someone saved quotas for the same period at the same time, so "
            "nothing was saved: reload the page and try again.",
        ) from None


def _check_period(organization: Organization, period: DateRange) -> None:
    expected = quota_period_starting(organization, period.start)
    if expected is None or expected.end != period.end:
        raise ValueError(
            f"{period.start:%Y-%m-%d} to {period.end:%Y-%m-%d} is not one of the "
            f"organisation's quota periods (quotas are set per "
            f"{organization.quota_period})."
        )


def _check_metric(metric: str) -> None:
    if metric not in QuotaMetric.values:
        raise ValueError(
            f"Invalid quota metric {metric!r}: use {', '.join(QuotaMetric.values)}."
        )


@dataclass(frozen=True)
class QuotaCell:
    """One cell of the grid: an owner and the amount to store (None empties it)."""

    owner: Membership | Team
    amount: Decimal | None
    # The text the amount was read from, for error messages.
    value: str = ""
    # The stored amount the page showed, as amount_text writes it.
    seen: str | None = None


@transaction.atomic
def quotas_save(
    *,
    organization: Organization,
    actor: User | None,
    period_start: dt.date,
    period_end: dt.date,
    metric: str,
    rows: Iterable[QuotaCell],
) -> QuotaSaveResult:
    """Save the cells of one quota grid: create, change, or delete when emptied.

    Raises QuotaError listing every invalid cell, and then saves nothing.
    Cells whose amount equals the stored one are neither written nor audited.
    """
    _check_metric(metric)
    period = DateRange(period_start, period_end, "")
    _check_period(organization, period)
    changes = [
        QuotaChange(
            cell.owner, metric, period, cell.amount, value=cell.value, seen=cell.seen
        )
        for cell in rows
    ]
    return apply_changes(organization=organization, actor=actor, changes=changes)


def apply_changes(
    *,
    organization: Organization,
    actor: User | None,
    changes: Sequence[QuotaChange],
) -> QuotaSaveResult:
    """Check ``changes`` under row locks, then write and audit them.

    Call it inside a transaction, which holds the locks. Raises QuotaError,
    before writing anything, when any change is invalid.
    """
    for change in changes:
        if change.owner.organization_id != organization.pk:
            raise ValueError(f"{change.owner} is not in {organization.name}.")
    problems, stored = quota_problems(changes, lock=True)
    if problems:
        raise QuotaError(problems)
    return write_changes(
        organization=organization, actor=actor, changes=changes, stored=stored
    )


@dataclass
class QuotaCopyResult:
    previous: DateRange
    copied: int = 0
    # Owners whose quota for the period was already set: left as they were.
    kept: int = 0
    # Previous quotas in another currency than the organisation's, not copied.
    skipped_currency: int = 0


@transaction.atomic
def quotas_copy_previous(
    *,
    organization: Organization,
    actor: User | None,
    period_start: dt.date,
    period_end: dt.date,
    metric: str,
) -> QuotaCopyResult:
    """Copy the previous period's quotas into the empty cells of this period.

    Only the grid's members (see goals.grid.grid_members) and the teams get
    copies. A cell that already has a quota, or that a quota over another
    period length overlaps, is left as it is and counted as kept.
    """
    _check_metric(metric)
    period = DateRange(period_start, period_end, "")
    _check_period(organization, period)
    previous = previous_quota_period(organization, period)
    result = QuotaCopyResult(previous=previous)

    owners: list[Membership | Team] = [
        *grid.grid_members(period, metric),
        *Team.objects.order_by("name", "pk"),
    ]
    by_owner = {_owner_key(owner): owner for owner in owners}
    previous_quotas = Quota.objects.filter(
        Q(member_id__in=[k[1] for k in by_owner if k[0] == "member"])
        | Q(team_id__in=[k[1] for k in by_owner if k[0] == "team"]),
        metric=metric,
        period_start=previous.start,
        period_end=previous.end,
    ).order_by("pk")
    currency = grid.quota_currency(organization, metric)

    changes = []
    for quota in previous_quotas:
        if quota.currency != currency:
            result.skipped_currency += 1
            continue
        if quota.member_id:
            owner = by_owner[("member", quota.member_id)]
        else:
            owner = by_owner[("team", quota.team_id)]
        changes.append(QuotaChange(owner, metric, period, quota.amount))

    stored = _stored_for(changes, lock=True)
    empty = []
    for change in changes:
        exact, conflict = _match(change, stored)
        if exact is None and conflict is None:
            empty.append(change)
        else:
            result.kept += 1
    written = write_changes(
        organization=organization,
        actor=actor,
        changes=empty,
        stored=stored,
        action="quota.copy",
    )
    result.copied = written.created
    return result
