"""Tips (the pool of "Did you know…" lines) and the index the provider's delivery reports are matched on."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("communications", "0004_surveys_feedback"),
        ("partners", "0003_partner_legal_id_key"),
    ]

    operations = [
        migrations.CreateModel(
            name="Tip",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                ("updated_at", models.DateTimeField(auto_now=True)),
                ("text", models.CharField(max_length=300, verbose_name="text")),
                (
                    "link_path",
                    models.CharField(
                        blank=True,
                        help_text="A page of the member site, e.g. /rewards/ (the message shows it as a full address).",
                        max_length=300,
                        verbose_name="link",
                    ),
                ),
                (
                    "product_line",
                    models.SlugField(
                        blank=True,
                        help_text="Shown with news about this product line (its code, e.g. softeners). Blank: any news.",
                        max_length=40,
                        verbose_name="product line code",
                    ),
                ),
                (
                    "language",
                    models.CharField(
                        blank=True,
                        choices=[("en", "English"), ("de", "Deutsch"), ("fr", "Français"), ("pl", "Polski")],
                        help_text="Blank: any language.",
                        max_length=10,
                        verbose_name="language",
                    ),
                ),
                ("active", models.BooleanField(default=True, verbose_name="active")),
            ],
            options={
                "verbose_name": "tip",
                "verbose_name_plural": "tips",
                "ordering": ["product_line", "role__sort_order", "pk"],
            },
        ),
        migrations.AddIndex(
            model_name="delivery",
            index=models.Index(
                condition=models.Q(("provider_id", ""), _negated=True),
                fields=["provider_id"],
                name="delivery_provider_idx",
            ),
        ),
        migrations.AddField(
            model_name="tip",
            name="role",
            field=models.ForeignKey(
                blank=True,
                help_text="Blank: any role.",
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to="partners.role",
                verbose_name="role",
            ),
        ),
    ]
