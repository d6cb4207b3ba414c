"""The back office for prize draws: the draw (name, prizes, window, price, most entries, entries by activity), with
"Open for entries", "Close entries" and "Draw the winners now" as actions calling loyalty.services.draws; the winners
on its page; every entry, read-only. The secret seed is never shown before the draw (only its hash); once a draw is
open, what members were promised (prizes, window, price, limits) is read-only. Query counts are pinned in
tests/loyalty/test_draws_admin.py.
"""

from django.contrib import admin
from django.db.models import Count, OuterRef, Subquery, Sum, Value
from django.db.models.functions import Coalesce
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from loyalty.common.admin import (
    ProgramManagerAdmin,
    ReadOnlyModelAdmin,
    is_program_manager,
    list_link,
    run_for_each,
    with_name,
)
from loyalty.constants import DrawStatus
from loyalty.models import DrawEntry, DrawWinner, PrizeDraw
from loyalty.services.draws import draw_close, draw_open, draw_run

PROMISED = (
    "program",
    "prizes",
    "opens_at",
    "closes_at",
    "entry_price_points",
    "max_entries_per_member",
    "points_per_activity_entry",
)


@admin.register(PrizeDraw)
class PrizeDrawAdmin(ProgramManagerAdmin):
    list_display = ("name", "program", "status", "opens_at", "closes_at", "entrants", "entries_total")
    list_filter = ("program", "status")
    list_select_related = ("program",)
    search_fields = ("name",)
    search_help_text = _("Search by name.")
    ordering = ("-closes_at", "name")
    actions = ("open_draws", "close_draws", "run_draws")
    readonly_fields = ("status", "seed_hash", "entries_hash", "seed_shown", "drawn_at", "winners_shown")
    fieldsets = (
        (None, {"fields": ("program", "name", "description", "prizes")}),
        (_("Entries"), {"fields": (("opens_at", "closes_at"), "entry_price_points", "max_entries_per_member")}),
        (
            _("Entries by activity"),
            {
                "fields": ("points_per_activity_entry",),
                "description": _(
                    "One entry per this many points a member earns by the program's rules between the opening and the "
                    "closing, granted when entries close."
                ),
            },
        ),
        (
            _("Proof"),
            {"fields": ("status", "seed_hash", "entries_hash", "seed_shown", "drawn_at", "winners_shown")},
        ),
    )

    def get_queryset(self, request):
        entries = DrawEntry.objects.filter(draw=OuterRef("pk"))
        per_draw = entries.order_by().values("draw")
        return (
            super()
            .get_queryset(request)
            .annotate(
                entrant_count=Coalesce(
                    Subquery(per_draw.annotate(n=Count("member", distinct=True)).values("n")), Value(0)
                ),
                entry_total=Coalesce(Subquery(per_draw.annotate(n=Sum("count")).values("n")), Value(0)),
            )
        )

    def get_readonly_fields(self, request, obj=None):
        if obj is not None and obj.status != DrawStatus.DRAFT:
            return (*PROMISED, *self.readonly_fields)
        return self.readonly_fields

    def get_fieldsets(self, request, obj=None):
        return self.fieldsets if obj is not None else self.fieldsets[:-1]

    # Columns and read-only fields -----------------------------------------------------------------------------

    @admin.display(description=_("entrants"), ordering="entrant_count")
    def entrants(self, obj):
        return list_link("loyalty_drawentry", obj.entrant_count, draw__id__exact=obj.pk)

    @admin.display(description=_("entries"), ordering="entry_total")
    def entries_total(self, obj):
        return obj.entry_total

    @admin.display(description=_("seed"))
    def seed_shown(self, obj):
        return obj.seed if obj.status == DrawStatus.DRAWN else _("Secret until the draw.")

    @admin.display(description=_("winners"))
    def winners_shown(self, obj):
        if obj.status != DrawStatus.DRAWN:
            return "—"
        winners = DrawWinner.objects.filter(draw=obj).select_related("member__user", "member__partner")
        rows = format_html_join(
            "",
            "<li>{}. {}: {} ({})</li>",
            (
                (w.rank, w.prize, w.member.user.get_full_name() or w.member.user.email, w.member.partner.name)
                for w in winners
            ),
        )
        return format_html("<ol class='list-unstyled'>{}</ol>", rows) if winners else _("Nobody entered.")

    # Actions -------------------------------------------------------------------------------------------------

    def has_run_permission(self, request):
        return is_program_manager(request.user)

    def _each(self, request, queryset, operation, done: str):
        run_for_each(
            self,
            request,
            queryset.order_by("pk"),
            with_name(lambda draw: operation(draw=draw), str),
            done=done,
            noun="draw",
        )

    @admin.action(description=_("Open for entries (publishes the seed's hash)"), permissions=["run"])
    def open_draws(self, request, queryset):
        self._each(request, queryset, draw_open, "Opened")

    @admin.action(description=_("Close entries (publishes the entry list's hash)"), permissions=["run"])
    def close_draws(self, request, queryset):
        self._each(request, queryset, draw_close, "Closed")

    @admin.action(description=_("Draw the winners now (closed draws)"), permissions=["run"])
    def run_draws(self, request, queryset):
        self._each(request, queryset, draw_run, "Drew")


@admin.register(DrawEntry)
class DrawEntryAdmin(ReadOnlyModelAdmin):
    """Every entry of every draw, read-only (what the entrants link of the list opens)."""

    list_display = ("id", "draw", "member_shown", "partner_shown", "source", "count", "created_at")
    list_filter = ("draw__program", "draw", "source")
    list_select_related = ("draw", "member__user", "member__partner")
    ordering = ("draw", "id")
    search_fields = ("member__user__email", "member__partner__name")
    search_help_text = _("Search by member e-mail or partner name.")

    @admin.display(description=_("member"), ordering="member__user__email")
    def member_shown(self, obj):
        return obj.member.user.get_full_name() or obj.member.user.email

    @admin.display(description=_("partner"), ordering="member__partner__name")
    def partner_shown(self, obj):
        return obj.member.partner.name
