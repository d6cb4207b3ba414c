"""Reward orders through the API: a member (the phone app) places an order for themselves, or a partner owner for the
company account; members read theirs, owners their team's, machine clients with orders:read their partners'; a
fulfilment vendor (orders:write) moves an order on: shipped with carrier and tracking number, delivered, cancelled.
Thin over rewards.services (order_place, order_transition) and rewards.selectors (orders_for, order_get)."""

import hashlib
import uuid

from django.db.models import Prefetch
from drf_spectacular.utils import OpenApiExample, extend_schema, extend_schema_field
from rest_framework import serializers
from rest_framework.response import Response

from integrations.api.base import (
    IDEMPOTENCY_HEADER,
    ApiView,
    Caller,
    ListApiView,
    StrictSerializer,
    page_response,
    problem_responses,
)
from integrations.api.problems import Problem
from integrations.constants import Scope
from rewards import selectors, services
from rewards.constants import MAX_QUANTITY_PER_LINE, OrderStatus, PaidBy
from rewards.filters import OrderFilter
from rewards.models import RedemptionLine, RedemptionOrder

TAGS = ["Orders"]

# The moves a fulfilment vendor makes (approving and rejecting stay with the program team).
VENDOR_MOVES = [
    (OrderStatus.FULFILLED.value, "fulfilled: shipped (send carrier and tracking_number)"),
    (OrderStatus.DELIVERED.value, "delivered"),
    (OrderStatus.CANCELLED.value, "cancelled: points, stock and codes go back (send the reason the member reads)"),
]

ORDER_EXAMPLE = {
    "id": 812,
    "status": "approved",
    "paid_by": "member",
    "total_points": 4500,
    "member": 57,
    "member_name": "Sophie Turner",
    "partner": 12,
    "created_at": "2026-11-03T09:41:12+01:00",
    "updated_at": "2026-11-03T09:41:12+01:00",
    "lines": [{"reward": 31, "reward_name": "Insulated bottle", "quantity": 3, "points_each": 1500}],
    "delivery": {"name": "Sophie Turner", "street": "Hauptstr. 5", "postcode": "10115", "city": "Berlin",
                 "country": "Germany", "phone": "+49 30 1234567"},
    "carrier": "",
    "tracking_number": "",
    "decision_reason": "",
}  # fmt: skip


def _order_not_found(pk: int) -> Problem:
    return Problem(404, "not_found", f"No order {pk} that this caller may see in this program.")


def _orders(caller: Caller):
    """The orders the caller may see in their program (none without a program)."""
    orders = selectors.orders_for(caller.viewer)
    return orders.filter(program=caller.program) if caller.program is not None else orders.none()


def _checkout_key(caller: Caller, idempotency_key: str | None) -> str:
    """The order's checkout key: derived from the caller and their Idempotency-Key when they sent one, so that the
    same key places one order even after the stored outcome has expired; otherwise a new one."""
    if not idempotency_key:
        return f"api:{uuid.uuid4().hex}"
    return f"api:{hashlib.sha256(f'{caller.owner}:{idempotency_key}'.encode()).hexdigest()}"


# Reading -----------------------------------------------------------------------------------------------------------


class OrderListView(ListApiView):
    """GET /orders/ (the address POST /orders/ shares: urls_orders.by_method)."""

    scope = Scope.ORDERS_READ
    for_members = True
    filterset_class = OrderFilter

    class Output(serializers.Serializer):
        class Line(serializers.Serializer):
            reward = serializers.IntegerField(source="reward_id")
            reward_name = serializers.CharField(source="reward.name")
            quantity = serializers.IntegerField()
            points_each = serializers.IntegerField()

        class Delivery(serializers.Serializer):
            name = serializers.CharField(source="delivery_name")
            street = serializers.CharField(source="delivery_street")
            postcode = serializers.CharField(source="delivery_postcode")
            city = serializers.CharField(source="delivery_city")
            country = serializers.CharField(source="delivery_country")
            phone = serializers.CharField(source="delivery_phone")

        id = serializers.IntegerField()
        status = serializers.ChoiceField(choices=OrderStatus.choices)
        paid_by = serializers.ChoiceField(choices=PaidBy.choices)
        total_points = serializers.IntegerField()
        member = serializers.IntegerField(source="member_id")
        member_name = serializers.CharField(source="member.user.full_name")
        partner = serializers.IntegerField(source="member.partner_id")
        created_at = serializers.DateTimeField()
        updated_at = serializers.DateTimeField()
        lines = Line(many=True)
        delivery = Delivery(source="*", help_text="Empty strings when nothing is shipped.")
        carrier = serializers.CharField()
        tracking_number = serializers.CharField()
        decision_reason = serializers.CharField(help_text="Why it was rejected or cancelled.")

    @extend_schema(
        operation_id="orders_list",
        responses={200: Output(many=True), **problem_responses(404, s404="An unknown or stale cursor")},
        examples=[OpenApiExample("A page", value=ORDER_EXAMPLE, response_only=True)],
        tags=TAGS,
    )
    def get(self, request):
        """Reward orders in the program, newest first: a member's own, a partner owner's team's, a machine client's
        partners' (every partner's, or a distributor's and its dealers'). Filter by status, member, partner, and by
        when they were placed or last moved (`updated_since`: a fulfilment vendor's poll)."""
        lines = RedemptionLine.objects.select_related("reward").order_by("pk")
        orders = _orders(self.caller).select_related("member__user").prefetch_related(Prefetch("lines", lines))
        orders = self.filtered(orders)
        return page_response(self, orders, self.Output)


class OrderDetailView(ApiView):
    """One order with its lines, delivery, tracking and status history. Voucher codes show only to the person who
    ordered, once the order is fulfilled (as on the member site)."""

    scope = Scope.ORDERS_READ
    for_members = True

    class Output(serializers.Serializer):
        class Line(serializers.Serializer):
            reward = serializers.IntegerField(source="reward_id")
            reward_name = serializers.CharField(source="reward.name")
            quantity = serializers.IntegerField()
            points_each = serializers.IntegerField()
            codes = serializers.SerializerMethodField(help_text="Voucher codes: only for the person who ordered.")

            @extend_schema_field(serializers.ListField(child=serializers.CharField()))
            def get_codes(self, line) -> list[str]:
                return [code.code for code in line.codes.all()] if self.context.get("show_codes") else []

        class Delivery(serializers.Serializer):
            name = serializers.CharField(source="delivery_name")
            street = serializers.CharField(source="delivery_street")
            postcode = serializers.CharField(source="delivery_postcode")
            city = serializers.CharField(source="delivery_city")
            country = serializers.CharField(source="delivery_country")
            phone = serializers.CharField(source="delivery_phone")

        class Move(serializers.Serializer):
            from_status = serializers.CharField(help_text="Empty for the placing.")
            to_status = serializers.ChoiceField(choices=OrderStatus.choices)
            at = serializers.DateTimeField(source="created_at")
            note = serializers.CharField()

        id = serializers.IntegerField()
        status = serializers.ChoiceField(choices=OrderStatus.choices)
        paid_by = serializers.ChoiceField(choices=PaidBy.choices)
        total_points = serializers.IntegerField()
        member = serializers.IntegerField(source="member_id")
        member_name = serializers.CharField(source="member.user.full_name")
        partner = serializers.IntegerField(source="member.partner_id")
        created_at = serializers.DateTimeField()
        updated_at = serializers.DateTimeField()
        lines = Line(many=True)
        delivery = Delivery(source="*", help_text="Empty strings when nothing is shipped.")
        carrier = serializers.CharField()
        tracking_number = serializers.CharField()
        decision_reason = serializers.CharField(help_text="Why it was rejected or cancelled.")
        history = Move(many=True, source="events")

    @extend_schema(
        operation_id="order_get",
        responses={200: Output, **problem_responses(404)},
        examples=[
            OpenApiExample(
                "An order",
                value=ORDER_EXAMPLE
                | {
                    "lines": [ORDER_EXAMPLE["lines"][0] | {"codes": []}],
                    "history": [
                        {"from_status": "", "to_status": "placed", "at": "2026-11-03T09:41:12+01:00", "note": ""},
                        {"from_status": "placed", "to_status": "approved", "at": "2026-11-03T09:41:12+01:00",
                         "note": "Approved automatically (under the approval threshold)"},
                    ],
                },
                response_only=True,
            )
        ],
        tags=TAGS,
    )  # fmt: skip
    def get(self, request, pk: int):
        caller = self.caller
        try:
            order = selectors.order_get(viewer=caller.viewer, pk=pk)
        except RedemptionOrder.DoesNotExist:
            raise _order_not_found(pk) from None
        if caller.program is None or order.program_id != caller.program.pk:
            raise _order_not_found(pk)
        # Codes are as good as money: only the person who ordered sees them (never a machine client).
        show_codes = not caller.is_client and selectors.can_see_codes(viewer=caller.viewer, order=order)
        return Response(self.Output(order, context={"show_codes": show_codes}).data)


# Placing -----------------------------------------------------------------------------------------------------------


class OrderCreateView(ApiView):
    """POST /orders/ (the address GET /orders/ shares: urls_orders.by_method)."""

    for_members = True  # people only: a machine client places no orders

    class Input(StrictSerializer):
        class Line(StrictSerializer):
            reward = serializers.IntegerField(min_value=1, help_text="The reward's id (the catalogue's).")
            quantity = serializers.IntegerField(min_value=1, max_value=MAX_QUANTITY_PER_LINE)

        class Address(StrictSerializer):
            name = serializers.CharField(max_length=150, required=False, allow_blank=True, default="")
            street = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
            postcode = serializers.CharField(max_length=20, required=False, allow_blank=True, default="")
            city = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")
            country = serializers.CharField(max_length=60, required=False, allow_blank=True, default="")
            phone = serializers.CharField(
                max_length=30, required=False, allow_blank=True, default="", help_text="For the courier; optional."
            )

        lines = Line(many=True, allow_empty=False, max_length=50, help_text="Each reward once.")
        paid_by = serializers.ChoiceField(
            choices=PaidBy.choices,
            default=PaidBy.MEMBER,
            help_text="The account that pays: every reward of the order must be paid from it.",
        )
        address = Address(
            required=False,
            help_text="Needed (name, street, postcode, city, country) when a reward is shipped or set up on site.",
        )

    class Output(serializers.Serializer):
        class Line(serializers.Serializer):
            reward = serializers.IntegerField(source="reward_id")
            quantity = serializers.IntegerField()
            points_each = serializers.IntegerField()

        id = serializers.IntegerField()
        status = serializers.ChoiceField(
            choices=OrderStatus.choices,
            help_text="placed: waits for the program team; approved or fulfilled (codes ready) at once under the "
            "program's approval threshold.",
        )
        paid_by = serializers.ChoiceField(choices=PaidBy.choices)
        total_points = serializers.IntegerField()
        created_at = serializers.DateTimeField()
        lines = Line(many=True)

    @extend_schema(
        operation_id="order_create",
        request=Input,
        responses={
            201: Output,
            **problem_responses(
                404,
                422,
                s422="codes: insufficient_points, out_of_stock, codes_exhausted, restricted (not eligible, or over the "
                "per-member limit), owner_only, paid_by, address, inactive, duplicate_line, key_reused, "
                "unknown_reward",
            ),
        },
        examples=[
            OpenApiExample(
                "Three bottles, shipped",
                value={"lines": [{"reward": 31, "quantity": 3}], "paid_by": "member",
                       "address": {"name": "Sophie Turner", "street": "Hauptstr. 5", "postcode": "10115",
                                   "city": "Berlin", "country": "Germany", "phone": "+49 30 1234567"}},
                request_only=True,
            ),
            OpenApiExample(
                "Placed",
                value={"id": 812, "status": "approved", "paid_by": "member", "total_points": 4500,
                       "created_at": "2026-11-03T09:41:12+01:00",
                       "lines": [{"reward": 31, "quantity": 3, "points_each": 1500}]},
                response_only=True,
                status_codes=["201"],
            ),
        ],
        tags=TAGS,
    )  # fmt: skip
    def post(self, request):
        """Redeem points for rewards: a member orders for themselves (paid_by "member"), a partner owner may order
        rewards paid from the company account (paid_by "company"). All or nothing, through the same checkout as the
        member site: the same eligibility, limits, stock and balance checks. Rewards that are shipped or set up on
        site need the delivery address. Send an Idempotency-Key: the same key places one order."""
        caller = self.caller
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        member = caller.viewer.member
        if member is None:
            raise Problem(403, "forbidden", "Only a partner's members place orders.")
        if caller.program is None:
            raise Problem(404, "not_found", "There is no active program to order in.")
        paid_by = data.validated_data["paid_by"]
        lines = [(line["reward"], line["quantity"]) for line in data.validated_data["lines"]]
        balances = selectors.balances(viewer=caller.viewer, program=caller.program)
        group = selectors.checkout_group(
            member=member, program=caller.program, paid_by=paid_by, lines=lines, balances=balances
        )
        if group is None:
            raise Problem(
                422,
                "unknown_reward",
                f"A line names no reward of this program paid from the {paid_by} account: check the reward ids "
                "against the catalogue, and paid_by.",
                errors=[{"field": "lines", "code": "unknown_reward", "reason": "No such reward for this account."}],
            )
        order = services.order_place(
            member=member,
            program=caller.program,
            items=group.items,
            paid_by=paid_by,
            checkout_key=_checkout_key(caller, request.headers.get(IDEMPOTENCY_HEADER)),
            address=data.validated_data.get("address"),
        )
        return Response(self.Output(order).data, status=201)


# Fulfilment --------------------------------------------------------------------------------------------------------


class OrderStatusView(ApiView):
    """A fulfilment vendor moves an order on: an approved order is shipped (`fulfilled`, with carrier and tracking
    number, which the member is sent), a shipped one `delivered`; an order that waits or is approved may be
    `cancelled`, with the reason the member reads (points, stock and codes go back). A move the order's status does
    not allow is refused (422 bad_transition) and changes nothing."""

    scope = Scope.ORDERS_WRITE

    class Input(StrictSerializer):
        status = serializers.ChoiceField(choices=VENDOR_MOVES)
        carrier = serializers.CharField(max_length=60, required=False, allow_blank=True, default="")
        tracking_number = serializers.CharField(max_length=80, required=False, allow_blank=True, default="")
        reason = serializers.CharField(
            max_length=300,
            required=False,
            allow_blank=True,
            default="",
            help_text="Required to cancel (the member reads it); for another move, a note kept in the history.",
        )

        def validate(self, attrs):
            shipment = attrs["carrier"].strip() or attrs["tracking_number"].strip()
            if shipment and attrs["status"] != OrderStatus.FULFILLED:
                raise serializers.ValidationError(
                    {"tracking_number": "Carrier and tracking number go with the move to fulfilled (shipped)."}
                )
            return attrs

    class Output(serializers.Serializer):
        id = serializers.IntegerField()
        status = serializers.ChoiceField(choices=OrderStatus.choices)
        carrier = serializers.CharField()
        tracking_number = serializers.CharField()
        decision_reason = serializers.CharField()
        updated_at = serializers.DateTimeField()

    @extend_schema(
        operation_id="order_status",
        request=Input,
        responses={
            200: Output,
            **problem_responses(404, 422, s422="codes: bad_transition (the order's status does not allow the move), "
                                "reason_required"),
        },
        examples=[
            OpenApiExample("Shipped", value={"status": "fulfilled", "carrier": "DHL",
                                             "tracking_number": "JJD000390007788"}, request_only=True),
            OpenApiExample("Cancelled", value={"status": "cancelled", "reason": "The supplier no longer makes it."},
                           request_only=True),
            OpenApiExample("Moved", value={"id": 812, "status": "fulfilled", "carrier": "DHL",
                                           "tracking_number": "JJD000390007788", "decision_reason": "",
                                           "updated_at": "2026-11-05T14:02:00+01:00"},
                           response_only=True, status_codes=["200"]),
        ],
        tags=TAGS,
    )  # fmt: skip
    def post(self, request, pk: int):
        caller = self.caller
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        order = _orders(caller).filter(pk=pk).first()
        if order is None:
            raise _order_not_found(pk)
        moved = services.order_transition(
            order=order,
            to=data.validated_data["status"],
            actor=caller.actor,
            note=data.validated_data["reason"],
            carrier=data.validated_data["carrier"],
            tracking_number=data.validated_data["tracking_number"],
        )
        return Response(self.Output(moved).data)
