"""Co-marketing funds (MDF): a fund per partner and period, and requests against it that go request → pre-approval
→ activity done → claim with proof → reimbursement, each step recorded with its reason, like sales claims.

The reimbursement follows the program's policy (Program.mdf_*): `mdf_percent` of the activity's actual cost (a
partner's tier can give another percent: Tier.mdf_percent), times 1 / (1 + the other brands named) when
`mdf_share_by_brands` (the water-treatment maker's "50 % when only our brand appears, reduced in proportion to the
number of other brands"), never more than what was pre-approved nor what is left in the fund; paid as points to the
company account through the engine's "co-marketing claim approved" event, or recorded as money (a credit note)."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from loyalty.common.models import StatusChange, TimeStampedModel, status_fields
from loyalty.common.storage import private_storage
from loyalty.constants import FundSource, MdfPayout, MdfStatus, ProofKind


class MarketingFund(TimeStampedModel):
    program = models.ForeignKey("loyalty.Program", on_delete=models.PROTECT, related_name="marketing_funds")
    partner = models.ForeignKey("partners.Partner", on_delete=models.PROTECT, related_name="marketing_funds")
    period_start = models.DateField(_("from"))
    period_end = models.DateField(_("until (included)"))
    amount = models.DecimalField(_("amount"), max_digits=14, decimal_places=2)
    source = models.CharField(_("set by"), max_length=12, choices=FundSource.choices, default=FundSource.MANUAL)
    # Pre-approved and not yet settled, and reimbursed: raised and lowered under the fund's row lock.
    committed = models.DecimalField(max_digits=14, decimal_places=2, default=0)
    reimbursed = models.DecimalField(max_digits=14, decimal_places=2, default=0)
    note = models.CharField(_("note"), max_length=300, blank=True)

    class Meta:
        ordering = ["-period_start", "partner"]
        verbose_name = _("co-marketing fund")
        verbose_name_plural = _("co-marketing funds")
        constraints = [
            models.UniqueConstraint(fields=["program", "partner", "period_start"], name="fund_one_per_period"),
            models.CheckConstraint(condition=Q(period_end__gte=models.F("period_start")), name="fund_period_order"),
            models.CheckConstraint(
                condition=Q(amount__gte=0, committed__gte=0, reimbursed__gte=0), name="fund_positive"
            ),
            models.CheckConstraint(
                condition=Q(amount__gte=models.F("committed") + models.F("reimbursed")), name="fund_not_overspent"
            ),
        ]

    def __str__(self):
        return f"{self.partner} · {self.period_start}–{self.period_end}: {self.amount}"


class MarketingRequest(TimeStampedModel):
    fund = models.ForeignKey(MarketingFund, on_delete=models.PROTECT, related_name="requests")
    partner = models.ForeignKey("partners.Partner", on_delete=models.PROTECT, related_name="+")
    member = models.ForeignKey("partners.Member", on_delete=models.PROTECT, related_name="+")
    title = models.CharField(_("activity"), max_length=200)
    description = models.TextField(_("description"), max_length=3000, blank=True)
    planned_on = models.DateField(_("planned for"))
    planned_cost = models.DecimalField(_("planned cost"), max_digits=14, decimal_places=2)
    approved_amount = models.DecimalField(
        _("pre-approved amount"), max_digits=14, decimal_places=2, null=True, blank=True
    )
    actual_cost = models.DecimalField(_("actual cost"), max_digits=14, decimal_places=2, null=True, blank=True)
    other_brands = models.PositiveSmallIntegerField(
        _("other brands named"), null=True, blank=True, help_text=_("0: only our brand appears.")
    )
    status = models.CharField(max_length=15, choices=MdfStatus.choices, default=MdfStatus.REQUESTED)
    reason = models.CharField(_("reason"), max_length=500, blank=True, help_text=_("The partner reads it."))
    payout = models.CharField(_("paid as"), max_length=12, choices=MdfPayout.choices, blank=True)
    reimbursed_amount = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    reimbursed_points = models.BigIntegerField(null=True, blank=True)
    # How the reimbursement was worked out, in words ("40 % × 1,000.00 × 1/(1+2) = 133.33").
    explanation = models.CharField(max_length=500, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("co-marketing request")
        verbose_name_plural = _("co-marketing requests")
        constraints = [
            models.CheckConstraint(condition=Q(status__in=MdfStatus.values), name="mdf_status_valid"),
            models.CheckConstraint(condition=Q(planned_cost__gt=0), name="mdf_planned_cost_positive"),
        ]

    def __str__(self):
        return f"{self.title} ({self.get_status_display()})"


class MarketingProof(models.Model):
    request = models.ForeignKey(MarketingRequest, on_delete=models.CASCADE, related_name="proofs")
    kind = models.CharField(_("kind"), max_length=10, choices=ProofKind.choices)
    file = models.FileField(_("file"), upload_to="mdf/%Y/%m/", storage=private_storage)
    uploaded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["request", "uploaded_at"]
        verbose_name = _("co-marketing proof")
        verbose_name_plural = _("co-marketing proofs")

    def __str__(self):
        return f"{self.get_kind_display()}: {self.file.name}"


class MarketingRequestEvent(StatusChange):
    subject_field = "request"

    request = models.ForeignKey(MarketingRequest, on_delete=models.CASCADE, related_name="events")
    from_status, to_status = status_fields(MdfStatus, max_length=15, from_blank=True)
    note = models.CharField(max_length=500, blank=True)

    class Meta(StatusChange.Meta):
        verbose_name = _("co-marketing status change")
