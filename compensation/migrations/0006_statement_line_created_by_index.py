"""Index the author of manual statement lines, without locking the table.

On PostgreSQL the index is built concurrently, which needs a migration
outside a transaction. Elsewhere (SQLite) it is built as usual.
"""

from django.db import migrations, models

INDEX = models.Index(
    condition=models.Q(("created_by__isnull", False)),
    fields=["created_by"],
    name="statement_line_created_by",
)


def index_create(apps, schema_editor):
    model = apps.get_model("compensation", "StatementLine")
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.add_index(model, INDEX, concurrently=True)
    else:
        schema_editor.add_index(model, INDEX)


def index_drop(apps, schema_editor):
    model = apps.get_model("compensation", "StatementLine")
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.remove_index(model, INDEX, concurrently=True)
    else:
        schema_editor.remove_index(model, INDEX)


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("compensation", "0005_statement_line_keys"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AddIndex(model_name="statementline", index=INDEX),
            ],
            database_operations=[
                migrations.RunPython(index_create, index_drop),
            ],
        ),
    ]
