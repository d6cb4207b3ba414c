"""The back office for programs: their points, dates, members, approvals, tiers and claims settings."""

from django.contrib import admin

from loyalty.admin.forms import ProgramAdminForm
from loyalty.common.admin import ProgramManagerAdmin
from loyalty.common.formatting import format_money
from loyalty.models import Program


@admin.register(Program)
class ProgramAdmin(ProgramManagerAdmin):
    form = ProgramAdminForm
    list_display = (
        "name",
        "currency_name",
        "point_value_shown",
        "expiry",
        "leaver_policy",
        "adjustment_approval_threshold",
        "order_approval_threshold",
        "is_active",
    )
    list_filter = ("is_active", "enrolment_mode", "leaver_policy")
    search_fields = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}
    fieldsets = (
        (None, {"fields": ("name", "slug", "is_active")}),
        (
            "Points",
            {"fields": ("currency_name", ("point_value", "money_currency"), ("expiry_months", "expiry_notice_days"))},
        ),
        ("Dates", {"fields": ("starts_on", "ends_on")}),
        ("Members", {"fields": ("enrolment_mode", "leaver_policy", "member_share_percent")}),
        ("Approvals", {"fields": ("adjustment_approval_threshold", "order_approval_threshold")}),
        ("Partner tiers", {"fields": ("tier_metric", "tier_window_days", "tier_period")}),
        (
            "Sales claims",
            {"fields": ("claim_window_days", "claim_auto_approve_below", ("claim_max_quantity", "claim_max_amount"))},
        ),
    )

    @admin.display(description="Point value", ordering="point_value")
    def point_value_shown(self, obj):
        return format_money(obj.point_value, obj.money_currency)

    @admin.display(description="Expiry", ordering="expiry_months")
    def expiry(self, obj):
        return f"{obj.expiry_months} months" if obj.expiry_months else "Never"
