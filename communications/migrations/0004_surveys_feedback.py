"""Surveys (questions, one response per member, answers) and feedback to the program team."""

import django.contrib.postgres.fields
import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models

import loyalty.common.storage


class Migration(migrations.Migration):
    dependencies = [
        ("communications", "0003_campaigns"),
        ("loyalty", "0011_program_expiry_notice_days"),
        ("partners", "0003_partner_legal_id_key"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="Survey",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                ("updated_at", models.DateTimeField(auto_now=True)),
                ("title", models.CharField(max_length=200, verbose_name="title")),
                ("intro", models.TextField(blank=True, verbose_name="introduction")),
                (
                    "status",
                    models.CharField(
                        choices=[("draft", "Draft"), ("open", "Open"), ("closed", "Closed")],
                        default="draft",
                        max_length=10,
                        verbose_name="status",
                    ),
                ),
                (
                    "opens_at",
                    models.DateTimeField(
                        blank=True, help_text="Blank: as soon as open.", null=True, verbose_name="opens at"
                    ),
                ),
                (
                    "closes_at",
                    models.DateTimeField(
                        blank=True, help_text="Blank: until closed.", null=True, verbose_name="closes at"
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
                    "points_for_answer",
                    models.PositiveIntegerField(
                        default=0, help_text="Paid once per member; 0: none.", verbose_name="points for answering"
                    ),
                ),
                ("invited_at", models.DateTimeField(blank=True, null=True, verbose_name="invitations sent")),
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
                    "roles",
                    models.ManyToManyField(
                        blank=True,
                        help_text="None: every role.",
                        related_name="+",
                        to="partners.role",
                        verbose_name="roles",
                    ),
                ),
            ],
            options={
                "verbose_name": "survey",
                "verbose_name_plural": "surveys",
                "ordering": ["-created_at", "-id"],
            },
        ),
        migrations.CreateModel(
            name="Response",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("submitted_at", models.DateTimeField(default=django.utils.timezone.now)),
                (
                    "member",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="survey_responses",
                        to="partners.member",
                    ),
                ),
                (
                    "survey",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="responses",
                        to="communications.survey",
                    ),
                ),
            ],
            options={
                "verbose_name": "survey response",
                "verbose_name_plural": "survey responses",
            },
        ),
        migrations.CreateModel(
            name="Question",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("order", models.PositiveSmallIntegerField(default=0, verbose_name="order")),
                (
                    "kind",
                    models.CharField(
                        choices=[
                            ("nps", "Recommendation score (0–10)"),
                            ("single", "One choice"),
                            ("multiple", "Several choices"),
                            ("text", "Free text"),
                        ],
                        max_length=10,
                        verbose_name="kind",
                    ),
                ),
                ("text", models.CharField(max_length=300, verbose_name="question")),
                (
                    "choices",
                    models.JSONField(
                        blank=True,
                        default=list,
                        help_text="One choice or several choices: the answers offered.",
                        verbose_name="choices",
                    ),
                ),
                ("required", models.BooleanField(default=True, verbose_name="required")),
                (
                    "survey",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="questions",
                        to="communications.survey",
                    ),
                ),
            ],
            options={
                "verbose_name": "question",
                "verbose_name_plural": "questions",
                "ordering": ["order", "id"],
            },
        ),
        migrations.CreateModel(
            name="Feedback",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                ("updated_at", models.DateTimeField(auto_now=True)),
                (
                    "topic",
                    models.CharField(
                        choices=[
                            ("program", "The program"),
                            ("points", "Points and claims"),
                            ("rewards", "Rewards and orders"),
                            ("products", "Products"),
                            ("website", "This website"),
                            ("other", "Something else"),
                        ],
                        max_length=20,
                        verbose_name="topic",
                    ),
                ),
                ("text", models.TextField(max_length=5000, verbose_name="message")),
                (
                    "photo",
                    models.FileField(
                        blank=True,
                        max_length=200,
                        storage=loyalty.common.storage.private_storage,
                        upload_to="feedback/%Y/%m/",
                        verbose_name="photo",
                    ),
                ),
                (
                    "status",
                    models.CharField(
                        choices=[("open", "Waiting for an answer"), ("answered", "Answered")],
                        default="open",
                        max_length=10,
                        verbose_name="status",
                    ),
                ),
                ("answer", models.TextField(blank=True, max_length=5000, verbose_name="answer")),
                ("answered_at", models.DateTimeField(blank=True, null=True, verbose_name="answered at")),
                (
                    "answered_by",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                        verbose_name="answered by",
                    ),
                ),
                (
                    "member",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE, related_name="feedback", to="partners.member"
                    ),
                ),
            ],
            options={
                "verbose_name": "feedback",
                "verbose_name_plural": "feedback",
                "ordering": ["-created_at", "-id"],
                "indexes": [models.Index(fields=["status", "-created_at"], name="feedback_inbox_idx")],
                "constraints": [
                    models.CheckConstraint(
                        condition=models.Q(("status__in", ["open", "answered"])), name="feedback_status_valid"
                    ),
                    models.CheckConstraint(
                        condition=models.Q(
                            ("status", "open"),
                            models.Q(("answered_at__isnull", False), models.Q(("answer", ""), _negated=True)),
                            _connector="OR",
                        ),
                        name="feedback_answered_has_answer",
                    ),
                ],
            },
        ),
        migrations.CreateModel(
            name="Answer",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("value", models.JSONField()),
                (
                    "question",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="answers",
                        to="communications.question",
                    ),
                ),
                (
                    "response",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="answers",
                        to="communications.response",
                    ),
                ),
            ],
            options={
                "constraints": [
                    models.UniqueConstraint(fields=("response", "question"), name="answer_once_per_question")
                ],
            },
        ),
        migrations.AddConstraint(
            model_name="survey",
            constraint=models.CheckConstraint(
                condition=models.Q(("status__in", ["draft", "open", "closed"])), name="survey_status_valid"
            ),
        ),
        migrations.AddConstraint(
            model_name="survey",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    ("opens_at__isnull", True),
                    ("closes_at__isnull", True),
                    ("closes_at__gt", models.F("opens_at")),
                    _connector="OR",
                ),
                name="survey_closes_after_opening",
            ),
        ),
        migrations.AddConstraint(
            model_name="response",
            constraint=models.UniqueConstraint(fields=("survey", "member"), name="response_once_per_member"),
        ),
        migrations.AddConstraint(
            model_name="question",
            constraint=models.CheckConstraint(
                condition=models.Q(("kind__in", ["nps", "single", "multiple", "text"])), name="question_kind_valid"
            ),
        ),
    ]
