"""The calculated lines of a draft statement, stored as one block.

A run stores a draft's calculated lines as one ``StatementLineBlock`` row:
an array per line, encoded with orjson, in line order. PostgreSQL stores a
block of a few hundred lines in a fraction of the time the same lines take
as rows, each with its indexes and foreign key check. The statement's
manual and adjustment lines stay ``StatementLine`` rows, ordered after the
block's lines.

A block line's public id is derived from the statement and the line's own
values, so it stays the same while the line is unchanged. ``block_expand``
turns a block into ``StatementLine`` rows with those ids. Approval does it,
so approved and paid statements keep their lines as rows, and so does a
dispute raised on a line.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

import orjson
from django.db import connection

from compensation import json_rows
from compensation.engine.types import LineKind
from compensation.models import (
    Statement,
    StatementLine,
    StatementLineBlock,
)

# The values of a line in a block, in order: the columns of StatementLine
# that differ between calculated lines.
FIELDS = (
    "line_type",
    "component_id",
    "component_name",
    "plan_version_id",
    "plan_version_label",
    "deal_id",
    "deal_name",
    "credit_date",
    "credit_share",
    "base_amount",
    "rate",
    "tier",
    "explanation",
    "amount",
)

# The position of each numeric value, and the scale of its StatementLine column.
DECIMAL_SCALES = tuple(
    (
        FIELDS.index(name),
        Decimal(1).scaleb(-StatementLine._meta.get_field(name).decimal_places),
    )
    for name in ("credit_share", "base_amount", "rate", "amount")
)
_SCALES = {FIELDS[index]: scale for index, scale in DECIMAL_SCALES}
# The amount is never empty, while the other numbers may be.
_AMOUNT = FIELDS.index("amount")
_AMOUNT_SCALE = DECIMAL_SCALES[-1][1]
_OPTIONAL_SCALES = DECIMAL_SCALES[:-1]
_DATE = FIELDS.index("credit_date")
_DEAL = FIELDS.index("deal_id")
_LINE_TYPE = FIELDS.index("line_type")
ZERO = Decimal("0.00")


@dataclass
class BlockContent:
    """A statement's calculated lines, encoded for a ``StatementLineBlock``."""

    lines: bytes
    line_count: int
    total: Decimal
    digest: bytes
    clawback_deal_ids: list[int]
    # Set once the statement is stored.
    statement_id: int | None = None


def _stored_number(value: Decimal, scale: Decimal) -> Decimal:
    """Return ``value`` as a numeric column of ``scale`` stores it.

    The value is rounded half away from zero, and PostgreSQL's numeric has
    no negative zero, so -0.004 becomes 0.00.
    """
    # A value of that scale already is its own rounding, and the check is
    # about a third of the cost of quantize.
    if not value.same_quantum(scale):
        value = value.quantize(scale, rounding=ROUND_HALF_UP)
    if not value and value.is_signed():
        value = value.copy_abs()
    return value


def encode(rows: Sequence[list]) -> BlockContent:
    """Encode a statement's calculated lines, each a list of ``FIELDS`` values.

    Numbers are rounded half away from zero to the scale of their
    StatementLine column, as PostgreSQL rounds them into a row, and stored
    as their text. The total is the sum of the rounded amounts. The lists
    are changed in place.
    """
    total = ZERO
    clawbacks = []
    # Shares and rates repeat from line to line, and equal numbers round to
    # the same text.
    texts: list[dict[Decimal, str]] = [{} for _ in _OPTIONAL_SCALES]
    for values in rows:
        for (index, scale), known in zip(_OPTIONAL_SCALES, texts, strict=True):
            value = values[index]
            if value is None:
                continue
            text = known.get(value)
            if text is None:
                text = known[value] = str(_stored_number(value, scale))
            values[index] = text
        amount = _stored_number(values[_AMOUNT], _AMOUNT_SCALE)
        values[_AMOUNT] = str(amount)
        total += amount
        if values[_LINE_TYPE] == LineKind.CLAWBACK and values[_DEAL] is not None:
            clawbacks.append(values[_DEAL])
    return pack(rows, total, clawbacks)


def pack(
    rows: Sequence[list], total: Decimal, clawbacks: Iterable[int]
) -> BlockContent:
    """Encode lines whose numbers are already their stored text (see ``encode``).

    ``total`` is the sum of the lines' amounts and ``clawbacks`` the deal
    ids of their clawback lines.
    """
    lines = orjson.dumps(rows)
    return BlockContent(
        lines=lines,
        line_count=len(rows),
        total=total,
        digest=hashlib.blake2b(lines, digest_size=16).digest(),
        clawback_deal_ids=sorted(set(clawbacks)),
    )


def stored_amount(value: Decimal) -> Decimal:
    """Return a line's amount as its numeric column stores it."""
    return _stored_number(value, _AMOUNT_SCALE)


def number_text(value: Decimal, name: str) -> str:
    """Return the text a block stores for ``value`` in the numeric field ``name``."""
    return str(_stored_number(value, _SCALES[name]))


def line_public_ids(statement: Statement, lines: Sequence[list]) -> list[uuid.UUID]:
    """Return the public ids of a block's lines, given as their stored arrays.

    An id comes from the statement's public id, the line's own values and
    the number of equal lines before it. So a line keeps its id while it is
    unchanged, even when a rerun changes, adds or removes other lines.
    """
    prefix = statement.public_id.bytes
    seen: dict[bytes, int] = {}
    ids = []
    for values in lines:
        content = orjson.dumps(values)
        occurrence = seen.get(content, 0)
        seen[content] = occurrence + 1
        key = prefix + occurrence.to_bytes(4, "big") + content
        digest = hashlib.blake2b(key, digest_size=16).digest()
        ids.append(uuid.UUID(bytes=digest, version=4))
    return ids


def _parsed(values: list) -> list:
    """Turn a stored line's number texts and date text into values, in place."""
    for index, _ in DECIMAL_SCALES:
        if values[index] is not None:
            values[index] = Decimal(values[index])
    if values[_DATE] is not None:
        values[_DATE] = dt.date.fromisoformat(values[_DATE])
    return values


def content_values(content: BlockContent) -> list[list]:
    """Return the lines of encoded content as ``FIELDS`` values, in order."""
    return [_parsed(values) for values in orjson.loads(content.lines)]


def decode(block: StatementLineBlock, statement: Statement) -> list[StatementLine]:
    """Return the block's lines as unsaved StatementLine objects, in order."""
    stored = orjson.loads(bytes(block.lines))
    public_ids = line_public_ids(statement, stored)
    lines = []
    for order, (values, public_id) in enumerate(zip(stored, public_ids, strict=True)):
        _parsed(values)
        line = StatementLine(
            organization_id=statement.organization_id,
            public_id=public_id,
            statement=statement,
            order=order,
            kind=StatementLine.Kind.NORMAL,
            reason="",
            created_at=block.created_at,
            **dict(zip(FIELDS, values, strict=True)),
        )
        lines.append(line)
    return lines


def digests(statement_ids: Iterable[int]) -> dict[int, bytes]:
    """Return the digest of each of these statements' blocks. One query."""
    return {
        statement_id: bytes(digest)
        for statement_id, digest in StatementLineBlock.unscoped.filter(
            statement_id__in=list(statement_ids)
        ).values_list("statement_id", "digest")
    }


def blocks_write(blocks: list[BlockContent], organization_id: int, now) -> None:
    """Store these blocks, each replacing its statement's block if it has one."""
    if not blocks:
        return
    if connection.vendor != "postgresql":
        StatementLineBlock.unscoped.filter(
            statement_id__in=[block.statement_id for block in blocks]
        ).delete()
        StatementLineBlock.unscoped.bulk_create(
            StatementLineBlock(
                organization_id=organization_id,
                statement_id=block.statement_id,
                line_count=block.line_count,
                total=block.total,
                digest=block.digest,
                lines=block.lines,
                clawback_deal_ids=block.clawback_deal_ids,
                created_at=now,
            )
            for block in blocks
        )
        return
    table = connection.ops.quote_name(StatementLineBlock._meta.db_table)
    sql = (
        f"INSERT INTO {table} (statement_id, organization_id, line_count, total, "
        "digest, lines, clawback_deal_ids, created_at) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s::jsonb, %s) "
        "ON CONFLICT (statement_id) DO UPDATE SET line_count = EXCLUDED.line_count, "
        "total = EXCLUDED.total, digest = EXCLUDED.digest, lines = EXCLUDED.lines, "
        "clawback_deal_ids = EXCLUDED.clawback_deal_ids, "
        "created_at = EXCLUDED.created_at"
    )
    with connection.cursor() as cursor:
        cursor.executemany(
            sql,
            [
                (
                    block.statement_id,
                    organization_id,
                    block.line_count,
                    block.total,
                    block.digest,
                    block.lines,
                    orjson.dumps(block.clawback_deal_ids).decode(),
                    now,
                )
                for block in blocks
            ],
        )


def blocks_delete(statement_ids: list[int]) -> None:
    """Delete the blocks of these statements."""
    if statement_ids:
        StatementLineBlock.unscoped.filter(statement_id__in=statement_ids).delete()


def block_of(statement: Statement) -> StatementLineBlock | None:
    """Return the statement's block, or None. One query."""
    return StatementLineBlock.unscoped.filter(statement_id=statement.pk).first()


def block_expand(statement: Statement) -> int:
    """Replace the statement's block with StatementLine rows. Returns their number.

    The rows keep the block lines' order and public ids. The caller holds
    the statement's row lock, so a run cannot store a block at the same
    time. Three queries when there is a block, one otherwise.
    """
    block = block_of(statement)
    if block is None:
        return 0
    if connection.vendor != "postgresql":
        lines = decode(block, statement)
        StatementLine.objects.bulk_create(lines)
        block.delete()
        return len(lines)
    # One INSERT from the block's own arrays, with each line's public id and
    # order in front, because Django's bulk_create took most of an approval.
    stored = orjson.loads(bytes(block.lines))
    public_ids = line_public_ids(statement, stored)
    rows = [
        [str(public_id), order, *values]
        for order, (values, public_id) in enumerate(
            zip(stored, public_ids, strict=True)
        )
    ]
    sql, params = json_rows.insert_sql(
        StatementLine,
        ("public_id", "order", *FIELDS),
        constants={
            "organization_id": ("%s", [statement.organization_id]),
            "statement_id": ("%s", [statement.pk]),
            "kind": ("%s", [StatementLine.Kind.NORMAL]),
            "reason": ("%s", [""]),
            "created_at": ("%s", [block.created_at]),
        },
    )
    json_rows.execute_with_rows(sql, rows, params)
    block.delete()
    return len(rows)


def line_in_block(statement: Statement, public_id: uuid.UUID) -> bool:
    """Return whether ``public_id`` names a line of the statement's block."""
    lines = (
        StatementLineBlock.unscoped.filter(statement_id=statement.pk)
        .values_list("lines", flat=True)
        .first()
    )
    if lines is None:
        return False
    return public_id in line_public_ids(statement, orjson.loads(bytes(lines)))
