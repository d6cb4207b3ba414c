"""Challenge boards rank as the final ranks do (value desc, who completed first, then id), each rank an index-only
count: the rank indexes hold completed_at and are partial per kind of participant (people, companies), since the
board filters on it; a settled board reads the final ranks through their own (partial) index."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("loyalty", "0015_attempt_rounds"),
    ]

    operations = [
        migrations.RemoveIndex(model_name="challengeentry", name="entry_rank_idx"),
        migrations.RemoveIndex(model_name="challengeentry", name="entry_rank_by_size_idx"),
        migrations.AddIndex(
            model_name="challengeentry",
            index=models.Index(
                condition=models.Q(("member__isnull", False)),
                fields=["challenge", "-score", "completed_at", "id"],
                name="entry_person_rank_idx",
            ),
        ),
        migrations.AddIndex(
            model_name="challengeentry",
            index=models.Index(
                condition=models.Q(("member__isnull", True)),
                fields=["challenge", "-score", "completed_at", "id"],
                name="entry_company_rank_idx",
            ),
        ),
        migrations.AddIndex(
            model_name="challengeentry",
            index=models.Index(
                condition=models.Q(("member__isnull", True)),
                fields=["challenge", "-normalised", "completed_at", "id"],
                name="entry_company_size_idx",
            ),
        ),
        migrations.AddIndex(
            model_name="challengeentry",
            index=models.Index(
                condition=models.Q(("final_rank__isnull", False)),
                fields=["challenge", "final_rank", "id"],
                name="entry_final_idx",
            ),
        ),
    ]
