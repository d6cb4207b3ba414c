"""The back office for sale lines: read-only, newest first, with only indexed filters (source, import, partner)
and exact searches, estimated counts for big lists, and each line's postings explained. Query counts are pinned
in tests/loyalty/test_admin_sale_lines.py.
"""

import json

from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import ChangeList
from django.db import connections
from django.db.models import Q
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from django.utils.translation import gettext_lazy

from loyalty.common.admin import (
    DetailJoinsMixin,
    EstimatedCountPaginator,
    ReadOnlyModelAdmin,
    list_url,
)
from loyalty.common.formatting import format_money
from loyalty.common.keys import matching_key
from loyalty.models import SaleLine, SalesImport, SalesSource
from partners.models import Member, Partner

# The import filter offers the latest imports (of the chosen source), and the chosen one however old.
IMPORTS_OFFERED = 20
# The parameter of the list's source filter (list_filter = ("source", ...)).
SOURCE_PARAMETER = "source__id__exact"


def short_moment(moment) -> str:
    return f"{timezone.localtime(moment):%d %b %H:%M}"


def _id(value: str | None) -> int | None:
    """A primary key given in the URL, or None when it is missing or not one."""
    return int(value) if value and value.isascii() and value.isdigit() else None


class SaleLinePaginator(EstimatedCountPaginator):
    """A filtered list of sale lines may still be millions of rows (all of a big source, or of a big partner): when
    PostgreSQL's plan expects at least `exact_below` rows, its estimate is shown instead of a COUNT(*)."""

    @cached_property
    def count(self) -> int:
        query = getattr(self.object_list, "query", None)
        if query is not None and query.where:
            planned = self._planned_rows()
            if planned >= self.exact_below:
                return planned
        return super().count

    def _planned_rows(self) -> int:
        sql, params = self.object_list.order_by().values("pk").query.get_compiler(self.object_list.db).as_sql()
        with connections[self.object_list.db].cursor() as cursor:
            cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
            plan = cursor.fetchone()[0]
        if isinstance(plan, str):
            plan = json.loads(plan)
        return int(plan[0]["Plan"]["Plan Rows"])


class NewestFirstChangeList(ChangeList):
    """The newest lines first, whatever the URL asks: sorting by any other column would sort the whole table."""

    def get_ordering(self, request, queryset):
        return ["-pk"]


class ChosenIdFilter(admin.SimpleListFilter):
    """Filters `column` by the id in the URL; a value that is no id is refused (the admin says so)."""

    column = ""

    def has_output(self):
        return self.value() is not None or super().has_output()  # the admin applies only the filters it shows

    def queryset(self, request, queryset):
        if self.value() is None:
            return queryset
        chosen = _id(self.value())
        if chosen is None:
            raise IncorrectLookupParameters(f"Not an id: {self.value()}")
        return queryset.filter(**{self.column: chosen})


class ImportFilter(ChosenIdFilter):
    """An import's lines, found through the block-range index on sales_import (the lines of an import are written
    together). Every import would be too long a list: the latest ones of the chosen source are offered."""

    title = "import"
    parameter_name = "sales_import__id__exact"
    column = "sales_import_id"

    def lookups(self, request, model_admin):
        latest = SalesImport.objects.order_by("-created_at", "-id")
        if (source := _id(request.GET.get(SOURCE_PARAMETER))) is not None:
            latest = latest.filter(source_id=source)
        wanted = Q(pk__in=latest.values("pk")[:IMPORTS_OFFERED])
        if (chosen := _id(self.value())) is not None:
            wanted |= Q(pk=chosen)
        offered = (
            SalesImport.objects.filter(wanted)
            .select_related("source")
            .only("pk", "original_name", "created_at", "source__name")
            .order_by("-created_at", "-id")
        )
        return [(str(imp.pk), f"{imp.source.name}: {imp.original_name}, {short_moment(imp.created_at)}")
                for imp in offered]  # fmt: skip


class PartnerFilter(ChosenIdFilter):
    """One partner's lines, through the (partner, invoice number, product) index. Chosen by clicking a partner in the
    list (a list of every partner would be too long), so only the chosen partner is shown here."""

    title = "partner"
    parameter_name = "partner__id__exact"
    column = "partner_id"

    def lookups(self, request, model_admin):
        if (chosen := _id(self.value())) is None:
            return []
        return [(str(partner.pk), partner.name) for partner in Partner.objects.filter(pk=chosen).only("name")]


def _beneficiary(members: dict[int, Member], member_id: int | None) -> str:
    if member_id is None:
        return "company account"
    member = members.get(member_id)
    return member.user.email if member is not None else f"member #{member_id}"


@admin.register(SaleLine)
class SaleLineAdmin(DetailJoinsMixin, ReadOnlyModelAdmin):
    """The imported sell-out lines, to look up what a line paid and why. Lines change only through imports."""

    list_display = (
        "invoice_date",
        "source",
        "external_id",
        "partner_link",
        "member_email",
        "sku",
        "quantity",
        "amount_shown",
        "invoice_number",
        "points",
    )
    list_select_related = ("source__program", "partner", "member__user", "product")
    list_filter = ("source", ImportFilter, PartnerFilter)
    # Only what an index answers may filter the list, from the sidebar or from the URL: a member, a product, a date
    # or an amount would read the whole table.
    indexed_lookups = frozenset({SOURCE_PARAMETER, ImportFilter.parameter_name, PartnerFilter.parameter_name})
    # get_search_results looks the term's matching key up, through the unique (source, external key) index and,
    # with a partner chosen, the (partner, invoice key, product) index.
    search_fields = ("=external_id", "=invoice_number")
    search_help_text = (
        "An exact line id of the source's file (in the chosen source, or in any source). With a partner chosen "
        "(click a partner in the list), also an exact invoice number of that partner."
    )
    ordering = ("-id",)
    sortable_by = ()  # see NewestFirstChangeList
    show_facets = admin.ShowFacets.NEVER  # counting each filter choice would read the whole table
    show_full_result_count = False
    paginator = SaleLinePaginator
    detail_select_related = (
        "source__program",
        "sales_import__source",
        "partner",
        "member__user",
        "member__partner",
        "product",
        "returns_line__source",
    )
    fieldsets = (
        (None, {"fields": ("source", "external_id", "sales_import", "invoice_number", "invoice_date")}),
        ("Sale", {"fields": ("partner", "member", "product", "quantity", "amount_shown", "returns_line")}),
        ("Points", {"fields": ("points", "how_it_counts")}),
        ("Record", {"fields": ("created_at",)}),
    )
    readonly_fields = ("amount_shown", "how_it_counts")

    def get_queryset(self, request):
        # The page names the line's import: not its errors (up to a thousand of them).
        return super().get_queryset(request).defer("sales_import__errors")

    def get_changelist(self, request, **kwargs):
        return NewestFirstChangeList

    def lookup_allowed(self, lookup, value, request):
        return lookup in self.indexed_lookups and super().lookup_allowed(lookup, value, request)

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        source = _id(request.GET.get(SOURCE_PARAMETER))
        # Naming every source turns the search into one probe of the unique index per source (there are a few).
        sources = [source] if source is not None else list(SalesSource.objects.values_list("pk", flat=True))
        key = matching_key(term)
        found = Q(source_id__in=sources, external_key=key)
        if (partner := _id(request.GET.get(PartnerFilter.parameter_name))) is not None:
            found |= Q(partner_id=partner, invoice_key=key)
        return queryset.filter(found), False

    @admin.display(description="Partner")
    def partner_link(self, obj):
        return format_html(
            '<a href="{}" title="Only the lines of this partner">{}</a>',
            list_url("loyalty_saleline", partner__id__exact=obj.partner_id),
            obj.partner.name,
        )

    @admin.display(description="Member")
    def member_email(self, obj):
        return obj.member.user.email if obj.member_id else "—"

    @admin.display(description="SKU")
    def sku(self, obj):
        return obj.product.sku

    @admin.display(description=gettext_lazy("Amount"))
    def amount_shown(self, obj):
        return format_money(obj.amount, obj.source.program.money_currency)

    @admin.display(description="How it counts")
    def how_it_counts(self, obj):
        """Each posting on its line: the rule's explanation, the points, and whose account they went to."""
        postings = obj.posting_list
        if not postings:
            return "No rule paid points for this line."
        members = {obj.member_id: obj.member} if obj.member_id else {}
        others = {member_id for _, member_id, _, _ in postings if member_id is not None and member_id not in members}
        if others:
            members.update(Member.objects.select_related("user").in_bulk(others))
        return format_html_join(
            mark_safe("<br>"),
            "{} → {} points ({})",
            (
                (explanation, f"{points:,}", _beneficiary(members, member_id))
                for _, member_id, points, explanation in postings
            ),
        )
