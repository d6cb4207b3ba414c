"""Reads of rewards and orders that users see, scoped through partners.visibility."""

from dataclasses import dataclass
from datetime import datetime

from django.db.models import (
    BooleanField,
    Count,
    Exists,
    ExpressionWrapper,
    F,
    IntegerField,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
)
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from loyalty.common.queries import count_of
from loyalty.models import PartnerTier, PointsAccount, Program
from loyalty.selectors.certificates import certified_exists
from partners.models import Member
from partners.visibility import members_for, viewer_for
from rewards.constants import ADDRESS_FIELDS, LIVE_STATUSES, LimitPeriod, OrderStatus, PaidBy
from rewards.models import CartItem, OrderEvent, RedemptionLine, RedemptionOrder, Reward, RewardCategory, VoucherCode


def partner_tier_rank(*, program, partner) -> int | None:
    """The rank of the partner's current tier in the program (None: no tier yet)."""
    return PartnerTier.objects.filter(program=program, partner=partner).values_list("tier__rank", flat=True).first()


def _lacks_certificate(member: Member) -> ExpressionWrapper:
    """True for a reward reserved for members certified on a product line the member holds no valid certificate
    for today (an EXISTS test on the certificates' index, in the rewards' query)."""
    certified = certified_exists(member=member, on=timezone.localdate())
    return ExpressionWrapper(Q(requires_certification__isnull=False) & ~Q(certified), output_field=BooleanField())


def _redeemable(*, member: Member, program: Program) -> QuerySet[Reward]:
    """Rewards this member may redeem now: active, in their window, and open to their tier, role, kind and region.
    Rules on roles and regions are EXISTS tests: no join, no GROUP BY, no DISTINCT. A reward reserved for members
    certified on a product line stays in the catalogue for everyone (it tells what a certificate is good for), with
    `lacks_certificate` set when this member cannot redeem it (services.reward_problem refuses it)."""
    now = timezone.now()
    rank = partner_tier_rank(program=program, partner=member.partner_id)
    tier_ok = Q(min_tier__isnull=True) if rank is None else Q(min_tier__isnull=True) | Q(min_tier__rank__lte=rank)
    roles = Reward.allowed_roles.through.objects.filter(reward=OuterRef("pk"))
    regions = Reward.allowed_regions.through.objects.filter(reward=OuterRef("pk"))
    # Negotiated for named partners: only their members see it (anyone else: as if it did not exist).
    partners = Reward.allowed_partners.through.objects.filter(reward=OuterRef("pk"))
    return (
        Reward.objects.filter(program=program, is_active=True)
        .filter(Q(available_from__isnull=True) | Q(available_from__lte=now))
        .filter(Q(available_until__isnull=True) | Q(available_until__gt=now))
        .filter(tier_ok)
        .filter(Q(allowed_partner_kinds=[]) | Q(allowed_partner_kinds__contains=[member.partner.kind]))
        .filter(~Exists(roles) | Exists(roles.filter(role=member.role_id)))
        .filter(~Exists(regions) | Exists(regions.filter(region=member.partner.region_id)))
        .filter(~Exists(partners) | Exists(partners.filter(partner=member.partner_id)))
        .annotate(lacks_certificate=_lacks_certificate(member))
        .select_related("category", "min_tier", "requires_certification")
    )


def _with_free_codes(rewards: QuerySet[Reward]) -> QuerySet[Reward]:
    """Each reward's number of free codes: a correlated count on the voucher_free_idx partial index."""
    free = VoucherCode.objects.filter(reward=OuterRef("pk"), order_line__isnull=True)
    return rewards.annotate(free_codes=count_of(free, "reward"))


def catalogue(
    *,
    member: Member,
    program: Program,
    category: str = "",
    search: str = "",
    max_points: int | None = None,
    max_company_points: int | None = None,
) -> QuerySet[Reward]:
    """Rewards this member may redeem now, each with its number of free codes. With `max_points`, "what I can
    afford": only what can be had now (the home page's "Redeem a reward" counts the same)."""
    rewards = _with_free_codes(_redeemable(member=member, program=program))
    if category:
        rewards = rewards.filter(category__slug=category)
    if search:
        rewards = rewards.filter(Q(name__icontains=search) | Q(description__icontains=search))
    if max_points is not None:
        # Each reward against the account that pays for it, and with units left (Reward.units_left, in SQL).
        affordable = Q(paid_by=PaidBy.MEMBER, points_price__lte=max_points)
        if max_company_points is not None:
            affordable |= Q(paid_by=PaidBy.COMPANY, points_price__lte=max_company_points)
        units = Q(stock__isnull=True) | Q(stock__gt=0)
        in_stock = Q(uses_codes=True, free_codes__gt=0) | (Q(uses_codes=False) & units)
        rewards = rewards.filter(affordable & in_stock, lacks_certificate=False)
    return rewards.order_by("points_price", "name")


def period_start(period: str, moment: datetime) -> datetime | None:
    """Start of the limit period that contains `moment`, in the program's time zone (None: ever)."""
    local = timezone.localtime(moment).replace(hour=0, minute=0, second=0, microsecond=0)
    if period == LimitPeriod.MONTH:
        return local.replace(day=1)
    if period == LimitPeriod.QUARTER:
        return local.replace(day=1, month=(local.month - 1) // 3 * 3 + 1)
    if period == LimitPeriod.YEAR:
        return local.replace(day=1, month=1)
    return None


def already_ordered(*, reward: Reward, member: Member, moment: datetime | None = None) -> int:
    """Units of this reward the member has in live orders within the current limit period."""
    lines = RedemptionLine.objects.filter(reward=reward, order__member=member, order__status__in=LIVE_STATUSES)
    if (start := period_start(reward.limit_period, moment or timezone.now())) is not None:
        lines = lines.filter(order__created_at__gte=start)
    return lines.aggregate(total=Sum("quantity"))["total"] or 0


def limit_left(*, reward: Reward, member: Member) -> int | None:
    """How many more units the member may order in this period; None when the reward has no limit."""
    if reward.limit_per_member is None:
        return None
    return max(reward.limit_per_member - already_ordered(reward=reward, member=member), 0)


def reward_get(*, member: Member, program: Program, pk: int, free_codes: bool = False) -> Reward:
    """One reward the member may redeem now; `free_codes` adds its number of free codes (a count over the pool:
    only for the pages that show it, never for a redemption)."""
    rewards = _redeemable(member=member, program=program)
    return (_with_free_codes(rewards) if free_codes else rewards).get(pk=pk)


def category_list() -> list[RewardCategory]:
    return list(RewardCategory.objects.all())


def balances(*, viewer, program: Program) -> dict[str, int | None]:
    """Available points per payer (PaidBy): the viewer's own, and the company's for a partner owner (None for
    anyone else, who may not spend it). The viewer (a Viewer or a user) has a current membership."""
    viewer = viewer_for(viewer)
    accounts = PointsAccount.objects.filter(program=program)
    result = {
        PaidBy.MEMBER: accounts.filter(member=viewer.member).values_list("available", flat=True).first() or 0,
        PaidBy.COMPANY: None,
    }
    if viewer.is_owner:
        result[PaidBy.COMPANY] = (
            accounts.filter(partner=viewer.member.partner_id).values_list("available", flat=True).first() or 0
        )
    return result


def can_redeem_now(*, reward: Reward, balances: dict[str, int | None], limit_left: int | None) -> bool:
    """Whether "Redeem now" may take one unit at once (in one tap, or through the address step for a reward that
    needs an address): affordable from the account that pays for it, in stock (a reward with `free_codes` counted),
    within the member's limits and, for a reward reserved for certified members, certified (as _redeemable
    annotated)."""
    return (
        not getattr(reward, "lacks_certificate", False)
        and (balances[reward.paid_by] or 0) >= reward.points_price
        and not reward.out_of_stock
        and (limit_left is None or limit_left > 0)
    )


def units_left(*, reward: Reward) -> int | None:
    """The units of a reward that can still be redeemed, as stored now (None: unlimited)."""
    return _with_free_codes(Reward.objects.filter(pk=reward.pk)).get().units_left


def last_delivery_address(*, member: Member) -> dict[str, str]:
    """The address of the member's latest order that had one (empty: none yet), to prefill the next."""
    last = (
        RedemptionOrder.objects.filter(member=member)
        .exclude(delivery_street="")
        .order_by("-created_at", "-id")
        .values(*(f"delivery_{field}" for field in ADDRESS_FIELDS))
        .first()
    )
    return {field.removeprefix("delivery_"): value for field, value in (last or {}).items()}


def cart_reward(*, member: Member, pk: int) -> Reward | None:
    """A reward in the member's cart (None: it is not), whether or not the catalogue still offers it."""
    return Reward.objects.filter(pk=pk, pk__in=member.cart_items.values("reward")).first()


def cart_count(*, member: Member) -> int:
    return member.cart_items.count()


def cart_quantity(*, member: Member, reward: Reward) -> int | None:
    """How many of the reward are in the member's cart (None: it is not)."""
    return member.cart_items.filter(reward=reward).values_list("quantity", flat=True).first()


CART_GROUP_LABELS = {PaidBy.MEMBER: _("Paid from my points"), PaidBy.COMPANY: _("Paid from the company account")}


@dataclass(frozen=True)
class CheckoutLine:
    reward: Reward  # with `free_codes` counted
    quantity: int
    in_cart: bool

    @property
    def total(self) -> int:
        return self.reward.points_price * self.quantity

    @property
    def short(self) -> bool:
        """Fewer units left than the line asks for (out of stock when none are)."""
        left = self.reward.units_left
        return left is not None and left < self.quantity


@dataclass(frozen=True)
class CheckoutGroup:
    """The lines one account pays for in one checkout (the cart has one group per paying account)."""

    paid_by: str
    lines: list[CheckoutLine]
    available: int | None  # None: the member may not spend this account

    @property
    def label(self) -> str:
        return CART_GROUP_LABELS[self.paid_by]

    @property
    def total(self) -> int:
        return sum(line.total for line in self.lines)

    @property
    def can_pay(self) -> bool:
        return self.available is not None and self.available >= self.total

    @property
    def needs_address(self) -> bool:
        return any(line.reward.needs_address for line in self.lines)

    @property
    def short(self) -> bool:
        return any(line.short for line in self.lines)

    @property
    def from_cart(self) -> bool:
        return all(line.in_cart for line in self.lines)

    @property
    def items(self) -> list[tuple[Reward, int]]:
        return [(line.reward, line.quantity) for line in self.lines]

    @property
    def lines_key(self) -> str:
        """The lines as the checkout page posts them back ("<reward id>:<quantity>,…"): what the member confirmed."""
        return ",".join(f"{line.reward.pk}:{line.quantity}" for line in self.lines)


def _rewards_by_id(*, program: Program, ids) -> dict[int, Reward]:
    rewards = _with_free_codes(
        Reward.objects.filter(program=program, pk__in=list(ids)).select_related("category", "requires_certification")
    )
    return {reward.pk: reward for reward in rewards}


def cart_groups(*, member: Member, program: Program, balances: dict[str, int | None]) -> list[CheckoutGroup]:
    """The member's cart in this program, split by the account that pays (one checkout each). `balances` as from
    balances()."""
    cart = list(CartItem.objects.filter(member=member, reward__program=program).values_list("reward_id", "quantity"))
    rewards = _rewards_by_id(program=program, ids=[reward_id for reward_id, _quantity in cart])
    groups = []
    for paid_by in (PaidBy.MEMBER, PaidBy.COMPANY):
        lines = [
            CheckoutLine(reward=rewards[reward_id], quantity=quantity, in_cart=True)
            for reward_id, quantity in cart
            if rewards[reward_id].paid_by == paid_by
        ]
        if lines:
            groups.append(CheckoutGroup(paid_by=paid_by, lines=lines, available=balances[paid_by]))
    return groups


def checkout_group(
    *, member: Member, program: Program, paid_by: str, lines: list[tuple[int, int]], balances: dict[str, int | None]
) -> CheckoutGroup | None:
    """The checkout of `lines` ((reward id, quantity) each, as a checkout page posts them) from one account; None
    when there are none or one names no reward of this program paid from that account."""
    rewards = _rewards_by_id(program=program, ids={reward_id for reward_id, _quantity in lines})
    if not lines or any(reward_id not in rewards for reward_id, _quantity in lines):
        return None
    if any(reward.paid_by != paid_by for reward in rewards.values()):
        return None
    in_cart = set(member.cart_items.filter(reward__in=list(rewards)).values_list("reward_id", flat=True))
    return CheckoutGroup(
        paid_by=paid_by,
        lines=[CheckoutLine(reward=rewards[pk], quantity=quantity, in_cart=pk in in_cart) for pk, quantity in lines],
        available=balances[paid_by],
    )


def orders_for(viewer) -> QuerySet[RedemptionOrder]:
    """Orders the viewer (a Viewer or a user) may see: their own; a partner owner's team's; an account manager's
    portfolio's; all."""
    if viewer_for(viewer).sees_everyone:
        return RedemptionOrder.objects.all()
    return RedemptionOrder.objects.filter(member__in=members_for(viewer))


def order_list(*, viewer, status: str = "") -> QuerySet[RedemptionOrder]:
    orders = orders_for(viewer).select_related("member__user", "program").annotate(line_count=Count("lines"))
    if status:
        orders = orders.filter(status=status)
    return orders.order_by("-created_at", "-id")


def order_get(*, viewer, pk: int) -> RedemptionOrder:
    """One order with its lines, codes and history; RedemptionOrder.DoesNotExist if the viewer may not see it."""
    lines = RedemptionLine.objects.select_related("reward").prefetch_related(
        Prefetch("codes", queryset=VoucherCode.objects.order_by("id"))
    )
    return (
        orders_for(viewer)
        .select_related("member__user", "member__partner", "program")
        .prefetch_related(Prefetch("lines", queryset=lines), "events__actor")
        .get(pk=pk)
    )


def can_see_codes(*, viewer, order: RedemptionOrder) -> bool:
    """Codes are as good as money: only the person who ordered sees them, once the order is fulfilled."""
    viewer = viewer_for(viewer)
    is_theirs = viewer.is_authenticated and order.member.user_id == viewer.user.pk
    return is_theirs and order.status in (OrderStatus.FULFILLED, OrderStatus.DELIVERED)


def _event_title(event: OrderEvent) -> str:
    return gettext("Placed") if event.to_status == OrderStatus.PLACED else event.get_to_status_display()


def order_history(*, order: RedemptionOrder) -> list[dict]:
    """The order's status moves as the status-history list shows them (templates/includes/status_history.html):
    `title`, `at` and `note` each. Uses the events order_get prefetched."""
    return [{"title": _event_title(event), "at": event.created_at, "note": event.note} for event in order.events.all()]


# Events and sessions ------------------------------------------------------------------------------


def with_seats(rewards: QuerySet[Reward]) -> QuerySet[Reward]:
    """Each reward's seats taken by live orders (`seats_taken`) and, for one with stock, its capacity
    (`seat_capacity` = seats left in stock + seats taken; None: unlimited): a correlated sum, no GROUP BY."""
    live = RedemptionLine.objects.filter(reward=OuterRef("pk"), order__status__in=LIVE_STATUSES)
    taken = live.order_by().values("reward").annotate(n=Sum("quantity")).values("n")
    rewards = rewards.annotate(seats_taken=Coalesce(Subquery(taken, output_field=IntegerField()), Value(0)))
    return rewards.annotate(seat_capacity=F("stock") + F("seats_taken"))


def upcoming_events(*, rewards: QuerySet[Reward], limit: int | None = None) -> QuerySet[Reward]:
    """Of a catalogue (as catalogue() returns it), the dated events and sessions not started yet, soonest first,
    with their seats (with_seats)."""
    events = with_seats(rewards.filter(event_starts_at__gt=timezone.now())).order_by("event_starts_at", "name")
    return events[:limit] if limit else events


def event_list(*, member: Member, program: Program, limit: int | None = None) -> QuerySet[Reward]:
    """The dated events and expert sessions this member may book, those not started yet, soonest first, with their
    seats (with_seats) and free codes."""
    return upcoming_events(rewards=catalogue(member=member, program=program), limit=limit)


def upcoming_seats(*, viewer) -> QuerySet[RedemptionLine]:
    """The viewer's own seats at events that have not started, in live orders, soonest first (with the reward and
    the order)."""
    viewer = viewer_for(viewer)
    if not viewer.is_authenticated:
        return RedemptionLine.objects.none()
    return (
        RedemptionLine.objects.filter(
            order__in=orders_for(viewer).filter(member__user=viewer.user),
            order__status__in=LIVE_STATUSES,
            reward__event_starts_at__gt=timezone.now(),
        )
        .select_related("reward", "order")
        .order_by("reward__event_starts_at", "pk")
    )


def event_seats(*, reward: Reward) -> QuerySet[RedemptionLine]:
    """The seats of a dated event in live orders, with their holders, for the program team's attendance list."""
    return (
        RedemptionLine.objects.filter(reward=reward, order__status__in=LIVE_STATUSES)
        .select_related("order__member__user", "order__member__partner")
        .order_by("order__member__partner__name", "order__member__user__full_name", "pk")
    )


def seat_capacity(*, reward: Reward) -> int | None:
    """A dated event's seats in all: those left in stock and those live orders hold (None: unlimited)."""
    return with_seats(Reward.objects.filter(pk=reward.pk)).values_list("seat_capacity", flat=True).get()
