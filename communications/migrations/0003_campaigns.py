"""Campaigns: the segment, the per-role message variants and the recipients (control group included); the default
campaign templates show the campaign's text (`message`), not only its subject."""

import django.contrib.postgres.fields
import django.core.validators
import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


def show_campaign_text(apps, schema_editor):
    """Default campaign templates stored before `message` existed repeated the subject as the text."""
    template = apps.get_model("communications", "MessageTemplate")
    for row in template.objects.filter(kind="campaign", channel__in=["email", "inbox"], role__isnull=True):
        if row.channel == "inbox" and row.body == "{{ title }}":
            row.body = "{{ message }}"
        elif row.channel == "email":
            row.body = row.body.replace("\n\n{{ title }}\n\n", "\n\n{{ message }}\n\n", 1)
        row.save(update_fields=["body"])


class Migration(migrations.Migration):
    dependencies = [
        ("communications", "0002_default_templates"),
        ("loyalty", "0011_program_expiry_notice_days"),
        ("partners", "0003_partner_legal_id_key"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="Campaign",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                ("updated_at", models.DateTimeField(auto_now=True)),
                ("name", models.CharField(max_length=200, verbose_name="name")),
                (
                    "topic",
                    models.CharField(
                        choices=[("campaigns", "Campaigns"), ("surveys", "Surveys")],
                        default="campaigns",
                        max_length=20,
                        verbose_name="topic",
                    ),
                ),
                (
                    "status",
                    models.CharField(
                        choices=[
                            ("draft", "Draft"),
                            ("scheduled", "Scheduled"),
                            ("sending", "Sending"),
                            ("sent", "Sent"),
                            ("cancelled", "Cancelled"),
                        ],
                        default="draft",
                        max_length=10,
                        verbose_name="status",
                    ),
                ),
                (
                    "scheduled_at",
                    models.DateTimeField(
                        blank=True,
                        help_text="Blank: sent only when you send it now.",
                        null=True,
                        verbose_name="send at",
                    ),
                ),
                (
                    "partner_kinds",
                    django.contrib.postgres.fields.ArrayField(
                        base_field=models.CharField(
                            choices=[
                                ("distributor", "Distributor"),
                                ("dealer", "Dealer"),
                                ("installer", "Installer"),
                                ("service_company", "Service company"),
                                ("reseller", "Reseller"),
                            ],
                            max_length=20,
                        ),
                        blank=True,
                        default=list,
                        help_text="None: every partner type.",
                        verbose_name="partner types",
                    ),
                ),
                (
                    "languages",
                    django.contrib.postgres.fields.ArrayField(
                        base_field=models.CharField(
                            choices=[("en", "English"), ("de", "Deutsch"), ("fr", "Français"), ("pl", "Polski")],
                            max_length=10,
                        ),
                        blank=True,
                        default=list,
                        help_text="None: every language.",
                        verbose_name="languages",
                    ),
                ),
                (
                    "activity",
                    models.CharField(
                        blank=True,
                        choices=[
                            ("no_points", "No points earned in the last N days"),
                            ("never_redeemed", "Never redeemed"),
                            ("invited_not_joined", "Invited but not joined"),
                        ],
                        max_length=20,
                        verbose_name="activity",
                    ),
                ),
                (
                    "inactive_days",
                    models.PositiveSmallIntegerField(
                        default=60,
                        help_text="For the activity “No points earned in the last N days”.",
                        verbose_name="days without points",
                    ),
                ),
                (
                    "control_percent",
                    models.PositiveSmallIntegerField(
                        default=10,
                        help_text="This share of the audience, chosen at random, receives nothing: the campaign's effect is measured against it.",
                        validators=[django.core.validators.MaxValueValidator(50)],
                        verbose_name="control group (%)",
                    ),
                ),
                (
                    "acted_within_days",
                    models.PositiveSmallIntegerField(
                        default=14,
                        help_text="A member acted if they earned, claimed or redeemed within this many days after the sending.",
                        validators=[django.core.validators.MinValueValidator(1)],
                        verbose_name="acted within (days)",
                    ),
                ),
                ("sent_at", models.DateTimeField(blank=True, null=True, verbose_name="sent at")),
                (
                    "program",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="loyalty.program",
                        verbose_name="program",
                    ),
                ),
                (
                    "regions",
                    models.ManyToManyField(
                        blank=True,
                        help_text="None: every region.",
                        related_name="+",
                        to="partners.region",
                        verbose_name="regions",
                    ),
                ),
                (
                    "roles",
                    models.ManyToManyField(
                        blank=True,
                        help_text="None: every role.",
                        related_name="+",
                        to="partners.role",
                        verbose_name="roles",
                    ),
                ),
                (
                    "sent_by",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                (
                    "tiers",
                    models.ManyToManyField(
                        blank=True,
                        help_text="None: any tier.",
                        related_name="+",
                        to="loyalty.tier",
                        verbose_name="tiers",
                    ),
                ),
            ],
            options={
                "verbose_name": "campaign",
                "verbose_name_plural": "campaigns",
                "ordering": ["-created_at", "-id"],
            },
        ),
        migrations.CreateModel(
            name="CampaignMessage",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("subject", models.CharField(max_length=200, verbose_name="subject")),
                ("body", models.TextField(verbose_name="text")),
                (
                    "campaign",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="messages",
                        to="communications.campaign",
                    ),
                ),
                (
                    "role",
                    models.ForeignKey(
                        blank=True,
                        help_text="Blank: everyone else.",
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="partners.role",
                        verbose_name="role",
                    ),
                ),
            ],
            options={
                "verbose_name": "message variant",
                "verbose_name_plural": "message variants",
            },
        ),
        migrations.CreateModel(
            name="CampaignRecipient",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("in_control_group", models.BooleanField(default=False)),
                (
                    "campaign",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="recipients",
                        to="communications.campaign",
                    ),
                ),
                (
                    "delivery",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to="communications.delivery",
                    ),
                ),
                (
                    "member",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE, related_name="+", to="partners.member"
                    ),
                ),
            ],
        ),
        migrations.AddIndex(
            model_name="campaign",
            index=models.Index(fields=["status", "scheduled_at"], name="campaign_due_idx"),
        ),
        migrations.AddConstraint(
            model_name="campaign",
            constraint=models.CheckConstraint(
                condition=models.Q(("status__in", ["draft", "scheduled", "sending", "sent", "cancelled"])),
                name="campaign_status_valid",
            ),
        ),
        migrations.AddConstraint(
            model_name="campaign",
            constraint=models.CheckConstraint(
                condition=models.Q(("control_percent__lte", 50)), name="campaign_control_percent_valid"
            ),
        ),
        migrations.AddConstraint(
            model_name="campaignmessage",
            constraint=models.UniqueConstraint(
                fields=("campaign", "role"), name="campaignmessage_one_per_role", nulls_distinct=False
            ),
        ),
        migrations.AddConstraint(
            model_name="campaignrecipient",
            constraint=models.UniqueConstraint(fields=("campaign", "member"), name="campaignrecipient_one_per_member"),
        ),
        migrations.RunPython(show_campaign_text, migrations.RunPython.noop),
    ]
