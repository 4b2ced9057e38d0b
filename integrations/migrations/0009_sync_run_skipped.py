from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("integrations", "0008_field_mappings_deals_only"),
    ]

    operations = [
        migrations.AlterField(
            model_name="syncrun",
            name="status",
            field=models.CharField(
                choices=[
                    ("queued", "Queued"),
                    ("running", "Running"),
                    ("succeeded", "Succeeded"),
                    ("failed", "Failed"),
                    ("skipped", "Skipped"),
                ],
                default="queued",
                max_length=10,
            ),
        ),
    ]
