from decimal import Decimal

from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from loyalty.common.keys import MatchingKeyField, matching_key
from loyalty.common.models import TimeStampedModel


class ProductLine(models.Model):
    """A family of products partners sell (e.g. softeners, reverse osmosis), targeted by rules."""

    code = models.SlugField(max_length=40, unique=True)
    name = models.CharField(max_length=120, unique=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class Product(TimeStampedModel):
    sku = models.CharField("SKU", max_length=60, unique=True)
    sku_key = MatchingKeyField(of="sku")
    name = models.CharField(max_length=200)
    line = models.ForeignKey(ProductLine, on_delete=models.PROTECT, related_name="products")
    launch_date = models.DateField(null=True, blank=True)
    unusual_quantity = models.PositiveIntegerField(
        null=True, blank=True, help_text="A claimed quantity above this is flagged for review. Empty: never."
    )
    # Hard ceilings (refused, not flagged); empty: the program's. Lines of one product in a claim add up, so
    # that splitting a line does not get round them.
    claim_max_quantity = models.PositiveIntegerField(
        _("claim ceiling (units)"),
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text=_(
            "A claim with more units of this product (its lines added up) is refused. Empty: the program's "
            "ceiling. Set it higher for consumables sold by the thousand, lower for machines sold one by one."
        ),
    )
    claim_max_amount = models.DecimalField(
        _("claim ceiling (amount)"),
        max_digits=14,
        decimal_places=2,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal("0.01"))],
        help_text=_(
            "A claim with more money of this product (its lines added up) is refused. Empty: the program's ceiling."
        ),
    )
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["sku"]
        constraints = [
            models.CheckConstraint(
                condition=(Q(claim_max_quantity__isnull=True) | Q(claim_max_quantity__gte=1))
                & (Q(claim_max_amount__isnull=True) | Q(claim_max_amount__gt=0)),
                name="product_claim_ceilings_positive",
            ),
            models.UniqueConstraint(fields=["sku_key"], name="product_sku_key_unique"),
        ]

    def __str__(self):
        return f"{self.sku} {self.name}"

    def clean(self):
        """Two SKUs that read the same ("AQ-1" and "aq 1") would be one product to the sell-out import: refuse
        the second (the form does not see the key's unique constraint)."""
        other = Product.objects.filter(sku_key=matching_key(self.sku)).exclude(pk=self.pk).first()
        if other is not None:
            message = _("The product %(sku)s has the same SKU (spaces, dashes and case aside).")
            raise ValidationError({"sku": message % {"sku": other.sku}})
