"""The rewards catalogue as the member site shows it to a person (rewards.selectors.catalogue: what their tier, role,
partner kind, region and negotiated conditions let them redeem now), with whether they can redeem each one now and
why not; or, for a machine client or staff not naming a member, the program's rewards on offer now."""

from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
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
from loyalty.common.links import absolute_url
from loyalty.common.queries import count_of
from partners.constants import CURRENT_MEMBER_STATUSES
from partners.visibility import members_for, partners_for, viewer_for
from rewards import selectors
from rewards.constants import PaidBy
from rewards.filters import RewardFilter
from rewards.models import Reward, VoucherCode

TAGS = ["Rewards"]
# The list's pages (page_response): documented here, as the schema does not find them in a view that is no ListView.
PAGE_PARAMETERS = [
    OpenApiParameter("cursor", str, description="The page to read: from the `next` or `previous` address."),
    OpenApiParameter("limit", int, description="Rows a page, 1 to 200 (default 50)."),
]
ORDERING = ("points_price", "id")


class _Query(StrictSerializer):
    member = serializers.IntegerField(min_value=1, required=False)


def _query(request) -> dict:
    """The ?member= of a catalogue request, checked (400 when it is not a number)."""
    params = request.query_params
    query = _Query(data={"member": params["member"]} if "member" in params else {})
    query.is_valid(raise_exception=True)
    return query.validated_data


MEMBER_PARAMETER = OpenApiParameter(
    "member",
    int,
    description="The catalogue as this member sees it (a member you may see). Default: your own when you are a "
    "partner's member; for a machine client or staff, the program's rewards on offer now, without eligibility.",
)


class _Catalogue:
    """Whose catalogue: a member's (with their balances, to say what they can redeem now), or the program's."""

    def __init__(self, caller: Caller, query: dict):
        self.caller, self.member, self.balances = caller, None, None
        wanted = query.get("member")
        if wanted is not None:
            found = members_for(caller.viewer).filter(pk=wanted, status__in=CURRENT_MEMBER_STATUSES)
            self.member = found.select_related("user", "partner", "role").first()
            if self.member is None:
                raise Problem(404, "not_found", f"There is no current member {wanted} that you may see.")
        elif caller.viewer.member is not None and not caller.is_client:
            self.member = caller.viewer.member
        if caller.program is None:
            raise Problem(404, "not_found", "No program is running.")
        if self.member is not None:
            viewer = caller.viewer if self.member == caller.viewer.member else viewer_for(self.member.user)
            self.balances = selectors.balances(viewer=viewer, program=caller.program)

    def rewards(self) -> QuerySet[Reward]:
        program = self.caller.program
        if self.member is not None:
            return selectors.catalogue(member=self.member, program=program)
        now = timezone.now()
        negotiated = Reward.allowed_partners.through.objects.filter(reward=OuterRef("pk"))
        seen = partners_for(self.caller.viewer)
        free = VoucherCode.objects.filter(reward=OuterRef("pk"), order_line__isnull=True)
        return (
            Reward.objects.filter(program=program, is_active=True)
            .filter(Q(available_from__isnull=True) | Q(available_from__lte=now))
            .filter(Q(available_until__isnull=True) | Q(available_until__gt=now))
            .filter(~Exists(negotiated) | Exists(negotiated.filter(partner__in=seen)))
            .annotate(free_codes=count_of(free, "reward"))
            .select_related("category", "requires_certification")
        )

    def reasons(self, reward: Reward, *, limit_left: int | None = None) -> list[dict] | None:
        """Why the member cannot redeem the reward now (empty: they can); None without a member."""
        if self.balances is None:
            return None
        reasons = []
        if getattr(reward, "lacks_certificate", False):
            line = reward.requires_certification.name
            reasons.append(("certificate_required", f"Reserved for members certified on {line}."))
        if reward.out_of_stock:
            reasons.append(("out_of_stock", "Out of stock."))
        available = self.balances[reward.paid_by]
        if available is None:
            reasons.append(("owner_only", "Paid from the company account: only the partner's owner can redeem it."))
        elif available < reward.points_price:
            reasons.append(("insufficient_points", f"Not enough points: {available} available."))
        if limit_left == 0:
            reasons.append(("limit_reached", "The most one member may redeem in this period is reached."))
        return [{"code": code, "detail": detail} for code, detail in reasons]


class _Reward(serializers.Serializer):
    """A reward of the catalogue (each view's Output adds to these fields)."""

    class Category(serializers.Serializer):
        slug = serializers.CharField()
        name = serializers.CharField()

    class Reason(serializers.Serializer):
        code = serializers.CharField(
            help_text="certificate_required, out_of_stock, owner_only, insufficient_points or limit_reached."
        )
        detail = serializers.CharField()

    id = serializers.IntegerField()
    name = serializers.CharField()
    description = serializers.CharField()
    kind = serializers.CharField(help_text="merchandise, voucher, experience, session, donation, cashback, …")
    category = Category()
    points_price = serializers.IntegerField()
    paid_by = serializers.ChoiceField(choices=PaidBy.choices, help_text="The account it is paid from.")
    units_left = serializers.IntegerField(allow_null=True, help_text="null: unlimited.")
    needs_address = serializers.BooleanField(help_text="An order needs a delivery address.")
    image_url = serializers.CharField(allow_null=True)
    event_starts_at = serializers.DateTimeField(allow_null=True, help_text="A dated event or session: when.")
    event_place = serializers.CharField(allow_blank=True)
    available_until = serializers.DateTimeField(allow_null=True)
    requires_certification = serializers.CharField(
        allow_null=True, help_text="Reserved for members certified on this product line (its code)."
    )
    limit_per_member = serializers.IntegerField(allow_null=True)
    limit_period = serializers.CharField(help_text="month, quarter, year or ever.")
    can_redeem = serializers.BooleanField(
        allow_null=True, help_text="The member can redeem one now (null: the program's catalogue, no member)."
    )
    reasons = Reason(many=True, allow_null=True, help_text="Why the member cannot redeem it now.")

    def to_representation(self, reward):
        reasons = self.context["reasons"](reward)
        image = reward.image.url if reward.image else None
        return super().to_representation(
            self.more(reward) | {
                "id": reward.pk, "name": reward.name, "description": reward.description, "kind": reward.kind,
                "category": {"slug": reward.category.slug, "name": reward.category.name},
                "points_price": reward.points_price, "paid_by": reward.paid_by, "units_left": reward.units_left,
                "needs_address": reward.needs_address,
                "image_url": absolute_url(image) if image and image.startswith("/") else image,
                "event_starts_at": reward.event_starts_at, "event_place": reward.event_place,
                "available_until": reward.available_until,
                "requires_certification": reward.requires_certification.code
                if reward.requires_certification_id else None,
                "limit_per_member": reward.limit_per_member, "limit_period": reward.limit_period,
                "can_redeem": None if reasons is None else not reasons,
                "reasons": reasons,
            }
        )  # fmt: skip

    def more(self, reward) -> dict:
        """The values of the fields a view's Output adds."""
        return {}


REWARD_EXAMPLE = {
    "id": 42, "name": "Espresso machine", "description": "For the showroom.", "kind": "merchandise",
    "category": {"slug": "home", "name": "Home"}, "points_price": 12000, "paid_by": "member", "units_left": 8,
    "needs_address": True, "image_url": None, "event_starts_at": None, "event_place": "", "available_until": None,
    "requires_certification": None, "limit_per_member": 1, "limit_period": "year", "can_redeem": False,
    "reasons": [{"code": "insufficient_points", "detail": "Not enough points: 9500 available."}],
}  # fmt: skip


class RewardListView(ListApiView):
    """The catalogue, cheapest first."""

    scope = Scope.REWARDS_READ
    for_members = True
    filterset_class = RewardFilter

    class Output(_Reward):
        pass

    @extend_schema(
        operation_id="reward_list",
        description="The rewards catalogue, cheapest first, as the member site shows it to a member (what their "
        "tier, role, partner kind, region and negotiated conditions let them redeem now), with whether they can "
        "redeem each now and why not. Filter by kind, category, paid_by, words (q) and max_price.",
        parameters=[MEMBER_PARAMETER, *PAGE_PARAMETERS],
        responses={
            200: Output(many=True),
            **problem_responses(404, s404="No such member that you may see, or a bad cursor"),
        },
        filters=True,
        examples=[OpenApiExample("A reward", value=REWARD_EXAMPLE, response_only=True)],
        tags=TAGS,
    )
    def get(self, request):
        catalogue = _Catalogue(self.caller, _query(request))
        rewards = self.filtered(catalogue.rewards())
        context = {"request": request, "reasons": catalogue.reasons}
        return page_response(self, rewards, lambda rows, many: self.Output(rows, many=many, context=context),
                             ordering=ORDERING)  # fmt: skip


class RewardDetailView(ApiView):
    """One reward of the catalogue."""

    scope = Scope.REWARDS_READ
    for_members = True

    class Output(_Reward):
        limit_left = serializers.IntegerField(
            allow_null=True, help_text="How many more the member may redeem in this period (null: no limit or member)."
        )

        def more(self, reward) -> dict:
            return {"limit_left": self.context["limit_left"]}

    @extend_schema(
        operation_id="reward_get",
        parameters=[MEMBER_PARAMETER],
        responses={200: Output, **problem_responses(404)},
        examples=[OpenApiExample("A reward", value={**REWARD_EXAMPLE, "limit_left": 1}, response_only=True)],
        tags=TAGS,
    )
    def get(self, request, pk: int):
        catalogue = _Catalogue(self.caller, _query(request))
        reward = catalogue.rewards().filter(pk=pk).first()
        if reward is None:
            raise Problem(404, "not_found", f"There is no reward {pk} in this catalogue.")
        limit_left = None
        if catalogue.member is not None:
            limit_left = selectors.limit_left(reward=reward, member=catalogue.member)
        context = {"request": request, "limit_left": limit_left,
                   "reasons": lambda found: catalogue.reasons(found, limit_left=limit_left)}  # fmt: skip
        return Response(self.Output(reward, context=context).data)
