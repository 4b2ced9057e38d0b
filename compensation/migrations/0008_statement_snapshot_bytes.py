"""Store the deal entries of statement snapshots as orjson bytes.

Every run stores a snapshot of every statement, and PostgreSQL parsed each
jsonb value on insert. The columns become bytea holding the same JSON
text, compressed with lz4 where the server supports it. Changing a
column's type rewrites the table under an exclusive lock, so the migration
gives up after waiting 10 s for that lock rather than queueing requests.
"""

from django.db import migrations, models

import compensation.fields

COLUMNS = ("deals", "other_lines")
TABLE = "compensation_statementsnapshot"


def _lz4_supported(cursor) -> bool:
    cursor.execute(
        "SELECT 'lz4' = ANY(enumvals) FROM pg_settings "
        "WHERE name = 'default_toast_compression'"
    )
    row = cursor.fetchone()
    return bool(row and row[0])


def _alter(apps, schema_editor, to_bytes: bool) -> None:
    model = apps.get_model("compensation", "StatementSnapshot")
    if schema_editor.connection.vendor != "postgresql":
        # SQLite copies the values as they are into a rebuilt table, and the
        # field reads JSON text as well as bytes.
        for name in COLUMNS:
            json_field = models.JSONField(default=list)
            bytes_field = compensation.fields.CompactJSONField(default=list)
            for field in (json_field, bytes_field):
                field.set_attributes_from_name(name)
                field.model = model
            if to_bytes:
                schema_editor.alter_field(model, json_field, bytes_field)
            else:
                schema_editor.alter_field(model, bytes_field, json_field)
        return
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SET LOCAL lock_timeout = '10s'")
        if to_bytes:
            changes = ", ".join(
                f"ALTER COLUMN {name} TYPE bytea USING convert_to({name}::text, 'UTF8')"
                for name in COLUMNS
            )
        else:
            changes = ", ".join(
                f"ALTER COLUMN {name} TYPE jsonb USING convert_from({name}, 'UTF8')::jsonb"
                for name in COLUMNS
            )
        cursor.execute(f"ALTER TABLE {TABLE} {changes}")
        if to_bytes and _lz4_supported(cursor):
            cursor.execute(
                f"ALTER TABLE {TABLE} "
                + ", ".join(f"ALTER COLUMN {name} SET COMPRESSION lz4" for name in COLUMNS)
            )


def to_bytes(apps, schema_editor):
    _alter(apps, schema_editor, to_bytes=True)


def to_jsonb(apps, schema_editor):
    _alter(apps, schema_editor, to_bytes=False)


class Migration(migrations.Migration):
    dependencies = [
        ("compensation", "0007_statement_line_block"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="statementsnapshot",
                    name=name,
                    field=compensation.fields.CompactJSONField(default=list),
                )
                for name in COLUMNS
            ],
            database_operations=[migrations.RunPython(to_bytes, to_jsonb)],
        ),
    ]
