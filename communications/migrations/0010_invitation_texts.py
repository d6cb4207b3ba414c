"""The invitation's default texts say until when the sign-up link works and greet without a name (an invited person
has none yet): stored rows are updated only where they still hold the old default text, so a program manager's edit
is kept."""

from django.db import migrations

from communications.defaults import default_rows

_OLD = {
    "en": (
        "{% if reminder %}Reminder: {% endif %}{{ invited_by }} invited you to the partner program",
        "Join {{ partner_name }}'s team and earn points for your sales.{% if reminder %} Your invitation is still "
        "open: use the link in the invitation e-mail by {{ expires_on|date }}.{% endif %}",
        "Hello {{ first_name }},",
    ),
    "de": (
        "{% if reminder %}Erinnerung: {% endif %}{{ invited_by }} hat Sie zum Partnerprogramm eingeladen",
        "Treten Sie dem Team von {{ partner_name }} bei und sammeln Sie Punkte für Ihre Verkäufe.{% if reminder %} "
        "Ihre Einladung gilt noch: Nutzen Sie den Link in der Einladungs-E-Mail bis zum {{ expires_on|date }}."
        "{% endif %}",
        "Hallo {{ first_name }},",
    ),
}
_SIGNATURE = {"en": "Your partner program team", "de": "Ihr Partnerprogramm-Team"}


def _old_row(channel: str, language: str) -> tuple[str, str]:
    subject, body, greeting = _OLD[language]
    if channel == "sms":
        return "", subject
    if channel == "inbox":
        return subject, body
    return subject, f"{greeting}\n\n{body}\n\n{{% if link %}}{{{{ link }}}}\n\n{{% endif %}}{_SIGNATURE[language]}"


def update_invitation_texts(apps, schema_editor):
    template = apps.get_model("communications", "MessageTemplate")
    for row in default_rows():
        if row["kind"] != "invitation" or row["language"] not in _OLD:
            continue
        subject, body = _old_row(row["channel"], row["language"])
        template.objects.filter(
            kind="invitation",
            channel=row["channel"],
            language=row["language"],
            role__isnull=True,
            subject=subject,
            body=body,
        ).update(subject=row["subject"], body=row["body"])


class Migration(migrations.Migration):
    dependencies = [("communications", "0009_delivery_link_code")]

    operations = [migrations.RunPython(update_invitation_texts, migrations.RunPython.noop)]
