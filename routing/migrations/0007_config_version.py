"""Add the routing configuration version and the triggers that move it.

On PostgreSQL, each table that routing reads its configuration from gets a
row trigger. Any insert, update or delete sets the organisation's version to
the next value of ``routing_config_version_seq``. The function runs as its
owner (SECURITY DEFINER), so the application role needs no rights on the
version table beyond reading it. Other databases get the table only, and
routing reads its configuration on every lead there.
"""

from django.db import migrations, models

# (table, column holding the organisation's id)
CONFIG_TABLES = (
    ("spm_organization", "id"),
    ("spm_apikey", "organization_id"),
    ("spm_membership", "organization_id"),
    ("goals_timeoff", "organization_id"),
    ("routing_territory", "organization_id"),
    ("routing_pool", "organization_id"),
    ("routing_poolmember", "organization_id"),
    ("routing_workinghours", "organization_id"),
    ("routing_rulesetversion", "organization_id"),
    ("routing_routingrule", "organization_id"),
    ("routing_scoringrule", "organization_id"),
    ("routing_qualificationsettings", "organization_id"),
    ("routing_leadmodel", "organization_id"),
    ("followups_sequence", "organization_id"),
    ("notifications_preference", "organization_id"),
    ("notifications_organizationdefault", "organization_id"),
    ("notifications_webhookendpoint", "organization_id"),
    ("notifications_chatconnection", "organization_id"),
    ("integrations_crmconnection", "organization_id"),
)

FUNCTION_SQL = """
CREATE SEQUENCE IF NOT EXISTS routing_config_version_seq;
CREATE OR REPLACE FUNCTION routing_config_touch() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
    changed jsonb;
BEGIN
    IF TG_OP = 'DELETE' THEN
        changed := to_jsonb(OLD);
    ELSE
        changed := to_jsonb(NEW);
    END IF;
    INSERT INTO routing_configversion (organization_id, version)
    VALUES ((changed ->> TG_ARGV[0])::bigint, nextval('routing_config_version_seq'))
    ON CONFLICT (organization_id) DO UPDATE SET version = EXCLUDED.version;
    RETURN NULL;
END
$$;
"""

TRIGGER_SQL = """
CREATE TRIGGER routing_config_touch
AFTER INSERT OR UPDATE{columns} OR DELETE ON {table}
FOR EACH ROW EXECUTE FUNCTION routing_config_touch('{column}');
"""

# Updates of other columns leave the version alone. An API key's
# ``last_used_at`` changes once a minute while the key is in use.
UPDATED_COLUMNS = {"spm_apikey": ("key_hash", "revoked_at", "organization_id")}


def triggers_create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(FUNCTION_SQL)
    for table, column in CONFIG_TABLES:
        updated = UPDATED_COLUMNS.get(table)
        columns = f" OF {', '.join(updated)}" if updated else ""
        schema_editor.execute(
            TRIGGER_SQL.format(table=table, column=column, columns=columns)
        )


def triggers_drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for table, _ in CONFIG_TABLES:
        schema_editor.execute(f"DROP TRIGGER IF EXISTS routing_config_touch ON {table}")
    schema_editor.execute("DROP FUNCTION IF EXISTS routing_config_touch()")
    schema_editor.execute("DROP SEQUENCE IF EXISTS routing_config_version_seq")


class Migration(migrations.Migration):
    dependencies = [
        ("routing", "0006_lead_known_contact"),
        ("spm", "0003_goal_settings"),
        ("goals", "0001_initial"),
        ("followups", "0001_initial"),
        ("notifications", "0002_outbound"),
        ("integrations", "0003_webhook_events"),
    ]

    operations = [
        migrations.CreateModel(
            name="ConfigVersion",
            fields=[
                (
                    "organization_id",
                    models.BigIntegerField(primary_key=True, serialize=False),
                ),
                ("version", models.BigIntegerField()),
            ],
        ),
        migrations.RunPython(triggers_create, triggers_drop),
    ]
