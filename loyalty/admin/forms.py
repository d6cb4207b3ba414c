"""Forms of the back office (Django admin) for the points ledger."""

from django import forms
from django.core.exceptions import ImproperlyConfigured, ValidationError

from loyalty.common.errors import ApplicationError
from loyalty.models import PointsAdjustment, Program
from loyalty.services.adjustments import adjustment_request

# Which form field a refusal of adjustment_request belongs to; other codes are shown above the form.
ADJUSTMENT_ERROR_FIELDS = {"invalid_points": "points", "insufficient_points": "points", "reason_required": "reason"}


class ProgramAdminForm(forms.ModelForm):
    """The program's settings; says in words what the table's check constraints would refuse."""

    class Meta:
        model = Program
        fields = (
            "name",
            "slug",
            "is_active",
            "currency_name",
            "point_value",
            "money_currency",
            "expiry_months",
            "expiry_notice_days",
            "starts_on",
            "ends_on",
            "enrolment_mode",
            "leaver_policy",
            "member_share_percent",
            "adjustment_approval_threshold",
            "order_approval_threshold",
            "tier_metric",
            "tier_window_days",
            "tier_period",
            "claim_window_days",
            "claim_auto_approve_below",
            "claim_max_quantity",
            "claim_max_amount",
        )

    def clean_money_currency(self) -> str:
        currency = self.cleaned_data["money_currency"].strip().upper()
        if len(currency) != 3 or not currency.isascii() or not currency.isalpha():
            raise ValidationError("Use a three-letter currency code, such as EUR.", code="currency")
        return currency

    def clean(self):
        cleaned = super().clean()
        starts, ends = cleaned.get("starts_on"), cleaned.get("ends_on")
        if starts and ends and ends < starts:
            self.add_error("ends_on", "The program cannot end before it starts.")
        return cleaned


class AdjustmentRequestForm(forms.ModelForm):
    """Request a manual correction. Validating the form asks loyalty.services.adjustments.adjustment_request,
    so a refusal (not enough points, no reason, …) becomes a form error and nothing is written.

    The admin sets `requested_by` on the class it builds for the request (PointsAdjustmentAdmin.get_form).
    The admin wraps the whole request in a transaction and this form is used only on the add page, which
    has no inline formsets that could still fail after the service ran.
    """

    requested_by = None

    class Meta:
        model = PointsAdjustment
        fields = ("account", "points", "reason")
        help_texts = {
            "points": "Positive to add points, negative to take them away. Above the program's threshold a "
            "second program manager must approve it before it posts.",
            "reason": "The member sees it on their statement.",
        }

    def _post_clean(self):
        # Instead of building and validating a model instance, ask the service, which validates, saves the
        # adjustment and posts it when it is under the program's threshold.
        if self.requested_by is None:
            raise ImproperlyConfigured("Set AdjustmentRequestForm.requested_by to the signed-in user.")
        if self._errors:
            return
        account, points = self.cleaned_data["account"], self.cleaned_data["points"]
        if points < 0 and account.available < -points:
            # adjustment_request checks the balance only when it posts, so a large debit would wait for an
            # approval that can never post. The ledger checks again when it does.
            self.add_error("points", f"Not enough points: {account.available:,} available, {-points:,} needed.")
            return
        try:
            self.instance = adjustment_request(
                account=self.cleaned_data["account"],
                points=self.cleaned_data["points"],
                reason=self.cleaned_data["reason"],
                requested_by=self.requested_by,
            )
        except ApplicationError as exc:
            self.add_error(ADJUSTMENT_ERROR_FIELDS.get(exc.code), exc.message)

    def save(self, commit=True):
        """The service saved it during validation; the admin's save_m2m has nothing to do."""
        self.save_m2m = lambda: None
        return self.instance
