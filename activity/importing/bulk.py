"""Fast inserts and updates of many rows of one model.

On PostgreSQL, rows are copied (COPY) into a temporary staging table, then
moved with one INSERT ... SELECT or UPDATE ... FROM. That skips the per-value
work of Django's bulk_create and bulk_update, where a 100,000-deal import
otherwise spends most of its time, and, unlike a COPY straight into the
table, it goes through row-level security policies. Other databases use
bulk_create and bulk_update. Neither path calls save() or sends signals, so
callers give every value that save() would compute (such as auto_now).
Call these inside a transaction: the staging table is dropped at commit.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from django.db import connection, models
from psycopg import sql

# Rows per INSERT or UPDATE statement of bulk_create and bulk_update, to cut
# round trips. Django lowers it where a database needs, as for SQLite's
# limit on bound variables.
BATCH_SIZE = 2_000


def _join(names: Iterable[str], template: str = "{}") -> sql.Composable:
    return sql.SQL(", ").join(
        sql.SQL(template).format(sql.Identifier(name)) for name in names
    )


def _stage(cursor, table: str, columns: list[str], rows: Iterable[list]) -> str:
    """Copy ``rows`` into a new staging table with the types of ``table``."""
    staging = f"import_staging_{table}"
    cursor.execute(
        sql.SQL(
            "CREATE TEMPORARY TABLE {} ON COMMIT DROP AS SELECT {} FROM {} LIMIT 0"
        ).format(sql.Identifier(staging), _join(columns), sql.Identifier(table))
    )
    statement = sql.SQL("COPY {} FROM STDIN").format(sql.Identifier(staging))
    with cursor.copy(statement) as copy:
        for row in rows:
            copy.write_row(row)
    return staging


def insert_rows(model: type[models.Model], rows: Iterable[dict[str, Any]]) -> None:
    """Insert one row per dict of attribute name -> value.

    A field missing from a dict gets its model default, computed per row
    when the default is callable (such as a new UUID).
    """
    if connection.vendor != "postgresql":
        objects = [model(**values) for values in rows]
        model._default_manager.bulk_create(objects, batch_size=BATCH_SIZE)
        return

    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    defaults = {f.attname: f.get_default() for f in fields if not callable(f.default)}
    generated = [f for f in fields if callable(f.default)]
    names = [f.attname for f in fields]
    columns = [f.column for f in fields]

    def full_rows():
        for values in rows:
            row = defaults | {f.attname: f.get_default() for f in generated} | values
            yield [row[name] for name in names]

    table = model._meta.db_table
    with connection.cursor() as cursor:
        staging = _stage(cursor, table, columns, full_rows())
        cursor.execute(
            sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {}").format(
                sql.Identifier(table),
                _join(columns),
                _join(columns),
                sql.Identifier(staging),
            )
        )
        cursor.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(staging)))


def update_rows(
    model: type[models.Model],
    rows: Sequence[dict[str, Any]],
    fields: Sequence[str],
    *,
    organization_id: int,
) -> None:
    """Set ``fields`` (attribute names) on the rows whose "id" each dict gives.

    Only rows of ``organization_id`` are updated.
    """
    if not rows:
        return
    if connection.vendor != "postgresql":
        objects = [model(**values) for values in rows]
        names = [model._meta.get_field(name).name for name in fields]
        model._default_manager.bulk_update(objects, names, batch_size=BATCH_SIZE)
        return

    table = model._meta.db_table
    columns = [model._meta.get_field(name).column for name in fields]
    values = ([row["id"], *(row[name] for name in fields)] for row in rows)
    with connection.cursor() as cursor:
        staging = _stage(cursor, table, ["id", *columns], values)
        cursor.execute(
            sql.SQL(
                "UPDATE {} AS target SET {} FROM {} AS source "
                "WHERE target.id = source.id AND target.organization_id = %s"
            ).format(
                sql.Identifier(table),
                _join(columns, "{0} = source.{0}"),
                sql.Identifier(staging),
            ),
            [organization_id],
        )
        cursor.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(staging)))
