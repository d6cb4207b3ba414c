"""The back office of paid club membership: every paid year of every partner, read-only, and "add", which records a
join or renewal paid in money (a bank transfer, say) or in points from the company account, through
loyalty.services.clubs (the tier's fee, the year, the renewal of the running year are the service's).

Adding asks first: the form is checked, then shown again with what will be recorded ("Renew Gold until 6 Dec 2028
for 5,000 AquaPoints from the company account"); saving it again records it. The check remembers the latest paid
year it saw, so a second save (or a renewal someone made meanwhile) is refused and nothing is paid twice. Query
counts are pinned in tests/loyalty/test_clubs.py.
"""

from datetime import date

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.translation import gettext as _

from loyalty.admin.tiers import TierFilter
from loyalty.common.admin import DetailJoinsMixin, ProgramManagerAdmin, SavedByServices, adopt
from loyalty.common.errors import ApplicationError
from loyalty.models import ClubMembership
from loyalty.selectors.clubs import held_tier, latest_membership
from loyalty.services.clubs import club_join, club_quote, fee_text

NO_TERM = "none"  # what the check saw when the partner had never paid

DETAIL_FIELDS = (
    "program",
    "partner",
    "tier",
    "starts_on",
    "ends_on",
    "renews",
    "fee_points",
    "fee_money",
    "entry",
    "bought_by",
    "recorded_by",
    "created_at",
)


class ClubMembershipAddForm(forms.ModelForm):
    """Program, partner and tier; the service does the rest. `seen` is empty until the form has been checked once,
    then the last day of the partner's latest paid year as the check saw it (NO_TERM: none)."""

    seen = forms.CharField(required=False, widget=forms.HiddenInput)

    class Meta:
        model = ClubMembership
        fields = ("program", "partner", "tier")

    def clean(self):
        data = super().clean()
        program, partner, tier = data.get("program"), data.get("partner"), data.get("tier")
        if program is None or partner is None or tier is None:
            return data
        latest = latest_membership(program=program, partner=partner)
        try:
            quote = club_quote(
                program=program,
                partner=partner,
                tier=tier,
                latest=latest,
                held=held_tier(program=program, partner=partner),
                today=timezone.localdate(),
            )
        except ApplicationError as exc:
            raise ValidationError(exc.message) from None
        seen = data.get("seen") or ""
        if not seen:  # asked the first time: say what will be recorded, and remember what was seen
            self.data = self.data.copy()
            self.data["seen"] = quote.renews_until.isoformat() if quote.renews_until is not None else NO_TERM
            raise ValidationError(_("Check, then save again to record it: %(summary)s.") % {"summary": quote.summary})
        try:
            data["renews_until"] = None if seen == NO_TERM else date.fromisoformat(seen)
        except ValueError:
            raise ValidationError(_("The form is out of date: open it again.")) from None
        return data


@admin.register(ClubMembership)
class ClubMembershipAdmin(SavedByServices, DetailJoinsMixin, ProgramManagerAdmin):
    form = ClubMembershipAddForm
    list_display = ("partner", "program", "tier", "starts_on", "ends_on", "fee_shown", "paid_by", "created_at")
    list_filter = ("program", TierFilter, ("ends_on", admin.DateFieldListFilter))
    list_select_related = ("partner", "program", "tier", "bought_by__user", "recorded_by")
    detail_select_related = ("partner", "program", "tier", "renews", "entry", "bought_by__user", "recorded_by")
    search_fields = ("partner__name", "partner__legal_id")
    search_help_text = "Search by partner name or legal id."
    raw_id_fields = ("partner",)
    ordering = ("-ends_on", "-id")

    def has_change_permission(self, request, obj=None):
        return False  # a paid year is what was paid: rows are read-only

    def get_fields(self, request, obj=None):
        return ("program", "partner", "tier", "seen") if obj is None else DETAIL_FIELDS

    def get_readonly_fields(self, request, obj=None):
        return () if obj is None else DETAIL_FIELDS

    @admin.display(description="Fee")
    def fee_shown(self, obj):
        return fee_text(obj.program, points=obj.fee_points, money=obj.fee_money)

    @admin.display(description="Paid by")
    def paid_by(self, obj):
        if obj.bought_by is not None:
            return obj.bought_by.user.get_full_name() or obj.bought_by.user.email
        return f"Recorded by {obj.recorded_by}" if obj.recorded_by is not None else "—"

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        saved = club_join(
            program=data["program"],
            partner=data["partner"],
            tier=data["tier"],
            recorded_by=request.user,
            renews_until=data["renews_until"],
        )
        adopt(obj, saved)
