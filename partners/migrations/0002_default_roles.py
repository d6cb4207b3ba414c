from django.db import migrations

from partners.constants import DEFAULT_ROLES


def add_roles(apps, schema_editor):
    Role = apps.get_model("partners", "Role")
    for order, (code, name, is_owner) in enumerate(DEFAULT_ROLES, start=1):
        Role.objects.update_or_create(
            code=code, defaults={"name": name, "is_owner": is_owner, "sort_order": order * 10}
        )


class Migration(migrations.Migration):
    dependencies = [("partners", "0001_initial")]

    operations = [migrations.RunPython(add_roles, migrations.RunPython.noop)]
