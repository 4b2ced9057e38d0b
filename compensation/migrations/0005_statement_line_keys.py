"""Drop the statement line keys and indexes that PostgreSQL no longer needs.

Dropping a foreign key locks both of its tables, including organisations,
users and deals, until the migration commits. Every step here only changes
the catalogue, so the locks are short, and a lock timeout makes the
migration fail instead of queueing every request behind a long transaction
that holds one of those tables. Run it again after such a failure. The new
partial index is built without a table lock in the next migration.
"""

import django.db.models.deletion
import uuid
from django.conf import settings
from django.db import migrations, models


def lock_timeout_set(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("SET LOCAL lock_timeout = '10s'")


class Migration(migrations.Migration):

    dependencies = [
        ('activity', '0008_drop_organization_only_indexes'),
        ('compensation', '0004_calculation_batches'),
        ('spm', '0004_membership_employee_id'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RunPython(lock_timeout_set, migrations.RunPython.noop),
        migrations.AlterField(
            model_name='statementline',
            name='component',
            field=models.ForeignKey(blank=True, db_constraint=False, db_index=False, null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='compensation.plancomponent'),
        ),
        migrations.AlterField(
            model_name='statementline',
            name='created_by',
            field=models.ForeignKey(blank=True, db_constraint=False, db_index=False, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL),
        ),
        migrations.AlterField(
            model_name='statementline',
            name='deal',
            field=models.ForeignKey(blank=True, db_constraint=False, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='activity.deal'),
        ),
        migrations.AlterField(
            model_name='statementline',
            name='organization',
            field=models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='spm.organization'),
        ),
        migrations.AlterField(
            model_name='statementline',
            name='plan_version',
            field=models.ForeignKey(blank=True, db_constraint=False, db_index=False, null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='compensation.planversion'),
        ),
        migrations.AlterField(
            model_name='statementline',
            name='public_id',
            field=models.UUIDField(default=uuid.uuid4, editable=False),
        ),
    ]
