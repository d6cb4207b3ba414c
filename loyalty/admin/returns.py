"""The back office of equipment returns: the kinds of equipment a program takes back, its collection points, and
the queue of returns — waiting ones first, oldest first — which program managers confirm (points post through the
rules, capped per member and month as the rules say) or reject with a reason the member reads (the serials are
released), in bulk, through loyalty.services.returns: each refusal is reported and the others go ahead. A return is
never edited here. Registered by loyalty/admin/__init__.py; query counts pinned in
tests/loyalty/test_returns_admin.py.
"""

from django.contrib import admin
from django.db.models import Case, IntegerField, Value, When
from django.utils.formats import number_format

from loyalty.common.admin import (
    DetailJoinsMixin,
    EventHistoryInline,
    ProgramManagerAdmin,
    ReadOnlyInline,
    ReadOnlyModelAdmin,
    ask_reason,
    is_program_manager,
    related_field,
    run_for_each,
    with_name,
)
from loyalty.constants import ReturnStatus
from loyalty.models import CollectionPoint, EquipmentReturn, EquipmentReturnEvent, ReturnedSerial, ReturnType
from loyalty.services.returns import return_confirm, return_reject, serial_key

WAITING_FIRST = Case(When(status=ReturnStatus.REGISTERED, then=Value(0)), default=Value(1), output_field=IntegerField())


def return_name(equipment_return: EquipmentReturn) -> str:
    return f"Return {equipment_return.pk}"


def describe_return(equipment_return: EquipmentReturn) -> str:
    return (
        f"Return {equipment_return.pk} — {equipment_return.member.user.email} ({equipment_return.partner.name}), "
        f"{equipment_return.quantity:,} × {equipment_return.return_type.name} on {equipment_return.returned_on}, "
        f"{equipment_return.get_status_display().lower()}"
    )


@admin.register(ReturnType)
class ReturnTypeAdmin(ProgramManagerAdmin):
    list_display = ("name", "program", "product_line", "requires_serials", "max_quantity", "is_active")
    list_filter = ("program", "requires_serials", "is_active")
    list_select_related = ("program", "product_line")
    search_fields = ("name",)


@admin.register(CollectionPoint)
class CollectionPointAdmin(ProgramManagerAdmin):
    list_display = ("name", "program", "partner", "address", "is_active")
    list_filter = ("program", "is_active")
    list_select_related = ("program", "partner")
    search_fields = ("name", "address", "partner__name")
    autocomplete_fields = ("partner",)


class ReturnedSerialInline(ReadOnlyInline):
    model = ReturnedSerial
    verbose_name_plural = "Serial numbers"
    fields = ("serial", "is_released")
    ordering = ("id",)


class EquipmentReturnEventInline(EventHistoryInline):
    model = EquipmentReturnEvent


@admin.register(EquipmentReturn)
class EquipmentReturnAdmin(DetailJoinsMixin, ReadOnlyModelAdmin):
    list_display = ("equipment_return", "status", "units", "type_name", "member_email", "partner_name", "point_name")
    list_display_links = ("equipment_return",)
    list_filter = ("status", "program", "return_type", "collection_point", ("returned_on", admin.DateFieldListFilter))
    list_select_related = ("member__user", "partner", "return_type", "collection_point")
    detail_select_related = ("program", "member__user", "partner", "return_type", "collection_point", "decided_by")
    search_fields = ("member__user__email", "partner__name")
    search_help_text = "Search by member e-mail, partner name or a serial number."
    ordering = (WAITING_FIRST.asc(), "created_at", "id")
    show_full_result_count = False
    actions = ("confirm", "reject")
    fields = (
        "program",
        "member",
        "partner",
        "return_type",
        "quantity",
        "returned_on",
        "collection_point",
        "status",
        "reason",
        "decided_by",
        "decided_at",
        "created_at",
    )
    inlines = (ReturnedSerialInline, EquipmentReturnEventInline)

    def get_search_results(self, request, queryset, search_term):
        """Also a serial number, compared by its matching key ("ab-12 3" finds AB-123)."""
        found, duplicates = super().get_search_results(request, queryset, search_term)
        key = serial_key(search_term)
        if key:
            serials = ReturnedSerial.objects.filter(serial_key=key).values("equipment_return_id")
            found |= queryset.filter(pk__in=serials)
        return found, duplicates

    def has_decide_permission(self, request):
        return is_program_manager(request.user)

    @admin.display(description="Return", ordering="created_at")
    def equipment_return(self, obj):
        return return_name(obj)

    @admin.display(description="Units", ordering="quantity")
    def units(self, obj):
        return number_format(obj.quantity, force_grouping=True)

    type_name = related_field("return_type.name", "What")
    member_email = related_field("member.user.email", "Member")
    partner_name = related_field("partner.name", "Partner")
    point_name = related_field("collection_point.name", "Collection point")

    def _selected(self, queryset) -> list[EquipmentReturn]:
        return list(queryset.select_related("member__user", "partner", "return_type").order_by("pk"))

    @admin.action(description="Confirm selected returns (points post)", permissions=["decide"])
    def confirm(self, request, queryset):
        capped = []

        def confirm_one(equipment_return):
            confirmed, payout = return_confirm(return_id=equipment_return.pk, actor=request.user)
            if payout.limited:
                held = "the member's cap" if payout.capped else "the rule's budget"
                capped.append(
                    f"{return_name(confirmed)} paid {payout.points:,} of {payout.wanted:,} points: {held} held back "
                    "the rest (the member is told)."
                )

        run_for_each(
            self,
            request,
            self._selected(queryset),
            with_name(confirm_one, return_name),
            done="Confirmed (points posted)",
            noun="return",
            name=return_name,
        )
        for note in capped:
            self.message_user(request, note)

    @admin.action(description="Reject selected returns (asks for a reason; serials released)", permissions=["decide"])
    def reject(self, request, queryset):
        returns = self._selected(queryset)

        def apply(reason: str) -> None:
            run_for_each(
                self,
                request,
                returns,
                with_name(lambda r: return_reject(return_id=r.pk, actor=request.user, reason=reason), return_name),
                done="Rejected",
                noun="return",
                name=return_name,
            )

        return ask_reason(
            self,
            request,
            returns,
            apply=apply,
            reason_help="Why the return is not confirmed (e.g. “nothing arrived at the collection point”). The "
            "member reads it.",
            title="Reject returns",
            intro="The member is told, with the reason. Nothing is paid; the serial numbers can be registered again.",
            button="Reject",
            describe=describe_return,
        )
