from decimal import Decimal

from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q


class Tier(models.Model):
    """A partner level in one program: reached by sales or points over a rolling window."""

    program = models.ForeignKey("loyalty.Program", on_delete=models.CASCADE, related_name="tiers")
    name = models.CharField(max_length=60)
    rank = models.PositiveSmallIntegerField(help_text="0 is the entry tier; higher ranks are better.")
    threshold = models.DecimalField(
        max_digits=14,
        decimal_places=2,
        validators=[MinValueValidator(Decimal("0"))],
        help_text="Sales amount (money) or points earned over the program's window needed to reach this tier.",
    )
    multiplier = models.DecimalField(
        max_digits=4,
        decimal_places=2,
        default=Decimal("1.00"),
        validators=[MinValueValidator(Decimal("0.01"))],
        help_text="Earn multiplier applied on top of rules that allow it, e.g. 1.20.",
    )
    service_level = models.CharField(max_length=300, blank=True, help_text="Benefits as members read them.")
    mdf_percent = models.DecimalField(
        "co-marketing share (%)",
        max_digits=5,
        decimal_places=2,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal("0"))],
        help_text="Part of a co-marketing activity's cost reimbursed to partners at this tier. Empty: the program's.",
    )
    mdf_fund_amount = models.DecimalField(
        "co-marketing fund per period",
        max_digits=14,
        decimal_places=2,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal("0"))],
        help_text="The fund a partner at this tier gets each period (set by tier benefit). Empty: none by tier.",
    )
    # A tier partners can also join by paying a yearly fee (a "VIP club"): in points from the company account, or
    # recorded as money the program invoices. Neither: reached by qualifying only.
    join_fee_points = models.PositiveIntegerField(
        "yearly fee (points)",
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text="Partners may join this tier for a year, paid in points from the company account.",
    )
    join_fee_money = models.DecimalField(
        "yearly fee (money)",
        max_digits=12,
        decimal_places=2,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal("0.01"))],
        help_text="Partners may join this tier for a year; the fee is recorded as money the program invoices.",
    )

    class Meta:
        ordering = ["program", "rank"]
        constraints = [
            models.UniqueConstraint(fields=["program", "rank"], name="tier_rank_unique"),
            models.UniqueConstraint(fields=["program", "name"], name="tier_name_unique"),
            models.CheckConstraint(condition=Q(multiplier__gt=0), name="tier_multiplier_positive"),
            models.CheckConstraint(
                condition=Q(join_fee_points__isnull=True) | Q(join_fee_money__isnull=True),
                name="tier_one_join_fee",
                violation_error_message="A tier's yearly fee is in points or in money, not both.",
            ),
        ]

    def __str__(self):
        return self.name

    @property
    def joinable(self) -> bool:
        return self.join_fee_points is not None or self.join_fee_money is not None


class PartnerTier(models.Model):
    """A partner's current tier in a program. Upgrades are immediate; downgrades wait for `held_until`."""

    program = models.ForeignKey("loyalty.Program", on_delete=models.CASCADE, related_name="partner_tiers")
    partner = models.ForeignKey("partners.Partner", on_delete=models.CASCADE, related_name="tiers")
    tier = models.ForeignKey(Tier, on_delete=models.PROTECT, related_name="+")
    since = models.DateField()
    held_until = models.DateField(help_text="The tier is kept at least until this date.")
    metric_value = models.DecimalField(max_digits=16, decimal_places=2, default=Decimal("0"))
    evaluated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["program", "partner"], name="partner_tier_one_per_program")]

    def __str__(self):
        return f"{self.partner}: {self.tier}"


class TierChange(models.Model):
    """History of a partner's tier moves, with the metric that decided them."""

    program = models.ForeignKey("loyalty.Program", on_delete=models.CASCADE, related_name="+")
    partner = models.ForeignKey("partners.Partner", on_delete=models.CASCADE, related_name="tier_changes")
    from_tier = models.ForeignKey(Tier, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    to_tier = models.ForeignKey(Tier, on_delete=models.PROTECT, related_name="+")
    metric_value = models.DecimalField(max_digits=16, decimal_places=2)
    reason = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"{self.partner}: {self.from_tier or '—'} → {self.to_tier}"
