"""Give every existing organisation the built-in coaching rules.

New organisations get them from a post_save handler in coaching/apps.py.
"""

from django.db import migrations


def create_builtin_rules(apps, schema_editor):
    # The definitions are read from the app, so this migration creates the
    # built-in rules as they are defined when it runs.
    from coaching.catalog import BUILTIN_RULES

    Organization = apps.get_model("spm", "Organization")
    Rule = apps.get_model("coaching", "Rule")
    for organization in Organization.objects.all():
        existing = set(
            Rule.objects.filter(organization=organization)
            .exclude(builtin_key="")
            .values_list("builtin_key", flat=True)
        )
        Rule.objects.bulk_create(
            Rule(organization=organization, **spec.fields())
            for spec in BUILTIN_RULES
            if spec.key not in existing
        )


class Migration(migrations.Migration):
    dependencies = [("coaching", "0001_initial")]

    operations = [
        migrations.RunPython(create_builtin_rules, migrations.RunPython.noop),
    ]
