"""Referrals through the API: members read their own, partner owners their team's, a CRM (referrals:write) its
partners' and reports a deal won, with its amount, which converts the referral and pays the referrer by the
program's rules, once. Thin over loyalty.selectors.referrals and loyalty.services.referrals (referral_transition),
acting as the program manager who registered the client."""

from decimal import Decimal
from functools import partial

from django.db import transaction
from drf_spectacular.utils import OpenApiExample, extend_schema, extend_schema_field
from rest_framework import serializers
from rest_framework.response import Response

from integrations.api.base import (
    ApiView,
    Caller,
    ListApiView,
    StrictSerializer,
    page_response,
    problem_responses,
)
from integrations.api.problems import Problem
from integrations.constants import Scope
from loyalty.constants import ReferralStatus
from loyalty.filters_api import ReferralFilter
from loyalty.models import Referral
from loyalty.selectors import referrals as selectors
from loyalty.services import referrals as services

TAGS = ["Referrals"]

REFERRAL_EXAMPLE = {
    "id": 318,
    "status": "qualified",
    "company_name": "Hotel Seeblick GmbH",
    "company_id": "DE811234567",
    "contact_name": "Jonas Berger",
    "contact_email": "j.berger@seeblick.example",
    "contact_phone": "+49 8031 4455",
    "need": "Water softeners for twelve hotels",
    "member": 57,
    "member_name": "Sophie Turner",
    "partner": 12,
    "duplicate_of": None,
    "first_referred_at": None,
    "existing_partner": None,
    "deal_amount": None,
    "reason": "",
    "created_at": "2026-10-12T11:03:44+02:00",
    "decided_at": None,
}


def _not_found(pk: int) -> Problem:
    return Problem(404, "not_found", f"No referral {pk} that this caller may see in this program.")


def _referrals(caller: Caller):
    """The caller's referrals in their program, newest first, each with its referrer and `first_referred_at`."""
    return selectors.referral_list(viewer=caller.viewer, program=caller.program)


# Reading -----------------------------------------------------------------------------------------------------------


def _duplicate_of(referral: Referral, context: dict) -> int | None:
    """The earlier referral of the same prospect, for machine clients only: a member learns when their prospect was
    first referred, never by whom."""
    return referral.duplicate_of_id if context.get("is_client") else None


class ReferralListView(ListApiView):
    """Referrals in the program, newest first: a member's own, a partner owner's team's, a CRM's partners'. Filter by
    status, member, partner and when they were made."""

    scope = Scope.REFERRALS_WRITE
    for_members = True
    filterset_class = ReferralFilter

    class Output(serializers.Serializer):
        id = serializers.IntegerField()
        status = serializers.ChoiceField(choices=ReferralStatus.choices)
        company_name = serializers.CharField()
        company_id = serializers.CharField()
        contact_name = serializers.CharField()
        contact_email = serializers.EmailField()
        contact_phone = serializers.CharField()
        need = serializers.CharField()
        member = serializers.IntegerField(source="member_id")
        member_name = serializers.CharField(source="member.user.full_name")
        partner = serializers.IntegerField(source="partner_id")
        duplicate_of = serializers.SerializerMethodField(
            help_text="The first referral of the same prospect (machine clients only; null for people)."
        )
        first_referred_at = serializers.DateTimeField(
            allow_null=True, help_text="A duplicate: when its prospect was first referred."
        )
        existing_partner = serializers.IntegerField(source="existing_partner_id", allow_null=True)
        deal_amount = serializers.DecimalField(max_digits=14, decimal_places=2, allow_null=True)
        reason = serializers.CharField(help_text="Why it was rejected (the referrer reads it).")
        created_at = serializers.DateTimeField()
        decided_at = serializers.DateTimeField(allow_null=True)

        @extend_schema_field(serializers.IntegerField(allow_null=True))
        def get_duplicate_of(self, referral) -> int | None:
            return _duplicate_of(referral, self.context)

    @extend_schema(
        operation_id="referrals_list",
        responses={200: Output(many=True), **problem_responses(404, s404="An unknown or stale cursor")},
        examples=[OpenApiExample("A page", value=REFERRAL_EXAMPLE, response_only=True)],
        tags=TAGS,
    )
    def get(self, request):
        referrals = self.filtered(_referrals(self.caller))
        return page_response(self, referrals, partial(self.Output, context={"is_client": self.caller.is_client}))


class ReferralDetailView(ApiView):
    """One referral with its status history."""

    scope = Scope.REFERRALS_WRITE
    for_members = True

    class Output(serializers.Serializer):
        class Move(serializers.Serializer):
            from_status = serializers.CharField(help_text="Empty for the submission.")
            to_status = serializers.ChoiceField(choices=ReferralStatus.choices)
            at = serializers.DateTimeField(source="created_at")
            note = serializers.CharField()

        id = serializers.IntegerField()
        status = serializers.ChoiceField(choices=ReferralStatus.choices)
        company_name = serializers.CharField()
        company_id = serializers.CharField()
        contact_name = serializers.CharField()
        contact_email = serializers.EmailField()
        contact_phone = serializers.CharField()
        need = serializers.CharField()
        member = serializers.IntegerField(source="member_id")
        member_name = serializers.CharField(source="member.user.full_name")
        partner = serializers.IntegerField(source="partner_id")
        duplicate_of = serializers.SerializerMethodField(
            help_text="The first referral of the same prospect (machine clients only; null for people)."
        )
        first_referred_at = serializers.DateTimeField(allow_null=True)
        existing_partner = serializers.IntegerField(source="existing_partner_id", allow_null=True)
        deal_amount = serializers.DecimalField(max_digits=14, decimal_places=2, allow_null=True)
        reason = serializers.CharField()
        created_at = serializers.DateTimeField()
        decided_at = serializers.DateTimeField(allow_null=True)
        history = Move(many=True, source="events.all")

        @extend_schema_field(serializers.IntegerField(allow_null=True))
        def get_duplicate_of(self, referral) -> int | None:
            return _duplicate_of(referral, self.context)

    @extend_schema(
        operation_id="referral_get",
        responses={200: Output, **problem_responses(404)},
        examples=[
            OpenApiExample(
                "A referral",
                value=REFERRAL_EXAMPLE
                | {"history": [{"from_status": "", "to_status": "submitted", "at": "2026-10-12T11:03:44+02:00",
                                "note": "Submitted"}]},
                response_only=True,
            )
        ],
        tags=TAGS,
    )  # fmt: skip
    def get(self, request, pk: int):
        referral = _referrals(self.caller).prefetch_related("events").filter(pk=pk).first()
        if referral is None:
            raise _not_found(pk)
        return Response(self.Output(referral, context={"is_client": self.caller.is_client}).data)


# Converting --------------------------------------------------------------------------------------------------------


class ReferralConversionView(ApiView):
    """The CRM reports the deal won: the referral is converted (qualified first, when it still waits), with the deal
    amount if known, and the referrer is paid by the program's "referral converted" rules and told, as when the
    program team converts it in the admin. A prospect converts once: a referral whose prospect was converted through
    another, or one that was rejected or converted already, is refused (422) and nothing changes."""

    scope = Scope.REFERRALS_WRITE

    class Input(StrictSerializer):
        deal_amount = serializers.DecimalField(
            max_digits=14,
            decimal_places=2,
            min_value=Decimal(0),
            required=False,
            allow_null=True,
            default=None,
            help_text="The deal's amount in the program's money, if known (a rule may pay big deals more).",
        )

    class Output(serializers.Serializer):
        id = serializers.IntegerField()
        status = serializers.ChoiceField(choices=ReferralStatus.choices)
        deal_amount = serializers.DecimalField(max_digits=14, decimal_places=2, allow_null=True)
        existing_partner = serializers.IntegerField(
            source="existing_partner_id", allow_null=True, help_text="The partner the prospect already is, if any."
        )
        decided_at = serializers.DateTimeField()

    @extend_schema(
        operation_id="referral_convert",
        request=Input,
        responses={
            200: Output,
            **problem_responses(
                404,
                422,
                s422="codes: bad_transition (rejected or converted already), already_converted (the prospect "
                "converted through another referral), value_not_positive",
            ),
        },
        examples=[
            OpenApiExample("Deal won", value={"deal_amount": "48500.00"}, request_only=True),
            OpenApiExample(
                "Converted",
                value={"id": 318, "status": "converted", "deal_amount": "48500.00", "existing_partner": None,
                       "decided_at": "2026-11-06T15:30:00+01:00"},
                response_only=True,
                status_codes=["200"],
            ),
        ],
        tags=TAGS,
    )  # fmt: skip
    def post(self, request, pk: int):
        caller = self.caller
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        referral = selectors.referrals_for(caller.viewer).filter(program=caller.program, pk=pk).first()
        if referral is None:
            raise _not_found(pk)
        with transaction.atomic():  # a refused conversion leaves the referral unqualified too
            if referral.status == ReferralStatus.SUBMITTED:
                services.referral_transition(referral=referral, to=ReferralStatus.QUALIFIED, actor=caller.actor)
            converted = services.referral_transition(
                referral=referral,
                to=ReferralStatus.CONVERTED,
                actor=caller.actor,
                deal_amount=data.validated_data["deal_amount"],
            )
        return Response(self.Output(converted).data)
