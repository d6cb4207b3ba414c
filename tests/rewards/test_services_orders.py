import itertools
from datetime import timedelta

import pytest
from django.utils import timezone

from loyalty.common.errors import ApplicationError
from loyalty.models import PointsEntry
from loyalty.selectors.ledger import ledger_problems
from loyalty.services import ledger
from partners.constants import MemberStatus, PartnerKind
from rewards import services
from rewards.constants import ORDER_TRANSITIONS, LimitPeriod, OrderStatus, PaidBy
from rewards.models import OrderEvent, RedemptionOrder, VoucherCode
from tests.loyalty.factories import ProgramFactory
from tests.partners.factories import MemberFactory, OwnerFactory, ProgramManagerFactory, RegionFactory, role
from tests.rewards.factories import ADDRESS, CodeRewardFactory, MerchandiseFactory, RewardFactory

pytestmark = pytest.mark.django_db
keys = (f"checkout-{n}" for n in itertools.count())


def funded_member(points=1000, program=None, **member_fields):
    program = program or ProgramFactory(order_approval_threshold=5000)
    member = MemberFactory(**member_fields)
    if points:
        ledger.earn(
            account=ledger.member_account(program=program, member=member), points=points, key=f"seed-{member.pk}"
        )
    return program, member


def place(member, program, items, **kwargs):
    kwargs.setdefault("paid_by", PaidBy.MEMBER)
    kwargs.setdefault("checkout_key", next(keys))
    kwargs.setdefault("address", ADDRESS)
    return services.order_place(member=member, program=program, items=items, **kwargs)


def available(program, member):
    return ledger.member_account(program=program, member=member).available


def test_placing_an_order_spends_points_takes_stock_and_is_approved_under_the_threshold():
    program, member = funded_member(1000)
    mug = MerchandiseFactory(program=program, points_price=150, stock=5)
    services.cart_set(member=member, reward=mug, quantity=2)
    order = place(member, program, [(mug, 2)])
    mug.refresh_from_db()
    assert (order.status, order.total_points, mug.stock) == (OrderStatus.APPROVED, 300, 3)
    assert available(program, member) == 700
    assert order.spend_entry.explanation.startswith(f"Order {order.pk}: 2 × ")
    assert list(order.events.values_list("from_status", "to_status")) == [
        ("", OrderStatus.PLACED),
        (OrderStatus.PLACED, OrderStatus.APPROVED),
    ]
    assert not member.cart_items.exists()


def test_orders_above_the_threshold_wait_for_a_program_manager():
    program, member = funded_member(10_000, program=ProgramFactory(order_approval_threshold=500))
    order = place(member, program, [(RewardFactory(program=program, points_price=600), 1)])
    assert order.status == OrderStatus.PLACED
    services.order_transition(order=order, to=OrderStatus.APPROVED, actor=ProgramManagerFactory())
    order.refresh_from_db()
    assert order.status == OrderStatus.APPROVED


def test_a_code_reward_is_fulfilled_at_once_with_its_code():
    program, member = funded_member(1000)
    card = CodeRewardFactory(program=program, codes=3)
    order = place(member, program, [(card, 2)])
    assert order.status == OrderStatus.FULFILLED
    assert VoucherCode.objects.filter(order_line__order=order).count() == 2
    assert order.delivery_street == ""  # nothing to ship


def test_the_same_checkout_twice_makes_one_order():
    program, member = funded_member(1000)
    reward = RewardFactory(program=program)
    first = place(member, program, [(reward, 1)], checkout_key="double-click")
    again = place(member, program, [(reward, 1)], checkout_key="double-click")
    assert again.pk == first.pk
    assert available(program, member) == 900


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda p: dict(reward=RewardFactory(program=p, points_price=5000)), "needs 5,000"),
        (lambda p: dict(reward=MerchandiseFactory(program=p, stock=0)), "out of stock"),
        (lambda p: dict(reward=CodeRewardFactory(program=p, codes=0)), "run out of codes"),
        (lambda p: dict(reward=RewardFactory(program=p, is_active=False)), "no longer available"),
        (
            lambda p: dict(reward=RewardFactory(program=p, available_until=timezone.now() - timedelta(days=1))),
            "no longer available",
        ),
        (
            lambda p: dict(reward=RewardFactory(program=p, available_from=timezone.now() + timedelta(days=3))),
            "can be redeemed from",
        ),
        (lambda p: dict(reward=RewardFactory(program=p, allowed_partner_kinds=[PartnerKind.INSTALLER])), "not offered"),
        (lambda p: dict(reward=RewardFactory(program=p, paid_by=PaidBy.COMPANY)), "paid from the"),
        (lambda p: dict(reward=RewardFactory(program=ProgramFactory())), "another program"),
        (lambda p: dict(reward=MerchandiseFactory(program=p), address={}), "delivery address"),
        (lambda p: dict(reward=RewardFactory(program=p), quantity=0), "Quantity must be"),
        (lambda p: dict(reward=RewardFactory(program=p), quantity=51), "Quantity must be"),
    ],
)
def test_refused_orders_say_why_and_change_nothing(setup, message):
    program, member = funded_member(1000)
    case = setup(program)
    reward = case["reward"]
    stock_before = reward.stock
    with pytest.raises(ApplicationError, match=message):
        place(member, program, [(reward, case.get("quantity", 1))], address=case.get("address", ADDRESS))
    reward.refresh_from_db()
    assert reward.stock == stock_before
    assert not RedemptionOrder.objects.exists()
    assert not VoucherCode.objects.filter(order_line__isnull=False).exists()
    assert available(program, member) == 1000
    assert PointsEntry.objects.count() == 1


def test_role_and_region_restrictions():
    program, member = funded_member(1000)
    for_engineers = RewardFactory(program=program)
    for_engineers.allowed_roles.add(role("engineer"))
    elsewhere = RewardFactory(program=program)
    elsewhere.allowed_regions.add(RegionFactory())
    for reward, message in [(for_engineers, "reserved for other roles"), (elsewhere, "not offered in")]:
        with pytest.raises(ApplicationError, match=message):
            place(member, program, [(reward, 1)])
    assert not RedemptionOrder.objects.exists()


def test_per_member_limit_per_period_counts_live_orders_only():
    program, member = funded_member(1000)
    reward = RewardFactory(program=program, points_price=10, limit_per_member=2, limit_period=LimitPeriod.MONTH)
    first = place(member, program, [(reward, 2)])
    with pytest.raises(ApplicationError, match="you have ordered that many already"):
        place(member, program, [(reward, 1)])
    services.order_transition(order=first, to=OrderStatus.CANCELLED, actor=ProgramManagerFactory(), note="Changed mind")
    place(member, program, [(reward, 2)])


def test_only_the_owner_spends_the_company_account():
    program = ProgramFactory()
    owner = OwnerFactory()
    rep = MemberFactory(partner=owner.partner)
    ledger.earn(account=ledger.partner_account(program=program, partner=owner.partner), points=500, key="company")
    seminar = RewardFactory(program=program, paid_by=PaidBy.COMPANY, points_price=200)
    with pytest.raises(ApplicationError, match="Only the partner owner"):
        place(rep, program, [(seminar, 1)], paid_by=PaidBy.COMPANY)
    order = place(owner, program, [(seminar, 1)], paid_by=PaidBy.COMPANY)
    order.account.refresh_from_db()
    assert (order.account.partner_id, order.account.available) == (owner.partner_id, 300)


def test_a_member_waiting_for_approval_cannot_redeem():
    program, member = funded_member(1000, status=MemberStatus.PENDING_APPROVAL)
    with pytest.raises(ApplicationError, match="not active yet"):
        place(member, program, [(RewardFactory(program=program), 1)])


def test_rejection_refunds_points_stock_and_codes():
    program, member = funded_member(5000, program=ProgramFactory(order_approval_threshold=10))
    mug = MerchandiseFactory(program=program, stock=3, points_price=100)
    card = CodeRewardFactory(program=program, codes=1, points_price=100)
    order = place(member, program, [(mug, 2), (card, 1)])
    assert order.status == OrderStatus.PLACED
    with pytest.raises(ApplicationError, match="Say why"):
        services.order_transition(order=order, to=OrderStatus.REJECTED, actor=ProgramManagerFactory())
    services.order_transition(order=order, to=OrderStatus.REJECTED, actor=ProgramManagerFactory(), note="Budget")
    mug.refresh_from_db()
    order.refresh_from_db()
    assert (mug.stock, available(program, member), order.decision_reason) == (3, 5000, "Budget")
    assert VoucherCode.objects.filter(reward=card, order_line__isnull=True).count() == 1
    assert order.refund_entry.reverses_id == order.spend_entry_id
    assert ledger_problems() == []


def test_fulfilment_records_tracking_and_delivery():
    program, member = funded_member(1000)
    order = place(member, program, [(MerchandiseFactory(program=program), 1)])
    manager = ProgramManagerFactory()
    services.order_transition(
        order=order, to=OrderStatus.FULFILLED, actor=manager, carrier="DHL", tracking_number="JD0001"
    )
    services.order_transition(order=order, to=OrderStatus.DELIVERED, actor=manager)
    order.refresh_from_db()
    assert (order.status, order.carrier, order.tracking_number) == (OrderStatus.DELIVERED, "DHL", "JD0001")
    assert order.events.count() == 4


ALL_MOVES = [(a, b) for a in OrderStatus.values for b in OrderStatus.values]


@pytest.mark.parametrize(("start", "to"), ALL_MOVES)
def test_every_allowed_move_works_and_every_other_is_refused(start, to):
    program, member = funded_member(1000)
    order = place(member, program, [(MerchandiseFactory(program=program), 1)])
    manager = ProgramManagerFactory()
    # Bring the order to `start` along allowed moves (refunded statuses from placed).
    path = {
        OrderStatus.PLACED: [],
        OrderStatus.APPROVED: [],
        OrderStatus.FULFILLED: [OrderStatus.FULFILLED],
        OrderStatus.DELIVERED: [OrderStatus.FULFILLED, OrderStatus.DELIVERED],
        OrderStatus.CANCELLED: [OrderStatus.CANCELLED],
        OrderStatus.REJECTED: [],
    }[start]
    if start in (OrderStatus.PLACED, OrderStatus.REJECTED):
        RedemptionOrder.objects.filter(pk=order.pk).update(status=OrderStatus.PLACED)
        order.refresh_from_db()
        if start == OrderStatus.REJECTED:
            path = [OrderStatus.REJECTED]
    for step in path:
        services.order_transition(order=order, to=step, actor=manager, note="step")
    order.refresh_from_db()
    assert order.status == start
    events_before = OrderEvent.objects.filter(order=order).count()
    if to in ORDER_TRANSITIONS[start]:
        services.order_transition(order=order, to=to, actor=manager, note="move")
        order.refresh_from_db()
        assert order.status == to
    else:
        with pytest.raises(ApplicationError, match="cannot become"):
            services.order_transition(order=order, to=to, actor=manager, note="move")
        order.refresh_from_db()
        assert order.status == start
        assert OrderEvent.objects.filter(order=order).count() == events_before


def test_a_member_may_cancel_their_own_order_only_while_it_waits():
    program, member = funded_member(5000, program=ProgramFactory(order_approval_threshold=50))
    order = place(member, program, [(RewardFactory(program=program), 1)])
    stranger = MemberFactory()
    with pytest.raises(ApplicationError, match="not allowed"):
        services.order_transition(order=order, to=OrderStatus.CANCELLED, actor=stranger.user, note="x")
    services.order_transition(order=order, to=OrderStatus.CANCELLED, actor=member.user, note="Ordered by mistake")
    order.refresh_from_db()
    assert order.status == OrderStatus.CANCELLED
    assert available(program, member) == 5000


def test_codes_upload_skips_duplicates_and_reports_bad_files():
    card = CodeRewardFactory(codes=0)
    assert services.codes_add(reward=card, codes=services.codes_from_csv(b"code\nA1\nA2\nA1\n")) == (2, 1)
    assert services.codes_add(reward=card, codes=["A2", "A3"]) == (1, 1)
    with pytest.raises(ApplicationError, match="not UTF-8"):
        services.codes_from_csv("Ä1".encode("utf-16"))
    with pytest.raises(ApplicationError, match="no codes"):
        services.codes_from_csv(b"code\n\n")
    with pytest.raises(ApplicationError, match="does not hand out codes"):
        services.codes_add(reward=RewardFactory(), codes=["X"])
    assert card.codes.count() == 3


def test_approving_a_code_order_shows_the_codes_at_once():
    program, member = funded_member(5000, program=ProgramFactory(order_approval_threshold=50))
    card = CodeRewardFactory(program=program, codes=1, points_price=100)
    order = place(member, program, [(card, 1)])
    assert order.status == OrderStatus.PLACED
    services.order_transition(order=order, to=OrderStatus.APPROVED, actor=ProgramManagerFactory())
    order.refresh_from_db()
    assert order.status == OrderStatus.FULFILLED
    assert list(order.events.values_list("to_status", flat=True)) == [
        OrderStatus.PLACED,
        OrderStatus.APPROVED,
        OrderStatus.FULFILLED,
    ]


def test_tier_exclusive_rewards_need_that_tier_or_better():
    from loyalty.models import PartnerTier
    from rewards import selectors
    from tests.loyalty.factories import TierFactory

    program, member = funded_member(1000)
    silver = TierFactory(program=program, name="Silver", rank=1)
    gold = TierFactory(program=program, name="Gold", rank=2)
    lounge = RewardFactory(program=program, name="Gold lounge", min_tier=gold)
    assert lounge not in selectors.catalogue(member=member, program=program)
    with pytest.raises(ApplicationError, match="reserved for Gold partners and above"):
        place(member, program, [(lounge, 1)])

    today = timezone.localdate()
    PartnerTier.objects.create(program=program, partner=member.partner, tier=silver, since=today, held_until=today)
    with pytest.raises(ApplicationError, match="reserved for Gold"):
        place(member, program, [(lounge, 1)])
    PartnerTier.objects.filter(partner=member.partner).update(tier=gold)
    assert lounge in selectors.catalogue(member=member, program=program)
    assert place(member, program, [(lounge, 1)]).status == OrderStatus.APPROVED
