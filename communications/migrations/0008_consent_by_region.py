from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("communications", "0007_clearer_help_texts"),
    ]

    operations = [
        # None: the member has not chosen; their region's rule decides (communications.consent).
        migrations.AlterField(
            model_name="preference",
            name="opted_in",
            field=models.BooleanField(blank=True, default=None, null=True),
        ),
    ]
