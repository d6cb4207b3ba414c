"""`seed_demo` (analytics) adds the AquaPro Partner Club: points history through the ledger, rewards and orders.

The demo is seeded once for the module, in a transaction rolled back at the end; each test runs in a savepoint
inside it, so what a test changes is undone too.
"""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import transaction
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from loyalty.constants import AdjustmentStatus, EntryKind, LeaverPolicy
from loyalty.demo import PROGRAM_NAME
from loyalty.models import PointsAccount, PointsAdjustment, PointsEntry, Program
from loyalty.selectors import expiring_soon, ledger_problems, statement
from partners.demo import DEMO_MEMBERS, PROGRAM_MANAGERS
from partners.models import User
from rewards.constants import OrderStatus, PaidBy, RewardKind
from rewards.models import CartItem, RedemptionOrder, Reward, RewardCategory, VoucherCode

pytestmark = pytest.mark.django_db

COUNTED = (Program, PointsAccount, PointsEntry, PointsAdjustment, RewardCategory, Reward, VoucherCode, RedemptionOrder)
DEMO_EMAILS = {role: email for _, _, email, role in DEMO_MEMBERS}


def counts() -> dict[str, int]:
    return {model.__name__: model.objects.count() for model in [*COUNTED, CartItem]}


def account_of(email: str) -> PointsAccount:
    return PointsAccount.objects.select_related("program").get(member__user__email=email, member__status="active")


@pytest.fixture(scope="module")
def demo(django_db_setup, django_db_blocker):
    """The output of one `seed_demo` on an empty database; rolled back when the module is done."""
    with django_db_blocker.unblock(), transaction.atomic():
        out = StringIO()
        call_command("seed_demo", stdout=out)
        yield out.getvalue()
        transaction.set_rollback(True)


# Runs first, on the empty database (the module's seeding is set up by the first test that asks for `demo`).
def test_a_dry_run_writes_nothing_and_says_what_the_program_would_have():
    before = counts()
    out = StringIO()

    call_command("seed_demo", "--dry-run", stdout=out)

    assert counts() == before
    assert f"Demo program, dry run: would create {PROGRAM_NAME} with about 1 program" in out.getvalue()
    assert "31 rewards" in out.getvalue()
    assert out.getvalue().count("Nothing was written.") == 2


def test_the_output_says_what_the_program_was_created_with(demo):
    assert f"Demo program: created {PROGRAM_NAME} with 1 program, " in demo
    assert "points entries" in demo
    assert "31 rewards" in demo


def test_the_program_is_the_aquapro_partner_club(demo):
    program = Program.objects.get()

    assert (program.name, program.currency_name, program.money_currency) == (PROGRAM_NAME, "AquaPoints", "EUR")
    assert str(program.point_value) == "0.0100"
    assert (program.expiry_months, program.leaver_policy, program.member_share_percent) == (
        24,
        LeaverPolicy.TRANSFER,
        70,
    )
    assert (program.adjustment_approval_threshold, program.order_approval_threshold) == (5_000, 20_000)
    assert program.is_active


def test_the_demo_sales_rep_has_points_a_statement_of_several_pages_and_points_expiring_soon(demo):
    account = account_of(DEMO_EMAILS["sales"])

    assert account.available > 0
    assert account.pending > 0
    assert statement(account=account).count() > 25
    assert expiring_soon(account=account).points > 0


@pytest.mark.parametrize("role", ["owner", "engineer", "foreman"])
def test_the_other_demo_logins_have_the_same(demo, role):
    account = account_of(DEMO_EMAILS[role])

    assert account.available > 0
    assert account.pending > 0
    assert statement(account=account).count() > 40
    assert expiring_soon(account=account).points > 0
    assert account.expired > 0


def test_a_statement_reads_in_date_order_over_two_years(demo):
    entries = list(statement(account=account_of(DEMO_EMAILS["sales"])))
    dates = [entry.created_at for entry in entries]  # newest first, by id

    assert dates == sorted(dates, reverse=True)
    assert dates[-1] < timezone.now() - timedelta(days=24 * 30)
    assert len({(d.year, d.month) for d in dates}) >= 20
    assert all(d <= timezone.now() for d in dates)


def test_explanations_show_the_arithmetic(demo):
    entries = PointsEntry.objects.filter(source_type="sale", account__member__user__email=DEMO_EMAILS["sales"])
    sale = entries.first()

    assert " × " in sale.explanation and " pts = " in sale.explanation and "your 70 % share" in sale.explanation
    assert sale.details["quantity"] * sale.details["points_per_unit"] == sale.details["total"]
    assert PointsEntry.objects.filter(explanation__startswith="Training: ").exists()
    assert PointsEntry.objects.filter(explanation="Welcome bonus").exists()
    assert PointsEntry.objects.filter(explanation__startswith="Returned goods: ", kind=EntryKind.REVERSE).exists()


def test_every_kind_of_entry_happened_and_the_books_balance(demo):
    assert set(PointsEntry.objects.values_list("kind", flat=True)) == set(EntryKind.values)
    assert ledger_problems() == []


def test_company_accounts_get_their_share_pooled_points_and_leavers_points(demo):
    companies = PointsEntry.objects.filter(account__partner__isnull=False)

    assert companies.filter(source_type="company_share").exists()
    assert companies.filter(explanation__contains="pooled to the company account").exists()
    assert companies.filter(kind=EntryKind.TRANSFER, source_type="pooling").exists()
    assert companies.filter(kind=EntryKind.TRANSFER, source_type="leaver").exists()


def test_adjustments_are_posted_waiting_for_a_second_program_manager_or_rejected(demo):
    first_manager = User.objects.get(email=PROGRAM_MANAGERS[0][1])

    waiting = PointsAdjustment.objects.get(status=AdjustmentStatus.PENDING_APPROVAL)
    assert waiting.requested_by == first_manager
    assert waiting.points > waiting.account.program.adjustment_approval_threshold
    assert waiting.entry is None
    assert PointsAdjustment.objects.filter(status=AdjustmentStatus.POSTED).exclude(entry=None).count() == 2
    assert PointsAdjustment.objects.filter(status=AdjustmentStatus.REJECTED).exclude(rejection_reason="").exists()


def test_the_catalogue_has_every_kind_of_reward_with_restrictions_stock_and_codes(demo):
    rewards = Reward.objects.all()

    assert RewardCategory.objects.count() == 8
    assert 28 <= rewards.count() <= 32
    assert set(rewards.values_list("kind", flat=True)) == set(RewardKind.values)
    assert rewards.filter(is_active=True, uses_codes=False, stock=0).exists()  # sold out
    assert any(0 < reward.codes.filter(order_line=None).count() <= 2 for reward in rewards.filter(uses_codes=True))
    assert rewards.exclude(allowed_roles=None).exists()
    assert rewards.exclude(allowed_regions=None).exists()
    assert rewards.exclude(allowed_partner_kinds=[]).exists()
    assert rewards.exclude(limit_per_member=None).exists()
    assert rewards.exclude(available_until=None).exists()
    assert rewards.filter(paid_by=PaidBy.COMPANY, kind=RewardKind.CO_MARKETING).exists()


def test_orders_are_in_every_status_and_spent_points_through_the_ledger(demo):
    orders = RedemptionOrder.objects.select_related("spend_entry", "refund_entry")

    assert set(orders.values_list("status", flat=True)) == set(OrderStatus.values)
    for order in orders:
        assert order.checkout_key.startswith("demo:order:")
        assert order.spend_entry.available_delta == -order.total_points
        refunded = order.status in (OrderStatus.REJECTED, OrderStatus.CANCELLED)
        assert (order.refund_entry is not None) == refunded
        assert order.decision_reason or not refunded
    assert orders.filter(status=OrderStatus.FULFILLED).exclude(tracking_number="").exists()
    assert VoucherCode.objects.exclude(order_line=None).exists()


def test_the_demo_sales_rep_and_owner_have_orders_and_the_owner_one_from_the_company_account(demo):
    mine = RedemptionOrder.objects.filter(member__user__email=DEMO_EMAILS["sales"])
    company = RedemptionOrder.objects.filter(member__user__email=DEMO_EMAILS["owner"], paid_by=PaidBy.COMPANY)

    assert mine.count() >= 5
    assert {OrderStatus.APPROVED, OrderStatus.FULFILLED, OrderStatus.DELIVERED} <= set(
        mine.values_list("status", flat=True)
    )
    assert company.filter(status=OrderStatus.PLACED).exists()
    assert CartItem.objects.filter(member__user__email=DEMO_EMAILS["sales"]).count() == 2


@pytest.mark.parametrize("name", ["home", "points_statement", "catalogue", "cart", "order_list"])
def test_the_demo_sales_reps_pages_show_her_balance(demo, name):
    client = Client()
    client.force_login(User.objects.get(email=DEMO_EMAILS["sales"]))

    response = client.get(reverse(name))

    assert response.status_code == 200
    assert f"{account_of(DEMO_EMAILS['sales']).available:,}" in response.content.decode()  # in the navigation


def test_a_second_run_creates_nothing_in_two_queries(demo, django_assert_max_num_queries):
    before = counts()
    out = StringIO()

    with django_assert_max_num_queries(2):
        call_command("seed_demo", stdout=out)

    assert counts() == before
    assert f"Demo program: {PROGRAM_NAME} already present, nothing to do." in out.getvalue()
