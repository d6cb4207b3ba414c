"""The inactivity nudge (a new kind and its default templates); the invitation's default texts learn to remind; the
default texts of "named on a colleague's claim" say what is true (there is no confirmation step): stored rows are
updated only where they still hold the old default text, so a program manager's edit is kept."""

from django.db import migrations, models

from communications.defaults import default_rows, ensure_default_templates

# The default texts before this migration, by (kind, language): (subject, body) as written in defaults.py then.
_OLD_TEXTS = {
    ("invitation", "en"): (
        "{{ invited_by }} invited you to the partner program",
        "Join {{ partner_name }}'s team and earn points for your sales.",
    ),
    ("invitation", "de"): (
        "{{ invited_by }} hat Sie zum Partnerprogramm eingeladen",
        "Treten Sie dem Team von {{ partner_name }} bei und sammeln Sie Punkte für Ihre Verkäufe.",
    ),
    ("claim_colleague", "en"): (
        "{{ colleague }} named you on claim {{ invoice_number }}",
        "Please confirm your part of the sale on invoice {{ invoice_number }}.",
    ),
    ("claim_colleague", "de"): (
        "{{ colleague }} hat Sie in Meldung {{ invoice_number }} genannt",
        "Bitte bestätigen Sie Ihren Anteil am Verkauf der Rechnung {{ invoice_number }}.",
    ),
}
_SIGNATURE = {"en": "Your partner program team", "de": "Ihr Partnerprogramm-Team"}


def _old_row(kind: str, channel: str, language: str) -> tuple[str, str]:
    """(subject, body) the old default stored for this channel, built the way defaults.default_rows builds them."""
    subject, body = _OLD_TEXTS[(kind, language)]
    if channel == "sms":
        return "", subject
    if channel == "inbox":
        return subject, body
    greeting = "Hallo {{ first_name }}," if language == "de" else "Hello {{ first_name }},"
    return subject, f"{greeting}\n\n{body}\n\n{{% if link %}}{{{{ link }}}}\n\n{{% endif %}}{_SIGNATURE[language]}"


def update_default_texts(apps, schema_editor):
    template = apps.get_model("communications", "MessageTemplate")
    for row in default_rows():
        key = (row["kind"], row["language"])
        if key not in _OLD_TEXTS:
            continue
        subject, body = _old_row(row["kind"], row["channel"], row["language"])
        template.objects.filter(
            kind=row["kind"],
            channel=row["channel"],
            language=row["language"],
            role__isnull=True,
            subject=subject,
            body=body,
        ).update(subject=row["subject"], body=row["body"])
    ensure_default_templates(template)


class Migration(migrations.Migration):
    dependencies = [
        ("communications", "0005_tips_and_tracking"),
        ("partners", "0003_partner_legal_id_key"),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name="messagetemplate",
            name="messagetemplate_kind_valid",
        ),
        migrations.AlterField(
            model_name="delivery",
            name="kind",
            field=models.CharField(
                choices=[
                    ("invitation", "Invitation"),
                    ("member_approved", "Member approved"),
                    ("member_deactivated", "Member deactivated"),
                    ("claim_approved", "Claim approved"),
                    ("claim_rejected", "Claim rejected"),
                    ("claim_colleague", "Named on a colleague's claim"),
                    ("points_imported", "Points from a sales import (digest)"),
                    ("adjustment_posted", "Points adjustment posted"),
                    ("tier_up", "Tier up"),
                    ("tier_down", "Tier down"),
                    ("tier_keep", "To keep your tier"),
                    ("points_expiring", "Points expiring"),
                    ("order_approved", "Order approved"),
                    ("order_shipped", "Order shipped"),
                    ("order_delivered", "Order delivered"),
                    ("order_rejected", "Order rejected"),
                    ("order_cancelled", "Order cancelled"),
                    ("voucher_ready", "Voucher code ready"),
                    ("feedback_answered", "Feedback answered"),
                    ("campaign", "Campaign"),
                    ("survey", "Survey invitation"),
                    ("nudge_inactive", "Nudge: no activity for a while"),
                ],
                max_length=40,
            ),
        ),
        migrations.AlterField(
            model_name="messagetemplate",
            name="kind",
            field=models.CharField(
                choices=[
                    ("invitation", "Invitation"),
                    ("member_approved", "Member approved"),
                    ("member_deactivated", "Member deactivated"),
                    ("claim_approved", "Claim approved"),
                    ("claim_rejected", "Claim rejected"),
                    ("claim_colleague", "Named on a colleague's claim"),
                    ("points_imported", "Points from a sales import (digest)"),
                    ("adjustment_posted", "Points adjustment posted"),
                    ("tier_up", "Tier up"),
                    ("tier_down", "Tier down"),
                    ("tier_keep", "To keep your tier"),
                    ("points_expiring", "Points expiring"),
                    ("order_approved", "Order approved"),
                    ("order_shipped", "Order shipped"),
                    ("order_delivered", "Order delivered"),
                    ("order_rejected", "Order rejected"),
                    ("order_cancelled", "Order cancelled"),
                    ("voucher_ready", "Voucher code ready"),
                    ("feedback_answered", "Feedback answered"),
                    ("campaign", "Campaign"),
                    ("survey", "Survey invitation"),
                    ("nudge_inactive", "Nudge: no activity for a while"),
                ],
                max_length=40,
                verbose_name="kind",
            ),
        ),
        migrations.AddConstraint(
            model_name="messagetemplate",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    (
                        "kind__in",
                        [
                            "invitation",
                            "member_approved",
                            "member_deactivated",
                            "claim_approved",
                            "claim_rejected",
                            "claim_colleague",
                            "points_imported",
                            "adjustment_posted",
                            "tier_up",
                            "tier_down",
                            "tier_keep",
                            "points_expiring",
                            "order_approved",
                            "order_shipped",
                            "order_delivered",
                            "order_rejected",
                            "order_cancelled",
                            "voucher_ready",
                            "feedback_answered",
                            "campaign",
                            "survey",
                            "nudge_inactive",
                        ],
                    )
                ),
                name="messagetemplate_kind_valid",
            ),
        ),
        migrations.RunPython(update_default_texts, migrations.RunPython.noop),
    ]
