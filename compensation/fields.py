"""Model fields of the compensation tables."""

from __future__ import annotations

import orjson
from django.db import models


class CompactJSONField(models.BinaryField):
    """A JSON value stored as its orjson encoding, in a binary column.

    PostgreSQL parses every jsonb value on insert. A calculation run stores
    a snapshot of every statement, with an entry per credited deal, and
    nothing queries inside those entries in SQL, so they are stored as the
    bytes orjson writes. The Python value is what ``json.loads`` returns.
    Values written to a JSON text column before (SQLite) read the same.
    """

    def from_db_value(self, value, expression, connection):
        if value is None:
            return None
        if isinstance(value, memoryview):
            value = value.tobytes()
        return orjson.loads(value)

    def to_python(self, value):
        if isinstance(value, (bytes, memoryview, str)):
            if isinstance(value, memoryview):
                value = value.tobytes()
            return orjson.loads(value)
        return value

    def get_db_prep_value(self, value, connection, prepared=False):
        if value is None:
            return None
        # Decimals and dates are written as their text.
        return connection.Database.Binary(orjson.dumps(value, default=str))

    def value_to_string(self, obj):
        return orjson.dumps(self.value_from_object(obj)).decode()
