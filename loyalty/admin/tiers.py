"""The back office for partner tiers.

Tiers are edited per program; their form refuses a ladder that would not make sense (the lowest tier must be
free to reach, thresholds must grow with the rank), and a yearly fee in both points and money (a tier with a fee can
also be joined for a year: loyalty.admin.clubs). Partner tiers and their history are written only by
loyalty.services.tiers (the daily task, or the "re-evaluate" action here) and are read-only. Query counts are
pinned in tests/loyalty/test_admin_catalog.py.
"""

from django import forms
from django.contrib import admin
from django.db.models import F, OuterRef, Q

from loyalty.common.admin import (
    ChoiceFilter,
    DetailJoinsMixin,
    ProgramManagerAdmin,
    ReadOnlyModelAdmin,
    is_program_manager,
    list_link,
    run_for_each,
)
from loyalty.common.queries import count_of
from loyalty.models import PartnerTier, Tier, TierChange
from loyalty.services.clubs import fee_text
from loyalty.services.tiers import describe_metric, tier_evaluate, tier_ladder_problems

# Tiers ----------------------------------------------------------------------------------------------


class TierAdminForm(forms.ModelForm):
    """A tier; refuses a ladder whose lowest tier is not free or whose thresholds do not grow with the rank."""

    class Meta:
        model = Tier
        fields = (
            "program",
            "name",
            "rank",
            "threshold",
            "multiplier",
            "service_level",
            "join_fee_points",
            "join_fee_money",
        )

    def clean(self):
        cleaned = super().clean()
        program, rank, threshold = cleaned.get("program"), cleaned.get("rank"), cleaned.get("threshold")
        if program is not None and rank is not None and threshold is not None:
            for field, message in tier_ladder_problems(
                program=program, rank=rank, threshold=threshold, exclude_pk=self.instance.pk
            ):
                self.add_error(field, message)
        return cleaned


@admin.register(Tier)
class TierAdmin(ProgramManagerAdmin):
    # No deleting (the default): partners' rows and history point at tiers, and removing a tier a rule is
    # limited to would silently open that rule to every tier.
    form = TierAdminForm
    list_display = (
        "name",
        "program",
        "rank",
        "threshold_shown",
        "multiplier",
        "fee_shown",
        "service_level",
        "partners",
    )
    list_filter = ("program",)
    list_select_related = ("program",)
    search_fields = ("name", "program__name")
    ordering = ("program__name", "rank")

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(partner_count=count_of(PartnerTier.objects.filter(tier=OuterRef("pk")), "tier"))
        )

    @admin.display(description="Threshold", ordering="threshold")
    def threshold_shown(self, obj):
        return describe_metric(obj.program, obj.threshold)

    @admin.display(description="Yearly fee")
    def fee_shown(self, obj):
        """What partners pay to join the tier for a year (loyalty.services.clubs); empty: reached by qualifying only."""
        if not obj.joinable:
            return "—"
        return fee_text(obj.program, points=obj.join_fee_points, money=obj.join_fee_money)

    @admin.display(description="Partners now", ordering="partner_count")
    def partners(self, obj):
        return list_link("loyalty_partnertier", obj.partner_count, tier__id__exact=obj.pk)


class TierFilter(admin.SimpleListFilter):
    """Tiers named with their program: two programs may both have a "Gold"."""

    title = "tier"
    parameter_name = "tier__id__exact"
    field = "tier_id"

    def lookups(self, request, model_admin):
        tiers = Tier.objects.select_related("program").order_by("program__name", "rank")
        return [(str(tier.pk), f"{tier.name} ({tier.program.name})") for tier in tiers]

    def queryset(self, request, queryset):
        value = self.value()
        return queryset.filter(**{self.field: int(value)}) if value and value.isdigit() else queryset


@admin.register(PartnerTier)
class PartnerTierAdmin(DetailJoinsMixin, ReadOnlyModelAdmin):
    list_display = ("partner", "program", "tier", "since", "held_until", "metric_shown", "evaluated_at")
    list_filter = ("program", TierFilter, ("held_until", admin.DateFieldListFilter))
    list_select_related = ("partner", "program", "tier")
    detail_select_related = list_select_related
    search_fields = ("partner__name", "partner__legal_id")
    search_help_text = "Search by partner name or legal id."
    ordering = ("program__name", "-tier__rank", "partner__name")
    actions = ("evaluate",)

    def has_delete_permission(self, request, obj=None):
        return False

    def has_evaluate_permission(self, request):
        return is_program_manager(request.user)

    @admin.display(description="Metric", ordering="metric_value")
    def metric_shown(self, obj):
        return describe_metric(obj.program, obj.metric_value)

    @admin.action(description="Re-evaluate the selected partners now", permissions=["evaluate"])
    def evaluate(self, request, queryset):
        run_for_each(
            self,
            request,
            queryset.select_related("partner", "program").order_by("pk"),
            lambda row: tier_evaluate(program=row.program, partner=row.partner),
            done="Re-evaluated",
            noun="partner",
            name=lambda row: row.partner.name,
        )


class MoveFilter(ChoiceFilter):
    title = "move"
    parameter_name = "move"
    conditions = {
        "first": ("First tier", Q(from_tier__isnull=True)),
        "up": ("Upgrade", Q(to_tier__rank__gt=F("from_tier__rank"))),
        "down": ("Downgrade", Q(to_tier__rank__lt=F("from_tier__rank"))),
    }


class ToTierFilter(TierFilter):
    title = "to tier"
    parameter_name = "to_tier__id__exact"
    field = "to_tier_id"


@admin.register(TierChange)
class TierChangeAdmin(DetailJoinsMixin, ReadOnlyModelAdmin):
    list_display = ("created_at", "partner", "program", "from_tier", "to_tier", "metric_shown", "reason")
    list_filter = ("program", MoveFilter, ToTierFilter, ("created_at", admin.DateFieldListFilter))
    list_select_related = ("partner", "program", "from_tier", "to_tier")
    detail_select_related = list_select_related
    search_fields = ("partner__name", "partner__legal_id")
    search_help_text = "Search by partner name or legal id."
    ordering = ("-created_at", "-id")

    def has_delete_permission(self, request, obj=None):
        return False  # the history is kept

    @admin.display(description="Metric", ordering="metric_value")
    def metric_shown(self, obj):
        return describe_metric(obj.program, obj.metric_value)
