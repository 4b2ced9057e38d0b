"""INSERT and UPDATE statements that send many rows as one JSON parameter.

The statement store and the expansion of line blocks write thousands of
rows at once. One parameter carries any number of rows, and the statement
goes through the row-level security wrapper like any other query.
"""

from __future__ import annotations

import orjson
from django.db import connection

# Rows per INSERT or UPDATE of lines, snapshots or drafts, which bounds the
# size of one SQL statement.
INSERT_CHUNK = 10_000


def insert_sql(
    model,
    field_names: tuple[str, ...],
    conflict: tuple[str, ...] = (),
    constants: dict[str, tuple[str, list]] | None = None,
) -> tuple[str, list]:
    """Return an INSERT of ``model`` rows from a JSON array, and its parameters.

    Each row is an array in the order of ``field_names``. A JSON column takes
    its element as it is, and any other column casts the element's text to
    its type. ``constants`` maps other columns to the SQL and parameters of
    a value that every row shares. With ``conflict`` (the columns of a
    unique constraint), a row that exists already is updated with the new
    values instead. The JSON array is the last parameter, after the
    returned ones.

    One parameter carries any number of rows, which psycopg's client-side
    binding quotes in one pass, and the statement goes through the
    row-level security wrapper like any other query, which COPY would not.
    """
    constants = constants or {}
    quote = connection.ops.quote_name
    columns = []
    values = []
    params = []
    for name, (sql, sql_params) in constants.items():
        columns.append(quote(model._meta.get_field(name).column))
        values.append(sql)
        params.extend(sql_params)
    for index, name in enumerate(field_names):
        field = model._meta.get_field(name)
        columns.append(quote(field.column))
        db_type = field.db_type(connection)
        if db_type == "jsonb":
            values.append(f"(row -> {index})")
        else:
            values.append(f"(row ->> {index})::{db_type}")
    sql = (
        f"INSERT INTO {quote(model._meta.db_table)} ({', '.join(columns)}) "
        f"SELECT {', '.join(values)} FROM jsonb_array_elements(%s::jsonb) AS row"
    )
    if conflict:
        keys = [quote(model._meta.get_field(name).column) for name in conflict]
        updates = [
            f"{quote(model._meta.get_field(name).column)} = "
            f"EXCLUDED.{quote(model._meta.get_field(name).column)}"
            for name in field_names
            if name not in conflict and name != "created_at"
        ]
        sql += f" ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {', '.join(updates)}"
    return sql, params


def execute_with_rows(sql: str, rows: list, params: list | None = None) -> None:
    """Run ``sql`` with ``params`` and each INSERT_CHUNK of ``rows`` as JSON.

    orjson encoded 200,000 lines in 0.10 s where the json module took
    0.58 s (2-core AMD EPYC), and a full run encodes millions. Decimals go as
    their exact text, and dates, times and UUIDs in the ISO forms that
    PostgreSQL's casts read.
    """
    with connection.cursor() as cursor:
        for start in range(0, len(rows), INSERT_CHUNK):
            chunk = rows[start : start + INSERT_CHUNK]
            payload = orjson.dumps(chunk, default=str).decode()
            cursor.execute(sql, [*(params or []), payload])
