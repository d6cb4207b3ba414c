import json

from django.conf import settings
from django.contrib.postgres.indexes import BrinIndex
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext as _

from loyalty.common.keys import MatchingKeyField, matching_key
from loyalty.common.models import TimeStampedModel
from loyalty.common.storage import private_storage
from loyalty.constants import ImportStatus


class SalesSource(TimeStampedModel):
    """Where sell-out files come from (a distributor's feed, the ERP), with its saved column mapping."""

    program = models.ForeignKey("loyalty.Program", on_delete=models.PROTECT, related_name="sales_sources")
    name = models.CharField(max_length=120)
    code = models.SlugField(max_length=40, help_text="Short name used in line keys; never change it.")
    distributor = models.ForeignKey(
        "partners.Partner", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    column_mapping = models.JSONField(
        default=dict, blank=True, help_text="Our field → the column heading in this source's files."
    )
    delimiter = models.CharField(max_length=1, blank=True, help_text="Empty: detect.")
    decimal_comma = models.BooleanField(default=False, help_text="Amounts are written 1.234,56.")
    date_format = models.CharField(max_length=20, blank=True, help_text="e.g. %d.%m.%Y; empty: ISO or detect.")

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["program", "code"], name="sales_source_code_unique")]

    def __str__(self):
        return self.name


class PartnerAlias(models.Model):
    """A source's own code for a partner (a distributor's customer number), used to match file lines."""

    source = models.ForeignKey(SalesSource, on_delete=models.CASCADE, related_name="partner_aliases")
    code = models.CharField(max_length=60)
    code_key = MatchingKeyField(of="code")
    partner = models.ForeignKey("partners.Partner", on_delete=models.CASCADE, related_name="+")

    class Meta:
        verbose_name_plural = "partner aliases"
        constraints = [models.UniqueConstraint(fields=["source", "code_key"], name="partner_alias_unique")]

    def __str__(self):
        return f"{self.source.code}:{self.code} → {self.partner}"

    def clean(self):
        """Two codes that read the same ("C-1" and "c–1") would be one alias: refuse the second (the form does not
        see the key's unique constraint)."""
        taken = PartnerAlias.objects.filter(source_id=self.source_id, code_key=matching_key(self.code))
        other = taken.exclude(pk=self.pk).first() if self.source_id else None
        if other is not None:
            message = _("The alias %(code)s of this source is the same code (spaces, dashes and case aside).")
            raise ValidationError({"code": message % {"code": other.code}})


class SalesImport(TimeStampedModel):
    """One uploaded sell-out file and how far its background processing got."""

    source = models.ForeignKey(SalesSource, on_delete=models.PROTECT, related_name="imports")
    file = models.FileField(upload_to="imports/%Y/%m/", storage=private_storage, help_text="Kept private.")
    original_name = models.CharField(max_length=255)
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    status = models.CharField(max_length=10, choices=ImportStatus.choices, default=ImportStatus.QUEUED)
    total_rows = models.PositiveIntegerField(default=0)
    processed_rows = models.PositiveIntegerField(default=0)
    new_lines = models.PositiveIntegerField(default=0)
    duplicate_lines = models.PositiveIntegerField(default=0)
    error_rows = models.PositiveIntegerField(default=0)
    points_posted = models.BigIntegerField(default=0)
    errors = models.JSONField(default=list, blank=True, help_text="[{line, column, value, reason}], first ones.")
    message = models.CharField(max_length=500, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    followed_up_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="Batches sent through the API: when their members were told and the tiers evaluated, together "
        "with the other batches of that minute.",
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [models.CheckConstraint(condition=Q(status__in=ImportStatus.values), name="import_status_valid")]

    def __str__(self):
        return f"{self.source}: {self.original_name}"

    @property
    def percent_done(self) -> int:
        return int(100 * self.processed_rows / self.total_rows) if self.total_rows else 0


def _reference(to, **options) -> models.ForeignKey:
    """A sale line's reference: protected in Django, with no constraint or index of its own in the database."""
    return models.ForeignKey(to, on_delete=models.PROTECT, db_constraint=False, db_index=False, **options)


class SaleLine(models.Model):
    """One sell-out line, imported once per (source, external id). Negative quantities are returns.

    A high-volume fact table, shaped for bulk loading (docs/decisions.md #9): the importer checks every
    reference itself, so the foreign keys have no database constraints (Django still refuses to delete a
    partner, member or product that has lines), and only the indexes the product reads through exist.
    `postings` is what the line paid, as JSON text (not jsonb, which costs more to load than the rest of the
    row): [[rule id, member id or null (the partner's account), points, explanation], ...]; its points add up
    to `points` and, over an import, to that import's ledger entries.
    """

    source = _reference(SalesSource, related_name="lines")
    external_id = models.CharField(max_length=80, db_collation="C")
    external_key = MatchingKeyField(of="external_id")
    sales_import = _reference(SalesImport, null=True, blank=True, related_name="+")
    partner = _reference("partners.Partner", related_name="sale_lines")
    member = _reference("partners.Member", null=True, blank=True, related_name="+")
    product = _reference("loyalty.Product", related_name="+")
    quantity = models.DecimalField(max_digits=12, decimal_places=3)
    amount = models.DecimalField(max_digits=14, decimal_places=2)
    invoice_number = models.CharField(max_length=60, blank=True, db_collation="C")
    invoice_key = MatchingKeyField(of="invoice_number")
    invoice_date = models.DateField()
    returns_line = _reference(
        "self",
        null=True,
        blank=True,
        related_name="returns",
        help_text="For a return or credit note: the line whose points it takes back.",
    )
    points = models.BigIntegerField(default=0, help_text="Points the line paid (taken back, for a return).")
    paid_quantity = models.DecimalField(
        max_digits=12,
        decimal_places=3,
        default=0,
        help_text="The part of the quantity that earned: one sale pays once (loyalty.selectors.one_sale).",
    )
    postings = models.TextField(blank=True, help_text="What the line paid, per rule and beneficiary (JSON).")
    created_at = models.DateTimeField(db_default=models.functions.Now())

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["source", "external_key"], name="sale_line_once_per_source"),
            models.CheckConstraint(condition=~Q(quantity=0), name="sale_line_quantity_not_zero"),
        ]
        indexes = [
            models.Index(fields=["partner", "invoice_key", "product"], name="sale_line_claim_match_idx"),
            # An import's lines are written together, so a block-range index finds them at almost no cost.
            BrinIndex(fields=["sales_import"], name="sale_line_import_brin"),
            models.Index(fields=["invoice_date"], name="sale_line_invoice_date_idx"),  # tiers, roll-ups by day
            models.Index(
                fields=["returns_line"], condition=Q(returns_line__isnull=False), name="sale_line_returns_idx"
            ),
        ]

    def __str__(self):
        return f"{self.source.code}:{self.external_id}"

    @property
    def source_key(self) -> str:
        return f"sale:{self.source_id}:{self.external_id}"

    @property
    def posting_list(self) -> list[list]:
        """[[rule id, member id or None, points, explanation], ...] (see `postings`)."""
        return json.loads(self.postings) if self.postings else []
