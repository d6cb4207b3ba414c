"""A rule's event is one of RuleEvent's, checked by the database like its status and formula: answering a survey is
the "survey answered" event the rules pay (loyalty.services.survey_points)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("loyalty", "0011_program_expiry_notice_days"),
    ]

    operations = [
        migrations.AddConstraint(
            model_name="incentiverule",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    (
                        "event__in",
                        [
                            "sale_line",
                            "training_passed",
                            "survey_answered",
                            "referral_converted",
                            "co_marketing_approved",
                            "challenge_completed",
                            "profile_completed",
                            "custom",
                        ],
                    )
                ),
                name="rule_event_valid",
            ),
        ),
    ]
