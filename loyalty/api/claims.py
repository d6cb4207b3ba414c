"""Sales claims through the API: members read their own (and those that name them as a colleague), partner owners
their team's, machine clients with claims:read their partners'; a staff client (claims:decide, registered by a
program manager) approves or rejects waiting claims. Thin over loyalty.selectors.claims and loyalty.services.claims
(claim_approve, claim_reject), acting as the program manager who registered the client."""

from functools import partial

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
from loyalty.constants import ClaimFlag, ClaimStatus, RejectionReason
from loyalty.filters_api import ClaimFilter
from loyalty.models import SalesClaim
from loyalty.selectors import claims as selectors
from loyalty.services import claims as services

TAGS = ["Claims"]

CLAIM_EXAMPLE = {
    "id": 4410,
    "status": "submitted",
    "invoice_number": "INV-2026-0042",
    "invoice_date": "2026-10-28",
    "total_amount": "1840.00",
    "member": 57,
    "member_name": "Sophie Turner",
    "partner": 12,
    "flags": [],
    "submissions": 1,
    "created_at": "2026-11-02T16:20:05+01:00",
    "decided_at": None,
    "rejection_reason": "",
    "rejection_text": "",
}


def _not_found(pk: int) -> Problem:
    return Problem(404, "not_found", f"No claim {pk} that this caller may see in this program.")


def _claims(caller: Caller):
    """The claims the caller may see in their program (none without a program)."""
    claims = selectors.claims_for(caller.viewer)
    return claims.filter(program=caller.program) if caller.program is not None else claims.none()


def _sees_flags(caller: Caller) -> bool:
    """The automatic checks' flags are the program team's (the member site shows them to program managers only):
    staff clients and program managers read them."""
    return caller.is_client or caller.viewer.is_program_manager


# Reading -----------------------------------------------------------------------------------------------------------


class ClaimListView(ListApiView):
    """Sales claims in the program, newest first: a member's own and those naming them as a colleague, a partner
    owner's team's, a machine client's partners'. Filter by status, member, partner and submission time."""

    scope = Scope.CLAIMS_READ
    for_members = True
    filterset_class = ClaimFilter

    class Output(serializers.Serializer):
        id = serializers.IntegerField()
        status = serializers.ChoiceField(choices=ClaimStatus.choices)
        invoice_number = serializers.CharField()
        invoice_date = serializers.DateField()
        total_amount = serializers.DecimalField(max_digits=14, decimal_places=2)
        member = serializers.IntegerField(source="member_id")
        member_name = serializers.CharField(source="member.user.full_name")
        partner = serializers.IntegerField(source="partner_id")
        flags = serializers.SerializerMethodField(
            help_text="What the automatic checks found (for staff clients and program managers; empty for others)."
        )
        submissions = serializers.IntegerField(help_text="2 or more: corrected and sent again after a rejection.")
        created_at = serializers.DateTimeField()
        decided_at = serializers.DateTimeField(allow_null=True)
        rejection_reason = serializers.CharField(help_text="A rejection's reason code (empty unless rejected).")
        rejection_text = serializers.CharField()

        @extend_schema_field(serializers.ListField(child=serializers.ChoiceField(choices=ClaimFlag.choices)))
        def get_flags(self, claim) -> list[str]:
            return list(claim.flags) if self.context.get("sees_flags") else []

    @extend_schema(
        operation_id="claims_list",
        responses={200: Output(many=True), **problem_responses(404, s404="An unknown or stale cursor")},
        examples=[OpenApiExample("A page", value=CLAIM_EXAMPLE, response_only=True)],
        tags=TAGS,
    )
    def get(self, request):
        claims = _claims(self.caller).select_related("member__user")
        claims = self.filtered(claims)
        return page_response(self, claims, partial(self.Output, context={"sees_flags": _sees_flags(self.caller)}))


class ClaimDetailView(ApiView):
    """One claim with its lines (and the points each earned, in the accounts the caller may see), the colleagues who
    share it and its status history. The notes of sending and approving are the program team's (as on the member
    site): others read only why a claim was rejected."""

    scope = Scope.CLAIMS_READ
    for_members = True

    class Output(serializers.Serializer):
        class Line(serializers.Serializer):
            id = serializers.IntegerField()
            product = serializers.IntegerField()
            product_sku = serializers.CharField()
            product_name = serializers.CharField()
            quantity = serializers.DecimalField(max_digits=12, decimal_places=3)
            amount = serializers.DecimalField(max_digits=14, decimal_places=2)
            paid_quantity = serializers.DecimalField(
                max_digits=12, decimal_places=3, help_text="The part of the quantity that earned (one sale pays once)."
            )
            points = serializers.IntegerField(help_text="Points the line posted, in the accounts the caller sees.")

        class Move(serializers.Serializer):
            from_status = serializers.CharField(help_text="Empty for the first sending.")
            to_status = serializers.ChoiceField(choices=ClaimStatus.choices)
            at = serializers.DateTimeField()
            note = serializers.CharField()

        id = serializers.IntegerField()
        status = serializers.ChoiceField(choices=ClaimStatus.choices)
        invoice_number = serializers.CharField()
        invoice_date = serializers.DateField()
        total_amount = serializers.DecimalField(max_digits=14, decimal_places=2)
        member = serializers.IntegerField()
        member_name = serializers.CharField()
        partner = serializers.IntegerField()
        colleagues = serializers.ListField(child=serializers.IntegerField(), help_text="Members sharing the points.")
        flags = serializers.ListField(child=serializers.ChoiceField(choices=ClaimFlag.choices))
        submissions = serializers.IntegerField()
        created_at = serializers.DateTimeField()
        decided_at = serializers.DateTimeField(allow_null=True)
        rejection_reason = serializers.CharField()
        rejection_text = serializers.CharField()
        lines = Line(many=True)
        history = Move(many=True)

    @extend_schema(
        operation_id="claim_get",
        responses={200: Output, **problem_responses(404)},
        examples=[
            OpenApiExample(
                "A claim",
                value=CLAIM_EXAMPLE
                | {
                    "colleagues": [58],
                    "lines": [{"id": 9921, "product": 301, "product_sku": "AQ-00301", "product_name": "AquaSoft 300",
                               "quantity": "4.000", "amount": "1840.00", "paid_quantity": "0.000", "points": 0}],
                    "history": [{"from_status": "", "to_status": "submitted", "at": "2026-11-02T16:20:05+01:00",
                                 "note": ""}],
                },
                response_only=True,
            )
        ],
        tags=TAGS,
    )  # fmt: skip
    def get(self, request, pk: int):
        caller = self.caller
        try:
            claim = selectors.claim_get(viewer=caller.viewer, pk=pk)
        except SalesClaim.DoesNotExist:
            raise _not_found(pk) from None
        if caller.program is None or claim.program_id != caller.program.pk:
            raise _not_found(pk)
        entries = selectors.claim_entries(viewer=caller.viewer, claim=claim)
        events = list(claim.events.all())
        history = selectors.claim_history(viewer=caller.viewer, claim=claim)  # who reads which notes
        data = {
            "id": claim.pk,
            "status": claim.status,
            "invoice_number": claim.invoice_number,
            "invoice_date": claim.invoice_date,
            "total_amount": claim.total_amount,
            "member": claim.member_id,
            "member_name": claim.member.user.full_name,
            "partner": claim.partner_id,
            "colleagues": [colleague.pk for colleague in claim.colleagues.all()],
            "flags": list(claim.flags) if _sees_flags(caller) else [],
            "submissions": claim.submissions,
            "created_at": claim.created_at,
            "decided_at": claim.decided_at,
            "rejection_reason": claim.rejection_reason,
            "rejection_text": claim.rejection_text,
            "lines": [
                {
                    "id": line.pk,
                    "product": line.product_id,
                    "product_sku": line.product.sku,
                    "product_name": line.product.name,
                    "quantity": line.quantity,
                    "amount": line.amount,
                    "paid_quantity": line.paid_quantity,
                    "points": sum(e.available_delta + e.pending_delta for e in entries.get(line.pk, [])),
                }
                for line in claim.lines.all()
            ],
            "history": [
                {
                    "from_status": event.from_status,
                    "to_status": event.to_status,
                    "at": shown["at"],
                    "note": shown["note"],
                }
                for event, shown in zip(events, history, strict=True)
            ],  # fmt: skip
        }
        return Response(self.Output(data).data)


# Deciding ----------------------------------------------------------------------------------------------------------


class ClaimDecisionView(ApiView):
    """A staff client approves or rejects a claim that waits for review, as the program manager who registered it.
    Approving posts the claim's points through the program's rules (a flagged claim needs the reason it is approved
    anyway, kept in its history); rejecting needs a reason code (and a text for "other"), which the member reads and
    may correct the claim for. A claim already decided is refused (422 bad_transition) and nothing changes."""

    scope = Scope.CLAIMS_DECIDE

    class Input(StrictSerializer):
        decision = serializers.ChoiceField(choices=[("approve", "approve"), ("reject", "reject")])
        reason = serializers.CharField(
            max_length=500,
            required=False,
            allow_blank=True,
            default="",
            help_text="Approving: why a flagged claim is approved anyway (at most 300 characters; required when "
            f"flagged). Rejecting: the reason code, one of {', '.join(RejectionReason.values)}.",
        )
        text = serializers.CharField(
            max_length=500,
            required=False,
            allow_blank=True,
            default="",
            help_text='Rejecting: what is wrong, for the member (required with reason "other").',
        )

        def validate(self, attrs):
            if attrs["decision"] == "approve" and attrs["text"].strip():
                raise serializers.ValidationError({"text": "Only a rejection has a text; say why in reason."})
            return attrs

    class Output(serializers.Serializer):
        id = serializers.IntegerField()
        status = serializers.ChoiceField(choices=ClaimStatus.choices)
        decided_at = serializers.DateTimeField(allow_null=True)
        points = serializers.IntegerField(help_text="Points the claim posted (every share), 0 unless approved.")
        rejection_reason = serializers.CharField()
        rejection_text = serializers.CharField()

    @extend_schema(
        operation_id="claim_decide",
        request=Input,
        responses={
            200: Output,
            **problem_responses(
                404,
                422,
                s422="codes: bad_transition (not waiting for review), reason_required, text_required, "
                "text_too_long, rules_busy (a sell-out import is posting: try again once it has finished)",
            ),
        },
        examples=[
            OpenApiExample("Approve", value={"decision": "approve"}, request_only=True),
            OpenApiExample(
                "Approve a flagged claim",
                value={"decision": "approve", "reason": "Invoice checked with the distributor."},
                request_only=True,
            ),
            OpenApiExample(
                "Reject",
                value={"decision": "reject", "reason": "other", "text": "The invoice shows another company's name."},
                request_only=True,
            ),
            OpenApiExample(
                "Approved",
                value={"id": 4410, "status": "approved", "decided_at": "2026-11-04T10:12:00+01:00", "points": 920,
                       "rejection_reason": "", "rejection_text": ""},
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
        claim = _claims(caller).filter(pk=pk).first()
        if claim is None:
            raise _not_found(pk)
        decision, reason = data.validated_data["decision"], data.validated_data["reason"]
        if decision == "approve":
            decided = services.claim_approve(claim=claim, actor=caller.actor, reason=reason)
        else:
            decided = services.claim_reject(
                claim=claim, actor=caller.actor, reason=reason.strip(), text=data.validated_data["text"]
            )
        points = 0
        if decided.status == ClaimStatus.APPROVED:
            entries = selectors.claim_entries(viewer=caller.viewer, claim=decided)
            points = sum(entry.available_delta + entry.pending_delta for rows in entries.values() for entry in rows)
        out = {
            "id": decided.pk,
            "status": decided.status,
            "decided_at": decided.decided_at,
            "points": points,
            "rejection_reason": decided.rejection_reason,
            "rejection_text": decided.rejection_text,
        }
        return Response(self.Output(out).data)
