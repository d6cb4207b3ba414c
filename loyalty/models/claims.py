from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import Q

from loyalty.common.keys import MatchingKeyField
from loyalty.common.models import StatusChange, TimeStampedModel, status_fields
from loyalty.common.storage import private_storage
from loyalty.constants import ClaimFlag, ClaimStatus, RejectionReason


class SalesClaim(TimeStampedModel):
    """A member's claim of a sale: invoice, lines, proof, and the colleagues who share the points."""

    program = models.ForeignKey("loyalty.Program", on_delete=models.PROTECT, related_name="claims")
    member = models.ForeignKey("partners.Member", on_delete=models.PROTECT, related_name="claims")
    partner = models.ForeignKey("partners.Partner", on_delete=models.PROTECT, related_name="claims")
    colleagues = models.ManyToManyField("partners.Member", blank=True, related_name="+")
    invoice_number = models.CharField(max_length=60, help_text="As the member typed it.")
    invoice_key = MatchingKeyField(of="invoice_number", help_text="The invoice number as it is compared.")
    invoice_date = models.DateField()
    document = models.FileField(
        upload_to="claims/%Y/%m/", storage=private_storage, help_text="Photo or PDF of the invoice (private)."
    )
    status = models.CharField(max_length=10, choices=ClaimStatus.choices, default=ClaimStatus.SUBMITTED)
    flags = ArrayField(models.CharField(max_length=30, choices=ClaimFlag.choices), default=list, blank=True)
    total_amount = models.DecimalField(max_digits=14, decimal_places=2, default=0)
    rejection_reason = models.CharField(max_length=20, choices=RejectionReason.choices, blank=True)
    rejection_text = models.CharField(max_length=500, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    matched_line = models.ForeignKey(
        "loyalty.SaleLine",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text="A sell-out line that confirms this claim.",
    )
    submissions = models.PositiveSmallIntegerField(default=1)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(status__in=ClaimStatus.values), name="claim_status_valid"),
        ]
        indexes = [
            models.Index(fields=["status", "created_at"]),
            models.Index(fields=["program", "invoice_key"], name="claim_invoice_key_idx"),
            models.Index(fields=["member", "-created_at"]),
            models.Index(fields=["invoice_date"], name="claim_invoice_date_idx"),  # roll-ups by day
            models.Index(fields=["updated_at"], name="claim_updated_idx"),  # roll-ups: claims decided since
        ]

    def __str__(self):
        return f"Claim {self.pk} ({self.invoice_number})"


class ClaimLine(models.Model):
    claim = models.ForeignKey(SalesClaim, on_delete=models.CASCADE, related_name="lines")
    product = models.ForeignKey("loyalty.Product", on_delete=models.PROTECT, related_name="+")
    quantity = models.DecimalField(max_digits=12, decimal_places=3)
    amount = models.DecimalField(max_digits=14, decimal_places=2)
    paid_quantity = models.DecimalField(
        max_digits=12,
        decimal_places=3,
        default=0,
        help_text="The part of the quantity that earned when the claim was approved: one sale pays once "
        "(loyalty.selectors.one_sale).",
    )

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(quantity__gt=0), name="claim_line_quantity_positive"),
            models.CheckConstraint(condition=Q(amount__gte=0), name="claim_line_amount_not_negative"),
        ]

    def __str__(self):
        return f"{self.quantity} × {self.product}"

    @property
    def source_key(self) -> str:
        return f"claim:{self.claim_id}:{self.pk}"


class ClaimEvent(StatusChange):
    """Every status move of a claim: who, when, from, to and a note (flags found, reason)."""

    subject_field = "claim"
    claim = models.ForeignKey(SalesClaim, on_delete=models.CASCADE, related_name="events")
    from_status, to_status = status_fields(ClaimStatus, max_length=10, from_blank=True)
    note = models.CharField(max_length=500, blank=True)
