"""The default message of every kind in English and German (product data the program team then edits)."""

from django.db import migrations

from communications.defaults import ensure_default_templates


def add_templates(apps, schema_editor):
    ensure_default_templates(apps.get_model("communications", "MessageTemplate"))


class Migration(migrations.Migration):
    dependencies = [("communications", "0001_initial")]

    operations = [migrations.RunPython(add_templates, migrations.RunPython.noop)]
