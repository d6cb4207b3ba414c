"""Paid club membership: a partner joins a tier for a year by paying its fee (in points from the company account, or
recorded as money the program invoices), with the same benefits as partners who qualify for it. The tier a partner
holds (PartnerTier) is the better of the qualifying tier and the paid one (loyalty.services.tiers).

Each paid year is one row. A renewal starts the day after the term it renews ends, so renewing early loses no time,
and a term can be renewed once (`renews` is unique): a renewal paid twice is refused by the database too."""

from decimal import Decimal

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _


class ClubMembership(models.Model):
    program = models.ForeignKey("loyalty.Program", on_delete=models.PROTECT, related_name="club_memberships")
    partner = models.ForeignKey("partners.Partner", on_delete=models.PROTECT, related_name="club_memberships")
    tier = models.ForeignKey("loyalty.Tier", on_delete=models.PROTECT, related_name="memberships")
    starts_on = models.DateField(_("starts on"))
    ends_on = models.DateField(_("ends on"), help_text=_("The last day of the paid year."))
    renews = models.OneToOneField(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="renewal", verbose_name=_("renews")
    )
    fee_points = models.PositiveIntegerField(_("fee (points)"), null=True, blank=True)
    fee_money = models.DecimalField(
        _("fee (money)"),
        max_digits=12,
        decimal_places=2,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal("0.01"))],
    )
    # The spend of `fee_points` from the company account.
    entry = models.OneToOneField(
        "loyalty.PointsEntry", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    bought_by = models.ForeignKey(
        "partners.Member",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("bought by"),
    )
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text=_("The program manager who recorded it (a fee paid by bank transfer, say)."),
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["program", "partner", "-starts_on"]
        verbose_name = _("club membership")
        verbose_name_plural = _("club memberships")
        constraints = [
            models.CheckConstraint(condition=Q(ends_on__gte=F("starts_on")), name="club_membership_ends_after_start"),
            models.CheckConstraint(
                condition=(Q(fee_points__isnull=False) & Q(fee_money__isnull=True))
                | (Q(fee_points__isnull=True) & Q(fee_money__isnull=False)),
                name="club_membership_one_fee",
            ),
        ]
        indexes = [models.Index(fields=["program", "partner", "ends_on"], name="club_membership_partner_idx")]

    def __str__(self):
        return f"{self.partner}: {self.tier} {self.starts_on:%Y-%m-%d}–{self.ends_on:%Y-%m-%d}"
