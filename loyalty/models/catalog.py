from django.db import models

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
    name = models.CharField(max_length=200)
    line = models.ForeignKey(ProductLine, on_delete=models.PROTECT, related_name="products")
    launch_date = models.DateField(null=True, blank=True)
    unusual_quantity = models.PositiveIntegerField(
        null=True, blank=True, help_text="A claimed quantity above this is flagged for review. Empty: never."
    )
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["sku"]

    def __str__(self):
        return f"{self.sku} {self.name}"
