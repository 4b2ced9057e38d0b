"""Delete the field mappings stored for contacts and companies.

Every mapping target is a field of the deal, and syncs apply deal mappings
only, so a mapping of another object type never changed anything. Each
deleted mapping gets an audit log entry like the one an admin's deletion
writes, with no actor and the reason in its new values.
"""

from django.db import migrations

from spm.tenancy import system_context

DEALS = "deals"
REASON = (
    "Only deal properties can be mapped. Mappings of other object types were "
    "never applied, so they were deleted."
)


def non_deal_mappings_delete(apps, schema_editor):
    # Row-level security applies to the tables' owner too, unless it has
    # BYPASSRLS, so the migration reads and writes as the system, across
    # organisations.
    with system_context():
        _non_deal_mappings_delete(apps, schema_editor)


def _non_deal_mappings_delete(apps, schema_editor):
    FieldMapping = apps.get_model("integrations", "FieldMapping")
    AuditLog = apps.get_model("spm", "AuditLog")
    database = schema_editor.connection.alias
    mappings = list(
        FieldMapping.unscoped.using(database)
        .exclude(object_type=DEALS)
        .select_related("connection")
        .order_by("id")
    )
    if not mappings:
        return
    entries = [
        AuditLog(
            organization_id=mapping.organization_id,
            actor=None,
            action="crm.field_mapping_deleted",
            object_type="integrations.fieldmapping",
            object_id=str(mapping.public_id),
            old={
                "connection": mapping.connection.name,
                "object_type": mapping.object_type,
                "crm_property": mapping.crm_property,
                "target": mapping.target,
            },
            new={"reason": REASON},
        )
        for mapping in mappings
    ]
    AuditLog.unscoped.using(database).bulk_create(entries)
    FieldMapping.unscoped.using(database).filter(
        pk__in=[mapping.pk for mapping in mappings]
    ).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("integrations", "0007_sync_run_priority"),
        ("spm", "0003_goal_settings"),
    ]

    operations = [
        # Deleted mappings are not restored when migrating backwards.
        migrations.RunPython(non_deal_mappings_delete, migrations.RunPython.noop),
    ]
