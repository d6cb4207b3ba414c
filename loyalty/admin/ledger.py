"""The back office for the points ledger: accounts, entries and manual adjustments.

Accounts and entries are read-only: points change only through loyalty.services. A manual correction is
a PointsAdjustment requested through loyalty.services.adjustments (the add form asks the service, so a
refusal is a form error); larger ones wait for a second program manager, who approves or rejects them
with the list actions. PointsEntry may hold millions of rows, so its list never counts the whole table
(EstimatedCountPaginator), its filters cost no scan of it, and its search uses exact, indexed lookups.
Query counts are pinned in tests/loyalty/test_admin.py.
"""

from collections.abc import Iterable

from django.contrib import admin, messages
from django.db import connections
from django.db.models import Q
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils.html import format_html

from loyalty.admin.forms import AdjustmentRequestForm
from loyalty.common.admin import (
    INLINE_ROW_LIMIT,
    ChoiceFilter,
    DetailJoinsMixin,
    EstimatedCountPaginator,
    ProgramManagerAdmin,
    ReadOnlyInline,
    ReadOnlyModelAdmin,
    ask_reason,
    is_program_manager,
    list_link,
    related_field,
    run_for_each,
    with_name,
)
from loyalty.constants import AdjustmentStatus, EntrySource
from loyalty.models import PointsAccount, PointsAdjustment, PointsEntry
from loyalty.services.adjustments import adjustment_approve, adjustment_reject


def holder(account: PointsAccount) -> str:
    """Whose account: the member's e-mail and partner, or the partner for a company account."""
    if account.member_id:
        return f"{account.member.user.email} ({account.member.partner.name})"
    return f"{account.partner.name} (company account)"


# Select these to show holder() without a query per row, from a model with an `account` foreign key.
ACCOUNT_HOLDER_JOINS = ("account__program", "account__member__user", "account__member__partner", "account__partner")


# Accounts -------------------------------------------------------------------------------------------


class HolderKindFilter(ChoiceFilter):
    title = "holder"
    parameter_name = "holder"
    conditions = {
        "member": ("A member", Q(member__isnull=False)),
        "company": ("A partner company", Q(partner__isnull=False)),
    }


class RecentEntriesInline(ReadOnlyInline):
    model = PointsEntry
    fk_name = "account"
    verbose_name_plural = f"Entries (the latest {INLINE_ROW_LIMIT})"
    fields = ("created_at", "kind", "available_delta", "pending_delta", "explanation", "source_type")
    ordering = ("-id",)
    show_change_link = True


@admin.register(PointsAccount)
class PointsAccountAdmin(DetailJoinsMixin, ReadOnlyModelAdmin):
    list_display = (
        "holder",
        "program",
        "available",
        "pending",
        "lifetime_earned",
        "redeemed",
        "expired",
        "entries",
    )
    list_filter = ("program", HolderKindFilter)
    list_select_related = ("program", "member__user", "member__partner", "partner")
    detail_select_related = list_select_related
    search_fields = (
        "member__user__email",
        "partner__name",
        "partner__legal_id",
        "member__partner__name",
        "member__partner__legal_id",
    )
    search_help_text = "Search by e-mail, partner name or legal id."
    ordering = ("-id",)
    show_full_result_count = False
    paginator = EstimatedCountPaginator
    fieldsets = (
        (None, {"fields": ("holder_link", "program")}),
        ("Balances", {"fields": ("available", "pending", "lifetime_earned", "redeemed", "expired")}),
        ("Record", {"fields": ("all_entries", "created_at", "updated_at")}),
    )
    readonly_fields = ("holder_link", "all_entries")
    inlines = (RecentEntriesInline,)

    def get_queryset(self, request):
        # The autocomplete of the adjustment form lists accounts by name: select what __str__ needs.
        return super().get_queryset(request).select_related(*self.list_select_related)

    @admin.display(description="Holder")
    def holder(self, obj):
        return holder(obj)

    @admin.display(description="Holder")
    def holder_link(self, obj):
        if obj.member_id:
            url = reverse("admin:partners_member_change", args=[obj.member_id])
        else:
            url = reverse("admin:partners_partner_change", args=[obj.partner_id])
        return format_html('<a href="{}">{}</a>', url, holder(obj))

    @admin.display(description="Entries")
    def entries(self, obj):
        return list_link("loyalty_pointsentry", "Entries", account__id__exact=obj.pk)

    @admin.display(description="Statement")
    def all_entries(self, obj):
        return list_link("loyalty_pointsentry", "All entries of this account", account__id__exact=obj.pk)


# Entries --------------------------------------------------------------------------------------------

# Distinct source types with one index probe each (a "loose index scan" on entry_source_idx), instead of
# SELECT DISTINCT over every entry.
SOURCE_TYPES_SQL = """
WITH RECURSIVE types(source_type) AS (
    (SELECT source_type FROM {table} ORDER BY source_type LIMIT 1)
    UNION ALL
    SELECT (
        SELECT e.source_type FROM {table} e
        WHERE e.source_type > types.source_type ORDER BY e.source_type LIMIT 1
    )
    FROM types WHERE types.source_type IS NOT NULL
)
SELECT source_type FROM types WHERE source_type IS NOT NULL
"""

# The filter names these sources; others are shown as stored.
SOURCE_TYPE_LABELS = {
    source: source.label
    for source in (EntrySource.ORDER, EntrySource.ADJUSTMENT, EntrySource.EXPIRY, EntrySource.LEAVER)
}


class SourceTypeFilter(admin.SimpleListFilter):
    title = "source"
    parameter_name = "source_type"
    NONE = "(none)"

    def lookups(self, request, model_admin):
        connection = connections[PointsEntry.objects.db]
        with connection.cursor() as cursor:
            cursor.execute(SOURCE_TYPES_SQL.format(table=connection.ops.quote_name(PointsEntry._meta.db_table)))
            types = [row[0] for row in cursor.fetchall()]
        return [
            (
                value or self.NONE,
                SOURCE_TYPE_LABELS.get(value, value) if value else "No source",
            )
            for value in types
        ]

    def queryset(self, request, queryset):
        value = self.value()
        if value is None:
            return queryset
        return queryset.filter(source_type="" if value == self.NONE else value)


@admin.register(PointsEntry)
class PointsEntryAdmin(DetailJoinsMixin, ReadOnlyModelAdmin):
    list_display = (
        "created_at",
        "holder",
        "kind",
        "available_delta",
        "pending_delta",
        "explanation",
        "source",
        "idempotency_key",
    )
    list_filter = ("kind", SourceTypeFilter, ("created_at", admin.DateFieldListFilter), "account__program")
    list_select_related = ACCOUNT_HOLDER_JOINS
    detail_select_related = (
        *ACCOUNT_HOLDER_JOINS,
        "reverses",
        "counterpart_account__program",
        "counterpart_account__member__user",
        "counterpart_account__member__partner",
        "counterpart_account__partner",
        "created_by",
    )
    # get_search_results looks each term up exactly, on indexed columns where it can.
    search_fields = ("=idempotency_key", "=source_id", "=account__member__user__email")
    search_help_text = "An exact idempotency key, source id (e.g. an order number) or member e-mail."
    ordering = ("-id",)
    show_full_result_count = False
    paginator = EstimatedCountPaginator
    fieldsets = (
        (None, {"fields": ("account", "kind", "available_delta", "pending_delta", "explanation")}),
        ("Source", {"fields": ("source_type", "source_id", "idempotency_key", "fingerprint", "details")}),
        ("Related", {"fields": ("reverses", "counterpart_account", "created_by")}),
        ("Dates", {"fields": ("created_at", "available_at", "expires_at")}),
    )

    def has_delete_permission(self, request, obj=None):
        return False  # append-only; database triggers refuse it anyway

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        if "@" in term:  # e-mails are stored in lower case (partners.models.UserManager)
            return queryset.filter(account__member__user__email=term.lower()), False
        return queryset.filter(Q(idempotency_key=term) | Q(source_id=term)), False

    @admin.display(description="Account")
    def holder(self, obj):
        return holder(obj.account)

    @admin.display(description="Source")
    def source(self, obj):
        return f"{obj.source_type} {obj.source_id}".strip()


# Adjustments ----------------------------------------------------------------------------------------


def describe_adjustment(adjustment: PointsAdjustment) -> str:
    return f"{adjustment.points:+,} points on {holder(adjustment.account)}"


@admin.register(PointsAdjustment)
class PointsAdjustmentAdmin(DetailJoinsMixin, ProgramManagerAdmin):
    list_display = (
        "created_at",
        "holder",
        "program",
        "points",
        "reason",
        "status",
        "requested_by",
        "decided_by",
        "decided_at",
    )
    list_filter = ("status", "account__program")
    list_select_related = (*ACCOUNT_HOLDER_JOINS, "requested_by", "decided_by")
    detail_select_related = (*list_select_related, "entry")
    search_fields = ("account__member__user__email", "account__partner__name", "reason")
    search_help_text = "Search by member e-mail, partner or reason."
    autocomplete_fields = ("account",)
    actions = ("approve", "reject")
    readonly_fields = ("holder", "program")

    def has_change_permission(self, request, obj=None):
        return False  # decided with the actions; an adjustment is never edited

    def has_decide_permission(self, request):
        return is_program_manager(request.user)

    def get_fieldsets(self, request, obj=None):
        if obj is None:
            return [(None, {"fields": ("account", "points", "reason")})]
        return [
            (None, {"fields": ("holder", "program", "points", "reason", "status")}),
            ("Decision", {"fields": ("requested_by", "created_at", "decided_by", "decided_at", "rejection_reason")}),
            ("Ledger", {"fields": ("entry",)}),
        ]

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = type("AdjustmentRequestForm", (AdjustmentRequestForm,), {"requested_by": request.user})
        return super().get_form(request, obj, change=change, **kwargs)

    def save_model(self, request, obj, form, change):
        pass  # AdjustmentRequestForm asked adjustment_request, which saved (and maybe posted) it

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        context.update(show_save_and_continue=False, show_save_and_add_another=False)
        return super().render_change_form(request, context, add=add, change=change, form_url=form_url, obj=obj)

    def response_add(self, request, obj, post_url_continue=None):
        if obj.status == AdjustmentStatus.POSTED:
            message = f"Posted {describe_adjustment(obj)}."
        else:
            threshold = obj.account.program.adjustment_approval_threshold
            message = (
                f"{describe_adjustment(obj)} waits for a second program manager: it is above the program's "
                f"threshold of {threshold:,} points."
            )
        self.message_user(request, message, level=messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:loyalty_pointsadjustment_changelist"))

    @admin.display(description="Account")
    def holder(self, obj):
        return holder(obj.account)

    program = related_field("account.program", "Program", ordering="account__program__name")

    # Actions -----------------------------------------------------------------------------------------

    def _for_each(self, request, adjustments: Iterable[PointsAdjustment], operation, *, done: str) -> None:
        run_for_each(
            self,
            request,
            adjustments,
            with_name(operation, describe_adjustment),
            done=done,
            noun="adjustment",
            name=describe_adjustment,
        )

    @admin.action(description="Approve (second program manager)", permissions=["decide"])
    def approve(self, request, queryset):
        self._for_each(
            request,
            queryset.select_related(*ACCOUNT_HOLDER_JOINS).order_by("pk"),
            lambda adjustment: adjustment_approve(adjustment=adjustment, approver=request.user),
            done="Approved and posted",
        )

    @admin.action(description="Reject (asks for a reason)", permissions=["decide"])
    def reject(self, request, queryset):
        adjustments = list(queryset.select_related(*ACCOUNT_HOLDER_JOINS).order_by("pk"))
        return ask_reason(
            self,
            request,
            adjustments,
            title="Reject adjustments",
            intro="The points are not posted.",
            button="Reject",
            describe=describe_adjustment,
            reason_help="Required. Kept with the adjustment for the requester and the audit.",
            apply=lambda reason: self._for_each(
                request,
                adjustments,
                lambda adjustment: adjustment_reject(adjustment=adjustment, approver=request.user, reason=reason),
                done="Rejected",
            ),
        )
