"""Referrals: a member brings a prospect (a company, a contact, what they need); the program team qualifies it and
marks it converted or rejected (with a reason the referrer reads). Conversion is the rule engine's "referral
converted" event. A prospect already referred (same company id or e-mail, compared by matching keys across all
partners) or already a partner is flagged."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from loyalty.common.keys import MatchingKeyField
from loyalty.common.models import StatusChange, TimeStampedModel, status_fields
from loyalty.constants import ReferralStatus


class Referral(TimeStampedModel):
    program = models.ForeignKey("loyalty.Program", on_delete=models.PROTECT, related_name="referrals")
    partner = models.ForeignKey("partners.Partner", on_delete=models.PROTECT, related_name="referrals")
    member = models.ForeignKey("partners.Member", on_delete=models.PROTECT, related_name="referrals")
    company_name = models.CharField(_("company"), max_length=200)
    company_id = models.CharField(_("company registration or VAT number"), max_length=60, blank=True)
    company_key = MatchingKeyField(of="company_id")
    contact_name = models.CharField(_("contact person"), max_length=150)
    contact_email = models.EmailField(_("contact e-mail"))
    email_key = MatchingKeyField(of="contact_email")
    contact_phone = models.CharField(_("contact phone"), max_length=40, blank=True)
    need = models.TextField(_("what they need"), max_length=2000)
    status = models.CharField(max_length=10, choices=ReferralStatus.choices, default=ReferralStatus.SUBMITTED)
    # The earlier referral of the same prospect (by company id or e-mail), or empty.
    duplicate_of = models.ForeignKey("self", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    existing_partner = models.ForeignKey(
        "partners.Partner",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text=_("The prospect is already this partner of the program."),
    )
    deal_amount = models.DecimalField(_("deal amount"), max_digits=14, decimal_places=2, null=True, blank=True)
    reason = models.CharField(_("reason"), max_length=500, blank=True, help_text=_("The referrer reads it."))
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("referral")
        verbose_name_plural = _("referrals")
        constraints = [
            models.CheckConstraint(condition=Q(status__in=ReferralStatus.values), name="referral_status_valid"),
        ]
        indexes = [
            models.Index(fields=["program", "company_key"], name="referral_company_key_idx"),
            models.Index(fields=["program", "email_key"], name="referral_email_key_idx"),
            models.Index(fields=["member", "-created_at"], name="referral_member_idx"),
        ]

    def __str__(self):
        return f"{self.company_name} ({self.get_status_display()})"


class ReferralEvent(StatusChange):
    subject_field = "referral"

    referral = models.ForeignKey(Referral, on_delete=models.CASCADE, related_name="events")
    from_status, to_status = status_fields(ReferralStatus, max_length=10, from_blank=True)
    note = models.CharField(max_length=500, blank=True)

    class Meta(StatusChange.Meta):
        verbose_name = _("referral status change")
