"""Balances and statements: the points accounts the caller sees in the program (loyalty.selectors.ledger.accounts_for),
one account, its statement, and a member's balance. A member sees their own account; a partner owner also the
company account and their people's; a machine client with balances:read every partner's, or its distributor's and
that distributor's dealers'."""

from datetime import timedelta

from django.db.models import DateTimeField, IntegerField, Min, OuterRef, QuerySet, Subquery, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from integrations.api.base import ApiView, Caller, ListApiView, page_response, problem_responses
from integrations.api.problems import Problem
from integrations.constants import Scope
from loyalty.constants import EXPIRING_SOON_DAYS
from loyalty.filters import AccountFilter
from loyalty.models import PointsAccount, PointsLot
from loyalty.selectors.ledger import accounts_for, statement
from partners.visibility import members_for

TAGS = ["Balances"]
# The list's pages (page_response): documented here, as the schema does not find them in a view that is no ListView.
PAGE_PARAMETERS = [
    OpenApiParameter("cursor", str, description="The page to read: from the `next` or `previous` address."),
    OpenApiParameter("limit", int, description="Rows a page, 1 to 200 (default 50)."),
]


def _accounts(caller: Caller) -> QuerySet[PointsAccount]:
    """The accounts the caller sees in their program, each with its holder's partner and the available points
    expiring within EXPIRING_SOON_DAYS (as the statement page shows them: two correlated subqueries on the open
    lots' index, no GROUP BY over the accounts)."""
    if caller.program is None:
        return PointsAccount.objects.none()
    horizon = timezone.now() + timedelta(days=EXPIRING_SOON_DAYS)
    lots = (
        PointsLot.objects.filter(account=OuterRef("pk"), remaining__gt=0, is_pending=False, expires_at__lte=horizon)
        .order_by()
        .values("account")
    )
    return (
        accounts_for(caller.viewer)
        .filter(program=caller.program)
        .annotate(
            holder_partner_id=Coalesce("partner_id", "member__partner_id"),
            expiring_points=Coalesce(
                Subquery(lots.annotate(n=Sum("remaining")).values("n"), output_field=IntegerField()), 0
            ),
            expiring_first=Subquery(
                lots.annotate(first=Min("expires_at")).values("first"), output_field=DateTimeField()
            ),
        )
    )


def _visible_account(caller: Caller, pk: int) -> PointsAccount:
    account = _accounts(caller).filter(pk=pk).first()
    if account is None:
        raise Problem(404, "not_found", f"There is no account {pk} that you may see.")
    return account


class _Expiring(serializers.Serializer):
    points = serializers.IntegerField(help_text=f"Available points that expire within {EXPIRING_SOON_DAYS} days.")
    first_date = serializers.DateField(allow_null=True, help_text="The first day some of them expire.")


def _balance(account: PointsAccount) -> dict:
    first = account.expiring_first
    return {
        "id": account.pk,
        "kind": "member" if account.member_id else "company",
        "member_id": account.member_id,
        "partner_id": account.holder_partner_id,
        "available": account.available,
        "pending": account.pending,
        "lifetime_earned": account.lifetime_earned,
        "redeemed": account.redeemed,
        "expired": account.expired,
        "expiring_soon": {
            "points": account.expiring_points,
            "first_date": timezone.localdate(first) if first else None,
        },
    }


class _Balance(serializers.Serializer):
    """An account's holder and balances, from an account of _accounts() (each view's Output adds to these)."""

    kind = serializers.CharField(help_text="member (a member's account) or company (a partner's company account).")
    member_id = serializers.IntegerField(allow_null=True, help_text="The member, for a member's account.")
    partner_id = serializers.IntegerField(help_text="The partner: the company's, or the member's.")
    available = serializers.IntegerField()
    pending = serializers.IntegerField(help_text="Earned, not available yet.")
    lifetime_earned = serializers.IntegerField()
    redeemed = serializers.IntegerField()
    expired = serializers.IntegerField()
    expiring_soon = _Expiring()

    def to_representation(self, instance):
        return super().to_representation(_balance(instance) if isinstance(instance, PointsAccount) else instance)


ACCOUNT_EXAMPLE = {
    "id": 901, "kind": "member", "member_id": 4711, "partner_id": 37, "available": 12450, "pending": 300,
    "lifetime_earned": 20950, "redeemed": 8000, "expired": 500,
    "expiring_soon": {"points": 1200, "first_date": "2026-12-31"},
}  # fmt: skip


class AccountListView(ListApiView):
    """The points accounts the caller sees in the program, newest first."""

    scope = Scope.BALANCES_READ
    for_members = True
    filterset_class = AccountFilter

    class Output(_Balance):
        id = serializers.IntegerField()

    @extend_schema(
        operation_id="account_list",
        description="The points accounts you may see in the program, newest first: a member their own; a partner "
        "owner also the company account and their people's; a machine client every partner's, or its distributor's "
        "and its dealers'. Filter by kind, member or partner.",
        parameters=PAGE_PARAMETERS,
        responses={200: Output(many=True), **problem_responses(404, s404="A bad cursor")},
        filters=True,
        examples=[OpenApiExample("An account", value=ACCOUNT_EXAMPLE, response_only=True)],
        tags=TAGS,
    )
    def get(self, request):
        accounts = self.filtered(_accounts(self.caller))
        return page_response(self, accounts, self.Output)


class AccountDetailView(ApiView):
    """One points account the caller sees."""

    scope = Scope.BALANCES_READ
    for_members = True

    class Output(_Balance):
        id = serializers.IntegerField()

    @extend_schema(
        operation_id="account_get",
        responses={200: Output, **problem_responses(404)},
        examples=[OpenApiExample("An account", value=ACCOUNT_EXAMPLE, response_only=True)],
        tags=TAGS,
    )
    def get(self, request, pk: int):
        return Response(self.Output(_visible_account(self.caller, pk)).data)


class AccountStatementView(ListApiView):
    """The entries of one account the caller sees, newest first."""

    scope = Scope.BALANCES_READ
    for_members = True

    class Output(serializers.Serializer):
        class Source(serializers.Serializer):
            type = serializers.CharField(help_text="What the entry comes from: claim, sales_import, training, …")
            id = serializers.CharField(help_text="Which one (a claim line's key, an import's id, …).")

        id = serializers.IntegerField()
        kind = serializers.CharField(help_text="earn, release, spend, expire, reverse, adjust or transfer.")
        points = serializers.IntegerField(help_text="The change: available points, or pending ones.")
        pending = serializers.BooleanField(help_text="The points are pending (not available yet).")
        explanation = serializers.CharField()
        created_at = serializers.DateTimeField()
        available_at = serializers.DateTimeField(allow_null=True, help_text="When pending points become available.")
        expires_at = serializers.DateTimeField(allow_null=True)
        source = Source()

        def to_representation(self, entry):
            return super().to_representation(
                {
                    "id": entry.pk,
                    "kind": entry.kind,
                    "points": entry.points,
                    "pending": entry.pending_delta != 0,
                    "explanation": entry.explanation,
                    "created_at": entry.created_at,
                    "available_at": entry.available_at,
                    "expires_at": entry.expires_at,
                    "source": {"type": entry.source_type, "id": entry.source_id},
                }
            )

    @extend_schema(
        operation_id="account_statement",
        description="Every entry of one account, newest first, each explaining itself.",
        parameters=PAGE_PARAMETERS,
        responses={200: Output(many=True), **problem_responses(404, s404="No account you may see, or a bad cursor")},
        examples=[
            OpenApiExample(
                "An entry",
                value={"id": 88120, "kind": "earn", "points": 120, "pending": False,
                       "explanation": "Softeners v2: 12 units × 10 pts = 120", "created_at": "2026-11-30T14:05:00Z",
                       "available_at": None, "expires_at": "2028-11-30T14:05:00Z",
                       "source": {"type": "sales_import", "id": "5521"}},
                response_only=True,
            )
        ],
        tags=TAGS,
    )  # fmt: skip
    def get(self, request, pk: int):
        account = _visible_account(self.caller, pk)
        return page_response(self, statement(account=account), self.Output)


class MemberBalanceView(ApiView):
    """A member's points account in the program (zero balances when they have earned nothing yet)."""

    scope = Scope.BALANCES_READ
    for_members = True

    class Output(_Balance):
        id = serializers.IntegerField(allow_null=True, help_text="The account; null when it has no entries yet.")

    @extend_schema(
        operation_id="member_balance",
        description="A member's points account in the program: yourself, or for a partner owner their people, or "
        "for a machine client any member it sees. A member without points yet has zero balances and no account id.",
        responses={200: Output, **problem_responses(404)},
        examples=[OpenApiExample("A balance", value=ACCOUNT_EXAMPLE, response_only=True)],
        tags=TAGS,
    )
    def get(self, request, pk: int):
        member = members_for(self.caller.viewer).filter(pk=pk).first()
        if member is None:
            raise Problem(404, "not_found", f"There is no member {pk} that you may see.")
        account = _accounts(self.caller).filter(member=member).first()
        if account is not None:
            return Response(self.Output(account).data)
        empty = {"id": None, "kind": "member", "member_id": member.pk, "partner_id": member.partner_id,
                 "available": 0, "pending": 0, "lifetime_earned": 0, "redeemed": 0, "expired": 0,
                 "expiring_soon": {"points": 0, "first_date": None}}  # fmt: skip
        return Response(self.Output(empty).data)
