"""Quiz attempts count for a certification round (renewal by re-taking a course): a module is passed once per
member and round instead of once for ever. Existing attempts are round 1."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("loyalty", "0014_challenge_counted_events"),
    ]

    operations = [
        migrations.AddField(
            model_name="quizattempt",
            name="round",
            field=models.PositiveSmallIntegerField(default=1, verbose_name="round"),
        ),
        migrations.RemoveConstraint(
            model_name="quizattempt",
            name="attempt_one_pass",
        ),
        migrations.AddConstraint(
            model_name="quizattempt",
            constraint=models.UniqueConstraint(
                condition=models.Q(("status", "passed")),
                fields=("member", "module", "round"),
                name="attempt_one_pass_a_round",
            ),
        ),
        migrations.AddConstraint(
            model_name="quizattempt",
            constraint=models.CheckConstraint(condition=models.Q(("round__gte", 1)), name="attempt_round_positive"),
        ),
    ]
