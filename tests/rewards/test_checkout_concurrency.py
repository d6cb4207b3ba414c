"""Checkouts racing each other on real parallel connections."""

from collections import Counter

import pytest
from django.db.models import Count

from loyalty.selectors.ledger import ledger_problems
from loyalty.services import ledger
from rewards import services
from rewards.constants import PaidBy
from rewards.models import RedemptionOrder, VoucherCode
from tests.loyalty.factories import ProgramFactory
from tests.loyalty.test_ledger_concurrency import run_in_parallel
from tests.partners.factories import MemberFactory
from tests.rewards.factories import ADDRESS, CodeRewardFactory, MerchandiseFactory, RewardFactory

pytestmark = pytest.mark.django_db(transaction=True)


def checkout(member, program, reward, key):
    order = services.order_place(
        member=member, program=program, items=[(reward, 1)], paid_by=PaidBy.MEMBER, checkout_key=key, address=ADDRESS
    )
    return "ordered" if order else "none"


def members_racing_for(reward, count: int) -> Counter:
    """`count` members of as many partners, each with 100 points, check out `reward` at the same instant."""
    program = reward.program
    members = [MemberFactory() for _ in range(count)]
    for member in members:
        ledger.earn(account=ledger.member_account(program=program, member=member), points=100, key=f"s{member.pk}")
    return run_in_parallel(count, lambda i: checkout(members[i], program, reward, f"c{i}"))


def test_50_simultaneous_checkouts_on_an_account_that_affords_10_make_exactly_10_orders():
    program = ProgramFactory(order_approval_threshold=10_000)
    member = MemberFactory()
    account = ledger.member_account(program=program, member=member)
    ledger.earn(account=account, points=1000, key="seed")
    reward = RewardFactory(program=program, points_price=100)

    outcomes = run_in_parallel(50, lambda i: checkout(member, program, reward, f"c{i}"))

    assert outcomes == Counter({"ordered": 10, "insufficient_points": 40})
    account.refresh_from_db()
    assert (account.available, account.redeemed, RedemptionOrder.objects.count()) == (0, 1000, 10)
    assert ledger_problems() == []


def test_the_last_unit_of_stock_is_sold_once():
    reward = MerchandiseFactory(stock=1, points_price=10)

    outcomes = members_racing_for(reward, 12)

    assert outcomes == Counter({"ordered": 1, "out_of_stock": 11})
    reward.refresh_from_db()
    assert reward.stock == 0
    assert ledger_problems() == []


def test_every_voucher_code_goes_to_exactly_one_order():
    card = CodeRewardFactory(codes=15, points_price=10)

    outcomes = members_racing_for(card, 20)

    assert outcomes == Counter({"ordered": 15, "codes_exhausted": 5})
    assigned = VoucherCode.objects.filter(order_line__isnull=False)
    assert assigned.count() == 15
    assert not assigned.values("order_line").annotate(n=Count("id")).filter(n__gt=1).exists()
    assert ledger_problems() == []
