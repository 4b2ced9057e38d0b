"""Store the calculated lines of a draft statement in one row.

On PostgreSQL built with lz4, the lines column is compressed with lz4, which
compressed a block of lines about five times faster than the default pglz
for about the same size.
"""

import django.db.models.deletion
import django.db.models.manager
import django.utils.timezone
from django.db import migrations, models


def lz4_compression(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            "SELECT 'lz4' = ANY(enumvals) FROM pg_settings "
            "WHERE name = 'default_toast_compression'"
        )
        row = cursor.fetchone()
        if row and row[0]:
            cursor.execute(
                "ALTER TABLE compensation_statementlineblock "
                "ALTER COLUMN lines SET COMPRESSION lz4"
            )


class Migration(migrations.Migration):
    dependencies = [
        ("compensation", "0006_statement_line_created_by_index"),
        ("spm", "0004_membership_employee_id"),
    ]

    operations = [
        migrations.CreateModel(
            name="StatementLineBlock",
            fields=[
                (
                    "statement",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        primary_key=True,
                        related_name="line_block",
                        serialize=False,
                        to="compensation.statement",
                    ),
                ),
                ("line_count", models.PositiveIntegerField()),
                ("total", models.DecimalField(decimal_places=2, max_digits=18)),
                ("digest", models.BinaryField(max_length=16)),
                ("lines", models.BinaryField()),
                ("clawback_deal_ids", models.JSONField(blank=True, default=list)),
                ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
                (
                    "organization",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="spm.organization",
                    ),
                ),
            ],
            options={
                "abstract": False,
                "base_manager_name": "unscoped",
            },
            managers=[
                ("objects", django.db.models.manager.Manager()),
                ("unscoped", django.db.models.manager.Manager()),
            ],
        ),
        migrations.RunPython(lz4_compression, migrations.RunPython.noop),
    ]
