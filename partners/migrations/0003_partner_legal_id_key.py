"""Partners' legal ids get their matching key (loyalty.common.keys.matching_key) next to what was typed, unique
(issue #10, point 2; loyalty 0010 does the same for invoice numbers, external ids, SKUs and alias codes).

Two partners whose legal ids read the same (e.g. "DE-123" and "de 123") are printed during migrate and the
migration goes on: the oldest keeps the key, the others get a key that matches nothing (the key, " #" and the
partner's id; a real key has no space), so that the unique constraint holds. Editing such a partner's legal id
asks for one that no longer collides; a sell-out line naming that legal id matches the oldest partner.
"""

from django.db import migrations, models

import loyalty.common.keys
from loyalty.common.keys import fill_keys, key_collisions, set_keys_apart


def fill(apps, schema_editor):
    partner = apps.get_model("partners", "Partner")
    fill_keys(partner, ["legal_id_key"])
    groups = key_collisions(partner, "legal_id_key")
    for group in groups:
        rows = ", ".join(f"{typed!r} (id {pk})" for pk, typed in group)
        print(f"\n  Matching keys: partners' legal ids (the later ones set apart) read the same: {rows}.", end="")
    set_keys_apart(partner, "legal_id_key", groups)
    # The foreign keys' deferred checks of the rows updated, now: the constraints below alter these tables.
    schema_editor.execute("SET CONSTRAINTS ALL IMMEDIATE")


class Migration(migrations.Migration):
    dependencies = [
        ("partners", "0002_default_roles"),
    ]

    operations = [
        migrations.AddField(
            model_name="partner",
            name="legal_id_key",
            field=loyalty.common.keys.MatchingKeyField(
                blank=True, db_collation="C", default="", editable=False, of="legal_id"
            ),
        ),
        migrations.RunPython(fill, migrations.RunPython.noop, elidable=False),
        migrations.AddConstraint(
            model_name="partner",
            constraint=models.UniqueConstraint(fields=("legal_id_key",), name="partner_legal_id_key_unique"),
        ),
    ]
