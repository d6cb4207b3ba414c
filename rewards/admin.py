"""The back office for the rewards catalogue, voucher codes and redemption orders.

Catalogue rows are edited through validated model forms; codes are added only by uploading a CSV
(services.codes_from_csv + services.codes_add); orders move only through services.order_transition, from
the list actions (one message per refused order while the others go ahead) or the buttons of an order's page
(every move it can make now), which post the same actions. The supplier file is written
by rewards.exports. Query counts are pinned in tests/rewards/test_admin.py.
"""

from django.contrib import admin, messages
from django.db.models import Count, Exists, OuterRef, Prefetch, Q
from django.db.models.functions import Coalesce
from django.http import HttpResponse, HttpResponseRedirect, StreamingHttpResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy

from loyalty.admin.rule_display import negotiated_filter, negotiated_text
from loyalty.common.admin import (
    ChoiceFilter,
    DetailJoinsMixin,
    EstimatedCountPaginator,
    EventHistoryInline,
    ProgramManagerAdmin,
    ReadOnlyInline,
    ReadOnlyModelAdmin,
    admin_page,
    answers,
    ask,
    ask_reason,
    back_to_object,
    is_program_manager,
    list_link,
    list_url,
    names_listed,
    object_url,
    plural,
    related_field,
    run_for_each,
    with_name,
)
from loyalty.common.errors import ApplicationError
from loyalty.common.queries import count_of
from loyalty.selectors.negotiated import partner_names
from rewards import exports, selectors, services
from rewards.admin_forms import CodeUploadForm, OrderFulfilForm, RewardAdminForm
from rewards.constants import SHIPPED_KINDS, OrderStatus, PaidBy
from rewards.models import OrderEvent, RedemptionLine, RedemptionOrder, Reward, RewardCategory, VoucherCode

# Characters of a code the lists show; the code's own page shows all of it.
CODE_VISIBLE_CHARS = 4


def mask(code: str) -> str:
    return "••••" + code[-CODE_VISIBLE_CHARS:] if len(code) > CODE_VISIBLE_CHARS else "••••"


def _count_codes(*, free: bool) -> Coalesce:
    """Free (or assigned) codes of each reward."""
    return count_of(VoucherCode.objects.filter(reward=OuterRef("pk"), order_line__isnull=free), "reward")


# Catalogue ------------------------------------------------------------------------------------------


@admin.register(RewardCategory)
class RewardCategoryAdmin(ProgramManagerAdmin):
    allow_delete = True  # a category still in use is protected by its rewards
    list_display = ("name", "slug", "sort_order", "reward_count")
    list_editable = ("sort_order",)
    search_fields = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(reward_count=Count("rewards"))

    @admin.display(description="Rewards", ordering="reward_count")
    def reward_count(self, obj):
        return list_link("rewards_reward", obj.reward_count, category__id__exact=obj.pk)


@admin.register(Reward)
class RewardAdmin(ProgramManagerAdmin):
    form = RewardAdminForm
    list_display = (
        "name",
        "program",
        "kind",
        "points_price",
        "stock_or_codes",
        "paid_by",
        "is_active",
        "window",
        "negotiated_shown",
    )
    list_filter = (
        "program",
        "kind",
        "paid_by",
        "is_active",
        "uses_codes",
        "category",
        negotiated_filter("allowed_partners"),
    )
    list_select_related = ("program", "negotiated_approved_by")
    autocomplete_fields = ("allowed_partners",)
    search_fields = ("name", "sku")
    search_help_text = "Search by name or supplier SKU."
    filter_horizontal = ("allowed_roles", "allowed_regions")
    readonly_fields = ("code_pool", "created_at", "updated_at", "negotiated_shown")

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(free_codes=_count_codes(free=True), assigned_codes=_count_codes(free=False))
            .annotate(negotiated_names=partner_names(Reward, "allowed_partners"))
        )

    @admin.display(description=gettext_lazy("Negotiated conditions"))
    def negotiated_shown(self, obj):
        """Who the reward was negotiated for, who approved it, when and why (the list annotates the names)."""
        if hasattr(obj, "negotiated_names"):  # annotated (None: it names no partner)
            names = obj.negotiated_names
        else:
            names = [partner.name for partner in obj.allowed_partners.all()] if obj.pk is not None else ()
        approved_by, approved_at = obj.negotiated_approved_by, obj.negotiated_approved_at
        text = negotiated_text(names or (), approved_by, approved_at, obj.negotiated_reason)
        return text or gettext_lazy("For every partner")

    def save_model(self, request, obj, form, change):
        if hasattr(form, "stamp_negotiated"):
            form.stamp_negotiated(request.user)  # named partners: approved by whoever saves them, now
        super().save_model(request, obj, form, change)

    def get_fieldsets(self, request, obj=None):
        stock = ("points_price", "paid_by", "stock", "uses_codes", "installed_on_site")
        fieldsets = [
            (None, {"fields": ("program", "category", "name", "sku", "kind", "description", "image")}),
            ("Price and stock", {"fields": (*stock, "code_pool") if obj is not None else stock}),
            (
                "Event or session",
                {
                    "fields": ("event_starts_at", "event_place"),
                    "description": "For an event seat or an expert session: when and where. Its stock is the "
                    "number of seats; members book a seat by redeeming it and may cancel until it starts. "
                    "Reserve it for a tier (members-only) with the minimum tier below.",
                },
            ),
            (
                "Who may redeem it",
                {
                    "fields": (
                        "min_tier",
                        "requires_certification",
                        "allowed_roles",
                        "allowed_partner_kinds",
                        "allowed_regions",
                        ("limit_per_member", "limit_period"),
                    ),
                    "description": "Leave a restriction empty to offer the reward to everyone.",
                },
            ),
            ("Availability", {"fields": ("is_active", "available_from", "available_until")}),
            (
                gettext_lazy("Negotiated conditions"),
                {
                    "fields": ("allowed_partners", "negotiated_reason", *(("negotiated_shown",) if obj else ())),
                    "description": gettext_lazy(
                        "Special conditions for key accounts: a reward naming partners is shown to their members "
                        "only, and nobody else can order it. Say why: whoever saves it approves it."
                    ),
                },
            ),
        ]
        if obj is not None:
            fieldsets.append(("Record", {"fields": ("created_at", "updated_at")}))
        return fieldsets

    @admin.display(description="Stock")
    def stock_or_codes(self, obj):
        if obj.uses_codes:
            return f"{plural(obj.free_codes, 'free code')}"
        return "Unlimited" if obj.stock is None else f"{obj.stock:,} in stock"

    @admin.display(description="Window")
    def window(self, obj):
        parts = []
        if obj.available_from:
            parts.append(f"from {timezone.localtime(obj.available_from):%d %b %Y}")
        if obj.available_until:
            parts.append(f"until {timezone.localtime(obj.available_until):%d %b %Y}")
        return " ".join(parts) or "Always"

    @admin.display(description="Code pool")
    def code_pool(self, obj):
        if not obj.uses_codes:
            return "This reward hands out no codes."
        return format_html(
            '{} free, {} assigned — <a href="{}">see the codes</a> · <a href="{}">upload codes</a>',
            f"{obj.free_codes:,}",
            f"{obj.assigned_codes:,}",
            list_url("rewards_vouchercode", reward=obj.pk),
            reverse("admin:rewards_reward_upload_codes", args=[obj.pk]),
        )

    # Uploading codes ---------------------------------------------------------------------------------

    def get_urls(self):
        upload = object_url(self, "upload-codes/", self.upload_codes_view, name="rewards_reward_upload_codes")
        attendance = object_url(
            self,
            "attendance/",
            self.attendance_view,
            name="rewards_reward_attendance",
            allowed=lambda request, reward: is_program_manager(request.user),
            methods=("GET", "POST"),
        )
        return [upload, attendance, *super().get_urls()]

    def upload_codes_view(self, request, reward):
        """Add the codes of a CSV file to a code reward's pool; codes already there are skipped."""
        form = CodeUploadForm(request.POST, request.FILES) if request.method == "POST" else CodeUploadForm()
        if form.is_bound and form.is_valid():
            try:
                added, skipped = services.codes_add(reward=reward, codes=form.codes)
            except ApplicationError as exc:
                form.add_error(None, exc.message)
            else:
                return back_to_object(
                    self,
                    request,
                    reward,
                    f"Added {plural(added, 'code')} to {reward.name}; {skipped} "
                    f"{'was' if skipped == 1 else 'were'} already in the pool or repeated in the file.",
                )
        return admin_page(
            self,
            request,
            "admin/rewards/reward/upload_codes.html",
            title=f"Upload codes for {reward.name}",
            form=form,
            original=reward,
        )

    # Attendance ---------------------------------------------------------------------------------------

    def attendance_view(self, request, reward):
        """The seats of a dated event with their holders; once it has started, the ticked seats are marked
        "attended" (paying what the rules say for "event attended", once per seat) or "no show"."""
        if reward.event_starts_at is None:
            self.message_user(request, f"{reward.name} is not a dated event: it has no attendance.", messages.ERROR)
            return HttpResponseRedirect(reverse("admin:rewards_reward_change", args=[reward.pk]))
        seats = list(selectors.event_seats(reward=reward))
        if request.method == "POST":
            attended = request.POST.get("mark") == "attended"
            chosen = {int(pk) for pk in request.POST.getlist("line") if pk.isdigit()}
            lines = [line for line in seats if line.pk in chosen]
            if not lines:
                self.message_user(request, "Tick the seats to mark first.", messages.WARNING)
            else:
                run_for_each(
                    self,
                    request,
                    lines,
                    lambda line: services.attendance_record(line=line, actor=request.user, attended=attended),
                    done="Marked attended" if attended else "Marked no-show",
                    noun="seat",
                    name=lambda line: line.order.member.user.get_full_name(),
                )
            return HttpResponseRedirect(request.path)
        return admin_page(
            self,
            request,
            "admin/rewards/reward/attendance.html",
            title=f"Attendance at {reward.name}",
            original=reward,
            seats=seats,
            started=reward.event_starts_at <= timezone.now(),
        )


# Voucher codes --------------------------------------------------------------------------------------


class CodeStateFilter(ChoiceFilter):
    title = "state"
    parameter_name = "state"
    conditions = {
        "free": ("Free", Q(order_line__isnull=True)),
        "assigned": ("Assigned to an order", Q(order_line__isnull=False)),
    }


class CodeRewardFilter(admin.SimpleListFilter):
    """The rewards that hand out codes (a related-field filter would list every reward)."""

    title = "reward"
    parameter_name = "reward"

    def lookups(self, request, model_admin):
        return [(str(pk), name) for pk, name in Reward.objects.filter(uses_codes=True).values_list("pk", "name")]

    def queryset(self, request, queryset):
        value = self.value()
        return queryset.filter(reward_id=int(value)) if value and value.isdigit() else queryset


@admin.register(VoucherCode)
class VoucherCodeAdmin(DetailJoinsMixin, ReadOnlyModelAdmin):
    list_display = ("masked_code", "reward", "state", "order", "assigned_at", "created_at")
    list_filter = (CodeStateFilter, CodeRewardFilter)
    list_select_related = ("reward", "order_line")
    detail_select_related = list_select_related
    search_fields = ("=code",)
    search_help_text = "An exact code."
    ordering = ("-id",)
    show_full_result_count = False
    paginator = EstimatedCountPaginator
    fields = ("reward", "code", "state", "order", "assigned_at", "created_at")
    readonly_fields = ("state", "order")

    @admin.display(description="Code")
    def masked_code(self, obj):
        return mask(obj.code)

    @admin.display(description="State")
    def state(self, obj):
        return "Assigned" if obj.order_line_id else "Free"

    @admin.display(description="Order")
    def order(self, obj):
        if not obj.order_line_id:
            return "—"
        order_id = obj.order_line.order_id
        url = reverse("admin:rewards_redemptionorder_change", args=[order_id])
        return format_html('<a href="{}">Order {}</a>', url, order_id)


# Orders ---------------------------------------------------------------------------------------------


class FulfilmentFilter(admin.SimpleListFilter):
    title = "fulfilment"
    parameter_name = "fulfilment"
    TO_FULFIL = "to_fulfil"

    def lookups(self, request, model_admin):
        return [(self.TO_FULFIL, "To fulfil (approved, with items to ship)")]

    def queryset(self, request, queryset):
        if self.value() != self.TO_FULFIL:
            return queryset
        ships = RedemptionLine.objects.filter(order=OuterRef("pk"), reward__kind__in=SHIPPED_KINDS)
        return queryset.filter(Exists(ships), status=OrderStatus.APPROVED)


class OrderLineInline(ReadOnlyInline):
    model = RedemptionLine
    verbose_name_plural = "Lines"
    fields = ("reward", "sku", "quantity", "points_each", "points", "codes")
    ordering = ("id",)

    def get_queryset(self, request):
        codes = VoucherCode.objects.order_by("id")
        return super().get_queryset(request).select_related("reward").prefetch_related(Prefetch("codes", codes))

    @admin.display(description="SKU")
    def sku(self, obj):
        return obj.reward.sku

    @admin.display(description="Points")
    def points(self, obj):
        return f"{obj.points_total:,}"

    @admin.display(description="Codes")
    def codes(self, obj):
        codes = list(obj.codes.all())
        if not codes:
            return "—"
        return format_html_join(
            ", ",
            '<a href="{}">{}</a>',
            ((reverse("admin:rewards_vouchercode_change", args=[code.pk]), mask(code.code)) for code in codes),
        )


class OrderEventInline(EventHistoryInline):
    model = OrderEvent


# The order page's buttons: the list action making each move an order can make, and its label ("…": it asks first).
# Moves forward first; the first the order can make is the page's default button.
ORDER_PAGE_MOVES = {
    OrderStatus.APPROVED: ("approve", gettext_lazy("Approve")),
    OrderStatus.FULFILLED: ("mark_fulfilled", gettext_lazy("Mark fulfilled…")),
    OrderStatus.DELIVERED: ("mark_delivered", gettext_lazy("Mark delivered")),
    OrderStatus.REJECTED: ("reject", gettext_lazy("Reject…")),
    OrderStatus.CANCELLED: ("cancel", gettext_lazy("Cancel…")),
}


def describe_order(order: RedemptionOrder) -> str:
    return f"Order {order.pk} — {order.member.user.email}, {order.total_points:,} points, {order.get_status_display()}"


@admin.register(RedemptionOrder)
class RedemptionOrderAdmin(DetailJoinsMixin, ReadOnlyModelAdmin):
    # Members place orders on the member site; orders move only through the actions, which record who did what
    # and when.
    list_display = (
        "__str__",
        "created_at",
        "status",
        "member_email",
        "partner",
        "payer",
        "total_points",
        "line_count",
        "tracking",
    )
    list_filter = (FulfilmentFilter, "status", "paid_by", "program")
    list_select_related = ("member__user", "member__partner")
    detail_select_related = (
        "program",
        "member__user",
        "member__partner",
        "account__program",
        "account__member__user",
        "account__member__partner",
        "account__partner",
        "spend_entry",
        "refund_entry",
    )
    search_fields = ("member__user__email", "member__partner__name", "=tracking_number")
    search_help_text = "Search by order number, member e-mail, partner or tracking number."
    date_hierarchy = "created_at"
    ordering = ("-created_at", "-id")
    show_full_result_count = False
    fieldsets = (
        (None, {"fields": ("program", "member", "member_email", "paid_by", "account", "total_points", "status")}),
        (
            "Delivery",
            {
                "fields": (
                    "delivery_name",
                    "delivery_street",
                    ("delivery_postcode", "delivery_city"),
                    "delivery_country",
                    "delivery_phone",
                )
            },
        ),
        ("Fulfilment", {"fields": ("carrier", "tracking_number")}),
        ("Decision", {"fields": ("decision_reason",)}),
        ("Ledger", {"fields": ("spend_entry", "refund_entry", "checkout_key", "created_at", "updated_at")}),
    )
    readonly_fields = ("member_email",)
    inlines = (OrderLineInline, OrderEventInline)
    actions = (
        "approve",
        "reject",
        "cancel",
        "mark_fulfilled",
        "mark_delivered",
        "export_supplier_csv",
        "export_supplier_xlsx",
    )

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(line_count=count_of(RedemptionLine.objects.filter(order=OuterRef("pk")), "order"))
        )

    def has_manage_permission(self, request):
        return is_program_manager(request.user)

    def get_search_results(self, request, queryset, search_term):
        results, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        number = search_term.strip().removeprefix("#")
        if number.isdigit() and len(number) < 19:  # an order number (and not beyond a bigint)
            results |= queryset.filter(pk=int(number))
        return results, may_have_duplicates

    member_email = related_field("member.user.email", "Member e-mail")

    @admin.display(description="Paid by", ordering="paid_by")
    def payer(self, obj):
        return "Company" if obj.paid_by == PaidBy.COMPANY else "Member"

    partner = related_field("member.partner.name", "Partner")

    @admin.display(description="Lines", ordering="line_count")
    def line_count(self, obj):
        return obj.line_count

    @admin.display(description="Tracking", ordering="tracking_number")
    def tracking(self, obj):
        return f"{obj.carrier} {obj.tracking_number}".strip() or "—"

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        # The order's page offers each move this order can make now, as a button posting the list's action that
        # makes it (so the same pages ask first); the actions, and so the buttons, are for those who manage orders.
        manages = obj is not None and self.has_manage_permission(request)
        context["order_moves"] = [move for to, move in ORDER_PAGE_MOVES.items() if manages and obj.can_move_to(to)]
        return super().render_change_form(request, context, add=add, change=change, form_url=form_url, obj=obj)

    # Status moves ------------------------------------------------------------------------------------

    def _move(self, request, orders, to: str, *, done: str, note: str = "", shipment=None) -> None:
        def move(order: RedemptionOrder) -> None:
            carrier, tracking_number = shipment(order) if shipment else ("", "")
            services.order_transition(
                order=order, to=to, actor=request.user, note=note, carrier=carrier, tracking_number=tracking_number
            )

        # The service's refusals of a bad move name the order; other refusals get its number in front.
        run_for_each(self, request, orders, with_name(move, str), done=done, noun="order")

    def _for_page(self, queryset) -> list[RedemptionOrder]:
        return list(queryset.select_related("member__user").order_by("pk"))

    @admin.action(description="Approve selected orders", permissions=["manage"])
    def approve(self, request, queryset):
        self._move(request, queryset.order_by("pk"), OrderStatus.APPROVED, done="Approved")

    def _refund(self, request, queryset, to: str, verb: str, past: str):
        """Rejecting or cancelling ("Reject", "Rejected"): asks for the reason the member sees with the refund."""
        orders = self._for_page(queryset)
        return ask_reason(
            self,
            request,
            orders,
            title=f"{verb} orders",
            intro="Each order's points go back to the account that paid, with its stock and codes.",
            button=f"{verb} and refund",
            describe=describe_order,
            reason_help="Required. The member sees it with the refund.",
            apply=lambda reason: self._move(request, orders, to, done=f"{past} and refunded", note=reason),
        )

    @admin.action(description="Reject selected orders (asks for a reason; refunds)", permissions=["manage"])
    def reject(self, request, queryset):
        return self._refund(request, queryset, OrderStatus.REJECTED, "Reject", "Rejected")

    @admin.action(description="Cancel selected orders (asks for a reason; refunds)", permissions=["manage"])
    def cancel(self, request, queryset):
        return self._refund(request, queryset, OrderStatus.CANCELLED, "Cancel", "Cancelled")

    @admin.action(description="Mark selected orders fulfilled (asks for tracking numbers)", permissions=["manage"])
    def mark_fulfilled(self, request, queryset):
        lines = RedemptionLine.objects.select_related("reward").order_by("id")
        orders = list(
            queryset.select_related("member__user", "member__partner")
            .prefetch_related(Prefetch("lines", queryset=lines))
            .order_by("pk")
        )
        form = OrderFulfilForm(answers(request), orders=orders)

        def apply(data) -> None:
            self._move(request, orders, OrderStatus.FULFILLED, done="Fulfilled", shipment=form.shipment)

        return ask(
            self,
            request,
            orders,
            form=form,
            apply=apply,
            title="Mark orders fulfilled",
            intro="Orders that ship to an address need a carrier and a tracking number; the member sees them.",
            button="Mark fulfilled",
            describe=describe_order,
            fields=["carrier"],
            template="admin/rewards/redemptionorder/mark_fulfilled.html",
            rows=form.rows(),
        )

    @admin.action(description="Mark selected orders delivered", permissions=["manage"])
    def mark_delivered(self, request, queryset):
        self._move(request, queryset.order_by("pk"), OrderStatus.DELIVERED, done="Recorded the delivery of")

    # Supplier file -----------------------------------------------------------------------------------

    def _supplier_lines(self, request, queryset):
        """The lines to export, or None (with a message) when the selection cannot go to the supplier."""
        orders = list(queryset.order_by("pk").values_list("pk", "status"))
        refused = [
            f"order {pk} is {OrderStatus(status).label.lower()}"
            for pk, status in orders
            if status not in exports.EXPORTABLE_STATUSES
        ]
        if refused:
            self.message_user(
                request,
                f"Only approved or fulfilled orders go to the supplier, but {names_listed(refused)}. "
                "Nothing was exported.",
                level=messages.ERROR,
            )
            return None
        lines = exports.supplier_lines(pk for pk, _status in orders)
        if not lines.exists():
            self.message_user(
                request, "None of the selected orders has items to ship. Nothing was exported.", level=messages.ERROR
            )
            return None
        return lines

    @staticmethod
    def _filename(extension: str) -> str:
        return f'attachment; filename="supplier-file-{timezone.localtime():%Y%m%d-%H%M}.{extension}"'

    def _supplier_file(self, request, queryset, extension: str, write, content_type: str, response=HttpResponse):
        """The supplier file of the selection, `write` turning its rows into the file's content, or None (with a
        message) when the selection cannot go to the supplier."""
        lines = self._supplier_lines(request, queryset)
        if lines is None:
            return None
        return response(
            write(exports.supplier_rows(lines)),
            content_type=content_type,
            headers={"Content-Disposition": self._filename(extension)},
        )

    @admin.action(description="Export supplier file (CSV) of the items to ship", permissions=["manage"])
    def export_supplier_csv(self, request, queryset):
        return self._supplier_file(
            request, queryset, "csv", exports.csv_stream, "text/csv; charset=utf-8", StreamingHttpResponse
        )

    @admin.action(description="Export supplier file (XLSX) of the items to ship", permissions=["manage"])
    def export_supplier_xlsx(self, request, queryset):
        return self._supplier_file(
            request,
            queryset,
            "xlsx",
            exports.xlsx_bytes,
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        )
