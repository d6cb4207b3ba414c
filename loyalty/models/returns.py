"""Returns of used equipment for recycling: a member registers returned units of a ReturnType (quantity, serial
numbers where the type requires them, a collection point); a collection partner or the program team confirms; the
confirmation is the rule engine's "equipment returned" event (quantity = the units), paid by the program's rules
with their caps (e.g. 100 points per cartridge up to 10,000 a calendar month). A serial number is registered once
across all partners (ReturnedSerial's unique key)."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from loyalty.common.keys import MatchingKeyField
from loyalty.common.models import StatusChange, TimeStampedModel, status_fields
from loyalty.constants import ReturnStatus


class ReturnType(models.Model):
    """What can be returned: a product (or any product of a line), e.g. "toner cartridge", "softener resin tank"."""

    program = models.ForeignKey("loyalty.Program", on_delete=models.PROTECT, related_name="return_types")
    name = models.CharField(_("name"), max_length=120)
    product_line = models.ForeignKey(
        "loyalty.ProductLine",
        verbose_name=_("product line"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    requires_serials = models.BooleanField(_("serial numbers required"), default=False)
    max_quantity = models.PositiveIntegerField(
        _("most units in one return"), default=500, help_text=_("A larger return is refused as a likely typo.")
    )
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        ordering = ["program", "name"]
        verbose_name = _("return type")
        verbose_name_plural = _("return types")
        constraints = [models.UniqueConstraint(fields=["program", "name"], name="return_type_name_unique")]

    def __str__(self):
        return self.name


class CollectionPoint(models.Model):
    program = models.ForeignKey("loyalty.Program", on_delete=models.PROTECT, related_name="collection_points")
    name = models.CharField(_("name"), max_length=150)
    address = models.CharField(_("address"), max_length=300, blank=True)
    # The partner that collects and confirms returns here (its owner and staff); empty: the program team confirms.
    partner = models.ForeignKey(
        "partners.Partner",
        verbose_name=_("collecting partner"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="collection_points",
    )
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        ordering = ["program", "name"]
        verbose_name = _("collection point")
        verbose_name_plural = _("collection points")

    def __str__(self):
        return self.name


class EquipmentReturn(TimeStampedModel):
    program = models.ForeignKey("loyalty.Program", on_delete=models.PROTECT, related_name="equipment_returns")
    member = models.ForeignKey("partners.Member", on_delete=models.PROTECT, related_name="equipment_returns")
    partner = models.ForeignKey("partners.Partner", on_delete=models.PROTECT, related_name="+")
    return_type = models.ForeignKey(ReturnType, on_delete=models.PROTECT, related_name="returns")
    collection_point = models.ForeignKey(CollectionPoint, on_delete=models.PROTECT, related_name="returns")
    quantity = models.PositiveIntegerField(_("units"))
    returned_on = models.DateField(_("returned on"))
    status = models.CharField(max_length=10, choices=ReturnStatus.choices, default=ReturnStatus.REGISTERED)
    reason = models.CharField(_("reason"), max_length=500, blank=True, help_text=_("The member reads it."))
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("equipment return")
        verbose_name_plural = _("equipment returns")
        constraints = [
            models.CheckConstraint(condition=Q(status__in=ReturnStatus.values), name="return_status_valid"),
            models.CheckConstraint(condition=Q(quantity__gte=1), name="return_quantity_positive"),
        ]
        indexes = [models.Index(fields=["member", "-created_at"], name="return_member_idx")]

    def __str__(self):
        return f"{self.quantity} × {self.return_type} ({self.get_status_display()})"


class ReturnedSerial(models.Model):
    """A returned unit's serial number: registered once across all partners (a rejected return frees it)."""

    equipment_return = models.ForeignKey(EquipmentReturn, on_delete=models.CASCADE, related_name="serials")
    serial = models.CharField(_("serial number"), max_length=80)
    serial_key = MatchingKeyField(of="serial")
    is_released = models.BooleanField(default=False, help_text=_("Freed by a rejected return."))

    class Meta:
        verbose_name = _("returned serial number")
        verbose_name_plural = _("returned serial numbers")
        constraints = [
            models.UniqueConstraint(fields=["serial_key"], condition=Q(is_released=False), name="returned_serial_once"),
        ]

    def __str__(self):
        return self.serial


class EquipmentReturnEvent(StatusChange):
    subject_field = "equipment_return"

    equipment_return = models.ForeignKey(EquipmentReturn, on_delete=models.CASCADE, related_name="events")
    from_status, to_status = status_fields(ReturnStatus, max_length=10, from_blank=True)
    note = models.CharField(max_length=500, blank=True)

    class Meta(StatusChange.Meta):
        verbose_name = _("equipment return status change")
