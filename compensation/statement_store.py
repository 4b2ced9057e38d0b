"""Storing calculated statements: many members per transaction, few queries.

``store_statements`` writes what ``calculate_statements`` computed for a
batch of members in one transaction. A draft's calculated lines are one
``StatementLineBlock`` (see ``compensation.line_blocks``), written only when
it changed. A draft whose lines became rows, because a dispute was raised
on one, keeps its rows. Those that changed are replaced, with one DELETE
and one INSERT for the whole batch, and a line equal in every column stays
as it is. An approved or paid statement is locked, and a changed total goes
to the member's next draft as an adjustment line, one member at a time.
Manual and adjustment lines already on a draft are kept and follow the new
calculated lines.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from decimal import ROUND_HALF_UP, Decimal

import orjson
from django.db import connection, transaction
from django.db.models import Sum
from django.utils import timezone

from compensation import json_rows, line_blocks, payout_diff
from compensation.direct import DirectStatement
from compensation.engine import Statement as ComputedStatement
from compensation.engine import StatementLine as EngineLine
from compensation.engine.tiers import tier_text
from compensation.fields import compact_json, compact_json_loads
from compensation.json_rows import execute_with_rows as _json_rows_insert
from compensation.json_rows import insert_sql as _json_rows_insert_sql
from compensation.models import (
    CalculationRun,
    Dispute,
    Statement,
    StatementLine,
    StatementLineBlock,
    StatementSnapshot,
)
from goals.calendar import DateRange, add_months
from spm.models import Membership
from spm.services import audit_log_write

Status = Statement.Status
Kind = StatementLine.Kind
ZERO = Decimal("0.00")
CENT = Decimal("0.01")


# The columns that differ between calculated lines, in the order of
# ``_line_values``. ``_line_constants`` fills the others.
_LINE_FIELDS = ("statement_id", "order", *line_blocks.FIELDS)

# The position in ``_LINE_FIELDS`` of each numeric column, and its scale.
_DECIMAL_SCALES = tuple(
    (
        _LINE_FIELDS.index(name),
        Decimal(1).scaleb(-StatementLine._meta.get_field(name).decimal_places),
    )
    for name in ("credit_share", "base_amount", "rate", "amount")
)

# The fields of an existing draft that a run recalculates.
_DRAFT_FIELDS = ("currency", "notes", "run", "calculated_at", "total")

_SNAPSHOT_FIELDS = (
    "organization_id",
    "statement_id",
    "run_id",
    "total",
    "currency",
    "deals",
    "other_lines",
    "created_at",
)


def _postgresql() -> bool:
    """Return whether the store may use its PostgreSQL statements.

    Elsewhere (SQLite, for the demo and the tests without PostgreSQL) it
    writes the same rows through the ORM, with more queries.
    """
    return connection.vendor == "postgresql"


def _money(amount: Decimal) -> str:
    return f"{amount:,.2f}"


def _total_refresh(statement: Statement) -> None:
    """Set the statement's total to the exact sum of its lines, and save it."""
    total = StatementLine.objects.filter(statement=statement).aggregate(
        total=Sum("amount")
    )["total"]
    block_total = (
        StatementLineBlock.unscoped.filter(statement_id=statement.pk)
        .values_list("total", flat=True)
        .first()
    )
    # SQLite's SUM drops trailing zeros (1174.5), so the total gets its cents.
    total = (total or ZERO) + (block_total or ZERO)
    statement.total = total.quantize(CENT)
    statement.save(update_fields=["total"])


def _next_order(statement: Statement) -> int:
    """Return the order of a line added after all of the statement's lines."""
    last = (
        StatementLine.objects.filter(statement=statement)
        .order_by("-order")
        .values_list("order", flat=True)
        .first()
    )
    in_block = (
        StatementLineBlock.unscoped.filter(statement_id=statement.pk)
        .values_list("line_count", flat=True)
        .first()
    )
    return max(0 if last is None else last + 1, in_block or 0)


def _next_draft(statement: Statement) -> Statement:
    """Return the member's first draft after ``statement``, creating the next one."""
    draft = (
        Statement.objects.select_for_update()
        .filter(
            member_id=statement.member_id,
            status=Status.DRAFT,
            period_start__gte=statement.period_end,
        )
        .order_by("period_start")
        .first()
    )
    if draft is not None:
        return draft
    months = (
        (statement.period_end.year - statement.period_start.year) * 12
        + statement.period_end.month
        - statement.period_start.month
    )
    start = statement.period_end
    end = add_months(start, months)
    # A later period can exist only if it was approved too; skip past those.
    while Statement.objects.filter(
        member_id=statement.member_id, period_start=start, period_end=end
    ).exists():
        start, end = end, add_months(end, months)
    return Statement.objects.create(
        organization_id=statement.organization_id,
        member_id=statement.member_id,
        period_start=start,
        period_end=end,
        currency=statement.currency,
    )


def _adjust_locked(
    locked: Statement,
    computed_total: Decimal,
    run: CalculationRun,
    actor,
    calculated: Decimal,
    carried: Decimal,
) -> StatementLine | None:
    """Carry a change to a locked statement's total to the next draft, if any.

    The difference is taken against the locked statement's ``calculated``
    lines plus every adjustment already ``carried`` for the period, so a
    rerun adds nothing twice.
    """
    difference = computed_total - calculated - carried
    if difference == 0:
        return None
    draft = _next_draft(locked)
    reason = (
        f"the recalculated total is {_money(computed_total)} {locked.currency}, "
        f"{_money(calculated + carried)} was already paid or carried"
    )
    line = StatementLine.objects.create(
        organization_id=locked.organization_id,
        statement=draft,
        order=_next_order(draft),
        kind=Kind.ADJUSTMENT,
        line_type="adjustment",
        explanation=f"adjustment for {locked.period_label}: {reason}",
        amount=difference,
        reason=reason,
        adjusts_period_start=locked.period_start,
        adjusts_period_end=locked.period_end,
    )
    draft.run = run
    draft.save(update_fields=["run"])
    _total_refresh(draft)
    audit_log_write(
        organization=locked.member.organization,
        actor=actor,
        action="compensation.statement_adjusted",
        obj=draft,
        old={"locked_statement": str(locked.public_id)},
        new={"amount": str(difference), "explanation": line.explanation},
    )
    return line


def _block_values(line: EngineLine, share: Decimal | None) -> list:
    """Return a calculated line's values, in the order of ``line_blocks.FIELDS``."""
    return [
        line.kind,
        line.component_id,
        line.component,
        line.plan_version_id,
        line.plan_version,
        line.deal_id,
        line.deal_name,
        line.date,
        share,
        line.base,
        line.rate,
        tier_text(line.explanation),
        line.explanation,
        line.amount,
    ]


def _line_values(
    line: EngineLine, order: int, share: Decimal | None, statement: Statement
) -> tuple:
    """Return a calculated line's column values, in the order of ``_LINE_FIELDS``."""
    return (statement.pk, order, *_block_values(line, share))


def _line_constants(organization_id: int, now) -> dict[str, tuple[str, list]]:
    """Return the SQL and parameters of the columns every calculated line shares."""
    return {
        "organization_id": ("%s", [organization_id]),
        # PostgreSQL's random UUID, a version 4 UUID like uuid.uuid4.
        "public_id": ("gen_random_uuid()", []),
        "kind": ("%s", [Kind.NORMAL]),
        "reason": ("%s", [""]),
        "created_at": ("%s", [now]),
    }


def _drafts_update(statements: list[Statement]) -> None:
    """Save the recalculated fields of existing drafts. One UPDATE per chunk."""
    if not _postgresql():
        Statement.objects.bulk_update(statements, _DRAFT_FIELDS)
        return
    quote = connection.ops.quote_name
    sql = (
        f"UPDATE {quote(Statement._meta.db_table)} AS statement SET "
        "currency = row ->> 1, notes = row -> 2, run_id = (row ->> 3)::bigint, "
        "calculated_at = (row ->> 4)::timestamp with time zone, "
        "total = (row ->> 5)::numeric "
        "FROM jsonb_array_elements(%s::jsonb) AS row "
        "WHERE statement.id = (row ->> 0)::bigint"
    )
    rows = [
        (
            statement.pk,
            statement.currency,
            statement.notes,
            statement.run_id,
            statement.calculated_at,
            statement.total,
        )
        for statement in statements
    ]
    _json_rows_insert(sql, rows)


# Every column of a new statement but its id.
_NEW_FIELDS = tuple(
    field.attname for field in Statement._meta.concrete_fields if not field.primary_key
)


def _statements_insert(statements: list[Statement]) -> None:
    """Insert new statements and set their ids. One INSERT per chunk.

    In a profile of 1,000 new statements, Django's bulk_create spent about
    0.13 ms per statement preparing each field of each object for its query.
    """
    if not _postgresql():
        Statement.objects.bulk_create(statements)
        return
    sql, params = _json_rows_insert_sql(Statement, _NEW_FIELDS)
    # A run stores one statement per member and period.
    sql += " RETURNING id, member_id"
    by_member = {statement.member_id: statement for statement in statements}
    rows = [
        [getattr(statement, name) for name in _NEW_FIELDS] for statement in statements
    ]
    with connection.cursor() as cursor:
        for start in range(0, len(rows), json_rows.INSERT_CHUNK):
            payload = orjson.dumps(
                rows[start : start + json_rows.INSERT_CHUNK], default=str
            ).decode()
            cursor.execute(sql, [*params, payload])
            for pk, member_id in cursor.fetchall():
                by_member[member_id].pk = pk
    for statement in statements:
        statement._state.adding = False
        statement._state.db = connection.alias


def _snapshots_store(
    computed: list[tuple[Statement, ComputedStatement]],
    run: CalculationRun,
    now,
) -> None:
    """Store what ``run`` computed for each statement; a rerun replaces it.

    The same rows as payout_diff.snapshot_store, for many statements at once.
    """
    rows = []
    for statement, result in computed:
        if isinstance(result, DirectStatement):
            deals, other_lines = result.deals, []
        else:
            deals, other_lines = payout_diff.snapshot_content(result)
        rows.append(
            (
                statement.organization_id,
                statement.pk,
                run.pk,
                result.total,
                result.currency,
                deals,
                other_lines,
                now,
            )
        )
    conflict = ("organization_id", "statement_id", "run_id")
    if not _postgresql():
        snapshots = []
        for row in rows:
            values = dict(zip(_SNAPSHOT_FIELDS, row, strict=True))
            for name in ("deals", "other_lines"):
                # Decimals and dates as text, as the PostgreSQL path sends them.
                values[name] = compact_json_loads(compact_json(values[name]))
            snapshots.append(StatementSnapshot(**values))
        StatementSnapshot.objects.bulk_create(
            snapshots,
            update_conflicts=True,
            unique_fields=[name.removesuffix("_id") for name in conflict],
            update_fields=["total", "currency", "deals", "other_lines", "created_at"],
        )
        return
    # The deal entries are bytea columns, sent as bytes. psycopg sends the
    # statements of executemany together, in a pipeline.
    quote = connection.ops.quote_name
    columns = ", ".join(
        quote(StatementSnapshot._meta.get_field(name).column)
        for name in _SNAPSHOT_FIELDS
    )
    updates = ", ".join(
        f"{name} = EXCLUDED.{name}"
        for name in ("total", "currency", "deals", "other_lines")
    )
    sql = (
        f"INSERT INTO {quote(StatementSnapshot._meta.db_table)} ({columns}) "
        f"VALUES ({', '.join(['%s'] * len(_SNAPSHOT_FIELDS))}) "
        f"ON CONFLICT ({', '.join(conflict)}) DO UPDATE SET {updates}"
    )
    deals_index = _SNAPSHOT_FIELDS.index("deals")
    others_index = _SNAPSHOT_FIELDS.index("other_lines")
    params = []
    for row in rows:
        values = list(row)
        values[deals_index] = compact_json(values[deals_index])
        values[others_index] = compact_json(values[others_index])
        params.append(values)
    with connection.cursor() as cursor:
        cursor.executemany(sql, params)


def _lines_insert(rows: list[tuple], organization_id: int, now) -> None:
    """Insert calculated lines given as ``_line_values`` tuples."""
    if not _postgresql():
        StatementLine.objects.bulk_create(
            StatementLine(
                organization_id=organization_id,
                public_id=uuid.uuid4(),
                kind=Kind.NORMAL,
                reason="",
                created_at=now,
                **dict(zip(_LINE_FIELDS, row, strict=True)),
            )
            for row in rows
        )
        return
    sql, params = _json_rows_insert_sql(
        StatementLine, _LINE_FIELDS, constants=_line_constants(organization_id, now)
    )
    _json_rows_insert(sql, rows, params)


def _lines_delete(line_ids: list[int]) -> None:
    """Delete these statement lines, unlinking their disputes.

    A dispute keeps its own copy of the line, so its link is set to NULL as
    the foreign key's SET_NULL does, but without loading the lines first.
    """
    if not line_ids:
        return
    Dispute.objects.filter(line_id__in=line_ids).update(line=None)
    if not _postgresql():
        StatementLine.objects.filter(pk__in=line_ids).delete()
        return
    table = connection.ops.quote_name(StatementLine._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {table} WHERE id = ANY(%s::bigint[])", [line_ids])


def _as_stored(values: tuple) -> tuple:
    """Return a line's ``_line_values`` as the database returns them once stored.

    The numeric columns round half away from zero to their scale.
    """
    stored = list(values)
    for index, scale in _DECIMAL_SCALES:
        if stored[index] is not None:
            stored[index] = stored[index].quantize(scale, rounding=ROUND_HALF_UP)
    return tuple(stored)


StoredLines = dict[int, list[tuple[int, tuple]]]
OtherLines = dict[int, list[tuple[int, int, Decimal]]]


def _draft_lines(statement_ids: list[int]) -> tuple[StoredLines, OtherLines]:
    """Return the drafts' calculated lines and their other lines. One query.

    The first maps a statement id to its calculated lines as ``(id,
    _line_values)``, the second to its manual and adjustment lines as
    ``(id, order, amount)``, each in line order.
    """
    calculated: StoredLines = defaultdict(list)
    others: OtherLines = defaultdict(list)
    order_index = _LINE_FIELDS.index("order")
    amount_index = _LINE_FIELDS.index("amount")
    # The statement ids come from the organisation's own statements, so the
    # tenant filter is left out. With it and statistics from before a large
    # run, PostgreSQL combined the organisation index with the statement
    # index and read an index entry for every line of the organisation.
    rows = (
        StatementLine.unscoped.filter(statement_id__in=statement_ids)
        .order_by("order", "pk")
        .values_list("pk", "kind", *_LINE_FIELDS)
    )
    for pk, kind, *values in rows:
        statement_id = values[0]
        if kind == Kind.NORMAL:
            calculated[statement_id].append((pk, tuple(values)))
        else:
            others[statement_id].append((pk, values[order_index], values[amount_index]))
    return calculated, others


def _lines_reorder(orders: list[tuple[int, int]]) -> None:
    """Set the ``order`` of lines, given as ``(id, order)``. One UPDATE."""
    if not orders:
        return
    if not _postgresql():
        StatementLine.objects.bulk_update(
            [StatementLine(pk=pk, order=order) for pk, order in orders], ["order"]
        )
        return
    quote = connection.ops.quote_name
    sql = (
        f"UPDATE {quote(StatementLine._meta.db_table)} AS line "
        'SET "order" = (row ->> 1)::integer '
        "FROM jsonb_array_elements(%s::jsonb) AS row "
        "WHERE line.id = (row ->> 0)::bigint"
    )
    _json_rows_insert(sql, orders)


def _changed_lines(
    old: list[tuple[int, tuple]], new: list[tuple]
) -> tuple[list[int], list[tuple]]:
    """Compare stored calculated lines with new ones, position by position.

    Returns the ids of the stored lines to delete and the new rows to
    insert. A line that is the same in every column stays as it is, with
    its id and any dispute linked to it.
    """
    stale = []
    added = []
    for index in range(max(len(old), len(new))):
        stored = old[index] if index < len(old) else None
        row = new[index] if index < len(new) else None
        if stored is not None and row is not None and stored[1] == _as_stored(row):
            continue
        if stored is not None:
            stale.append(stored[0])
        if row is not None:
            added.append(row)
    return stale, added


def _stored_amount(amount: Decimal) -> Decimal:
    """Return ``amount`` as a numeric(18, 2) column stores it (half away from 0)."""
    if amount.same_quantum(CENT):
        return amount
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


def _locked_totals(
    locked: list[Statement], period: DateRange
) -> tuple[dict[int, Decimal], dict[int, Decimal]]:
    """Return the locked statements' calculated totals, and what was carried.

    The first maps a statement id to the sum of its calculated lines, the
    second a member id to the adjustments already written for ``period``.
    Two queries.
    """
    calculated = dict(
        StatementLine.objects.filter(
            statement_id__in=[statement.pk for statement in locked],
            kind=Kind.NORMAL,
        )
        .order_by()
        .values("statement_id")
        .annotate(total=Sum("amount"))
        .values_list("statement_id", "total")
    )
    carried = dict(
        StatementLine.objects.filter(
            kind=Kind.ADJUSTMENT,
            statement__member_id__in=[statement.member_id for statement in locked],
            adjusts_period_start=period.start,
            adjusts_period_end=period.end,
        )
        .order_by()
        .values("statement__member_id")
        .annotate(total=Sum("amount"))
        .values_list("statement__member_id", "total")
    )
    return calculated, carried


def _plan_lookups_by_index() -> None:
    """Plan the rest of the transaction, foreign key checks included, with indexes.

    PostgreSQL checks the foreign keys of the new lines and snapshots at
    commit, with plans it caches for the connection's life. When the
    statistics of compensation_statement predate the run, the first batch
    plans those checks while the table holds only that batch, so a
    sequential scan looks cheapest. Each check then reads every statement
    stored so far. In bench/compensation.py with 1,000 members in batches of
    50 (PostgreSQL 15), a check took 0.002 ms in the first batch and 0.05 ms
    in the last, and the run used 60% more PostgreSQL CPU time. With
    sequential scans disabled until the transaction ends, the checks use the
    primary key, and so do the store's own lookups by id.

    NOTE: a plan cached on the connection before its first store, by a
    line written elsewhere, is kept as it is.
    """
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT set_config('enable_seqscan', 'off', true)")


@transaction.atomic
def store_statements(
    computed: list[tuple[Membership, ComputedStatement]],
    period: DateRange,
    run: CalculationRun,
    actor,
) -> list[tuple[str, StatementLine | None]]:
    """Store the members' calculated statements of ``period``, in one transaction.

    Returns, in the order of ``computed``, what happened to each member
    ("calculated" or "locked") and the adjustment line a locked statement
    got, if any. About ten queries, whatever the number of members, plus
    one INSERT per ``INSERT_CHUNK`` lines and a few per locked
    statement whose total changed.
    """
    if not computed:
        return []
    _plan_lookups_by_index()
    existing = {
        statement.member_id: statement
        for statement in Statement.objects.select_for_update().filter(
            member_id__in=[member.pk for member, _ in computed],
            period_start=period.start,
            period_end=period.end,
        )
    }
    now = timezone.now()
    locked: list[tuple[Statement, ComputedStatement]] = []
    drafts: list[tuple[Statement, ComputedStatement]] = []
    new: list[tuple[Statement, ComputedStatement]] = []
    for member, result in computed:
        statement = existing.get(member.pk)
        if statement is not None and statement.is_locked:
            statement.member = member
            locked.append((statement, result))
            continue
        if statement is None:
            statement = Statement(
                organization_id=member.organization_id,
                member=member,
                period_start=period.start,
                period_end=period.end,
            )
            new.append((statement, result))
        else:
            drafts.append((statement, result))
        statement.currency = result.currency
        statement.notes = list(result.notes)
        statement.run = run
        statement.calculated_at = now

    # Manual and adjustment lines stay, after the calculated lines. A draft
    # whose calculated lines are rows (a dispute was raised on one) keeps
    # them. Every other draft's calculated lines are one block.
    stored: StoredLines = {}
    other_lines: OtherLines = {}
    if drafts:
        stored, other_lines = _draft_lines([statement.pk for statement, _ in drafts])
    reordered = []
    encoded: list[tuple[Statement, line_blocks.BlockContent]] = []
    for statement, result in drafts + new:
        block = result.block if isinstance(result, DirectStatement) else None
        if statement.pk in stored and block is not None:
            total = block.total
            line_count = block.line_count
        elif statement.pk in stored:
            total = sum((_stored_amount(line.amount) for line in result.lines), ZERO)
            line_count = len(result.lines)
        else:
            if block is None:
                shares = {credit.deal_id: credit.share for credit in result.credits}
                block = line_blocks.encode(
                    [
                        _block_values(line, shares.get(line.deal_id))
                        for line in result.lines
                    ]
                )
            encoded.append((statement, block))
            total = block.total
            line_count = block.line_count
        statement_other_lines = other_lines.get(statement.pk, [])
        for order, (pk, old_order, amount) in enumerate(
            statement_other_lines, start=line_count
        ):
            total += amount
            if old_order != order:
                reordered.append((pk, order))
        statement.total = total
    if new:
        _statements_insert([statement for statement, _ in new])
    if drafts:
        _drafts_update([statement for statement, _ in drafts])

    # Only the line rows that changed are replaced, and only the blocks whose
    # digest changed are written.
    stale_ids = []
    rows = []
    for statement, result in drafts:
        stored_rows = stored.get(statement.pk)
        if not stored_rows:
            continue
        if isinstance(result, DirectStatement):
            # The block's lines, already rounded as the columns store them,
            # from the one calculation that also gave the total and snapshot.
            values = line_blocks.content_values(result.block)
            new_rows = [
                (statement.pk, order, *line) for order, line in enumerate(values)
            ]
        else:
            shares = {credit.deal_id: credit.share for credit in result.credits}
            new_rows = [
                _line_values(line, order, shares.get(line.deal_id), statement)
                for order, line in enumerate(result.lines)
            ]
        stale, added = _changed_lines(stored_rows, new_rows)
        stale_ids += stale
        rows += added
    block_digests = line_blocks.digests([statement.pk for statement, _ in drafts])
    blocks = []
    emptied = []
    for statement, block in encoded:
        if not block.line_count:
            if statement.pk in block_digests:
                emptied.append(statement.pk)
            continue
        if block_digests.get(statement.pk) != block.digest:
            block.statement_id = statement.pk
            blocks.append(block)
    organization_id = computed[0][0].organization_id
    _lines_delete(stale_ids)
    _lines_reorder(reordered)
    if rows:
        _lines_insert(rows, organization_id, now)
    line_blocks.blocks_delete(emptied)
    line_blocks.blocks_write(blocks, organization_id, now)
    _snapshots_store(locked + drafts + new, run, now)

    adjustments: dict[int, StatementLine | None] = {}
    if locked:
        calculated, carried = _locked_totals([s for s, _ in locked], period)
        for statement, result in locked:
            adjustments[statement.member_id] = _adjust_locked(
                statement,
                result.total,
                run,
                actor,
                calculated.get(statement.pk) or ZERO,
                carried.get(statement.member_id) or ZERO,
            )
    locked_ids = {statement.member_id for statement, _ in locked}
    return [
        ("locked", adjustments[member.pk])
        if member.pk in locked_ids
        else ("calculated", None)
        for member, _ in computed
    ]
