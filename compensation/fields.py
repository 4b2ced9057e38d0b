"""Model fields of the compensation tables."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from django.db import models

# The keys of a list stored as a table, and nothing else.
_TABLE_KEYS = {"columns", "rows"}


@dataclass(frozen=True)
class Table:
    """A list of objects with the same keys, given as columns and rows.

    A ``CompactJSONField`` stores it as it stores the list of dicts it
    stands for, and reads it back as that list.
    """

    columns: Sequence[str]
    rows: Sequence[Sequence[Any]]


def compact_json(value: Any) -> bytes:
    """Return the bytes a ``CompactJSONField`` stores for ``value``.

    A non-empty list of objects that all have the same keys, in the same
    order, is stored as ``{"columns": [...], "rows": [[...], ...]}``, and so
    is a ``Table``. A snapshot repeats a dozen keys for every deal, and they
    were about half of its bytes. Decimals and dates are written as their
    text. Raises ValueError for an object with exactly the keys of that form,
    which would read back as a list.
    """
    if isinstance(value, Table):
        # An empty table is the empty list it stands for.
        value = {"columns": value.columns, "rows": value.rows} if value.rows else []
    elif isinstance(value, list) and value and isinstance(value[0], dict):
        columns = tuple(value[0])
        if all(isinstance(item, dict) and tuple(item) == columns for item in value):
            value = {
                "columns": columns,
                "rows": [tuple(item.values()) for item in value],
            }
    elif isinstance(value, dict) and value.keys() == _TABLE_KEYS:
        raise ValueError(
            "An object with only the keys 'columns' and 'rows' cannot be stored "
            "in a CompactJSONField: it would read back as a list."
        )
    return orjson.dumps(value, default=str)


def compact_json_loads(data: bytes | str) -> Any:
    """Return the value that ``compact_json`` wrote as ``data``."""
    value = orjson.loads(data)
    if isinstance(value, dict) and value.keys() == _TABLE_KEYS:
        columns = value["columns"]
        return [dict(zip(columns, row, strict=True)) for row in value["rows"]]
    return value


class CompactJSONField(models.BinaryField):
    """A JSON value stored as its orjson encoding, in a binary column.

    PostgreSQL parses every jsonb value on insert. A calculation run stores
    a snapshot of every statement, with an entry per credited deal, and
    nothing queries inside those entries in SQL, so they are stored as the
    bytes ``compact_json`` writes. Reading gives the value that was written,
    as ``json.loads`` returns it, and a list stored as a table reads as that
    list. Values written to a JSON text column (SQLite) and lists stored
    whole, as before tables, read the same.
    """

    def from_db_value(self, value, expression, connection):
        if value is None:
            return None
        if isinstance(value, memoryview):
            value = value.tobytes()
        return compact_json_loads(value)

    def to_python(self, value):
        if isinstance(value, (bytes, memoryview, str)):
            if isinstance(value, memoryview):
                value = value.tobytes()
            return compact_json_loads(value)
        return value

    def get_db_prep_value(self, value, connection, prepared=False):
        if value is None:
            return None
        return connection.Database.Binary(compact_json(value))

    def value_to_string(self, obj):
        return orjson.dumps(self.value_from_object(obj)).decode()
