from datetime import timedelta

import pytest
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from loyalty.common.errors import ApplicationError
from loyalty.constants import EntryKind
from loyalty.models import PointsAccount, PointsAllocation, PointsEntry, PointsLot
from loyalty.selectors.ledger import expiring_soon, ledger_problems
from loyalty.services import ledger
from tests.loyalty.factories import MemberAccountFactory, PartnerAccountFactory, ProgramFactory

pytestmark = pytest.mark.django_db


def balances(account: PointsAccount) -> tuple[int, int, int, int, int]:
    account.refresh_from_db()
    return (account.available, account.pending, account.lifetime_earned, account.redeemed, account.expired)


def test_earn_then_spend_moves_balances_and_keeps_the_books():
    account = MemberAccountFactory()
    ledger.earn(account=account, points=120, key="sale:1", explanation="12 units × 10 pts = 120")
    ledger.spend(account=account, points=50, key="order:1")
    assert balances(account) == (70, 0, 120, 50, 0)
    assert ledger_problems() == []


def test_spending_takes_the_soonest_to_expire_points_first():
    account = MemberAccountFactory()
    now = timezone.now()
    late = ledger.earn(account=account, points=100, key="a", earned_at=now)
    early = ledger.earn(account=account, points=100, key="b", earned_at=now - timedelta(days=300))
    spend = ledger.spend(account=account, points=130, key="order")
    taken = {a.lot.entry_id: a.points for a in PointsAllocation.objects.filter(entry=spend).select_related("lot")}
    assert taken == {early.pk: 100, late.pk: 30}


def test_same_key_twice_posts_once_and_returns_the_first_entry():
    account = MemberAccountFactory()
    first = ledger.earn(account=account, points=10, key="sale:7", source_type="sale", source_id="7")
    again = ledger.earn(account=account, points=10, key="sale:7", source_type="sale", source_id="7")
    assert again.pk == first.pk
    assert balances(account)[0] == 10
    assert PointsEntry.objects.count() == 1


def test_a_reused_key_with_different_content_is_refused_and_changes_nothing():
    account = MemberAccountFactory()
    ledger.earn(account=account, points=10, key="sale:7")
    with pytest.raises(ApplicationError, match="already used for a different operation"):
        ledger.earn(account=account, points=11, key="sale:7")
    other = MemberAccountFactory(program=account.program)
    with pytest.raises(ApplicationError, match="already used for a different operation"):
        ledger.earn(account=other, points=10, key="sale:7")
    assert balances(account)[0] == 10
    assert balances(other)[0] == 0


@pytest.mark.parametrize("points", [0, -5, 1.5, True, "10", None])
def test_points_must_be_positive_integers(points):
    account = MemberAccountFactory()
    for operation in (ledger.earn, ledger.spend):
        with pytest.raises(ApplicationError, match="whole number greater than zero"):
            operation(account=account, points=points, key=f"k{points}")
    assert not PointsEntry.objects.exists()


def test_overspending_is_refused_with_the_numbers_and_changes_nothing():
    account = MemberAccountFactory()
    ledger.earn(account=account, points=40, key="e")
    with pytest.raises(ApplicationError, match="Not enough points: 40 available, 41 needed"):
        ledger.spend(account=account, points=41, key="s")
    assert balances(account) == (40, 0, 40, 0, 0)
    assert PointsEntry.objects.count() == 1


def test_pending_points_cannot_be_spent_until_released():
    account = MemberAccountFactory()
    entry = ledger.earn(account=account, points=80, key="e", available_at=timezone.now() + timedelta(days=14))
    assert balances(account) == (0, 80, 80, 0, 0)
    with pytest.raises(ApplicationError, match="Not enough points"):
        ledger.spend(account=account, points=1, key="s")
    ledger.release(entry=entry)
    ledger.release(entry=entry)  # idempotent
    assert balances(account) == (80, 0, 80, 0, 0)
    assert ledger_problems() == []


def test_release_due_releases_only_what_has_come_due():
    account = MemberAccountFactory()
    now = timezone.now()
    ledger.earn(account=account, points=5, key="soon", available_at=now + timedelta(days=1))
    ledger.earn(account=account, points=7, key="later", available_at=now + timedelta(days=10))
    assert ledger.release_due(now=now + timedelta(days=2)) == 1
    assert balances(account)[:2] == (5, 7)


def test_full_reverse_of_an_earn_takes_the_points_back():
    account = MemberAccountFactory()
    entry = ledger.earn(account=account, points=144, key="sale:1")
    reversal = ledger.reverse(entry=entry, key="return:1", explanation="Invoice credited")
    assert (reversal.kind, reversal.available_delta, reversal.reverses_id) == (EntryKind.REVERSE, -144, entry.pk)
    assert balances(account) == (0, 0, 0, 0, 0)
    assert ledger_problems() == []


def test_partial_reverses_cannot_exceed_the_original():
    account = MemberAccountFactory()
    entry = ledger.earn(account=account, points=100, key="sale")
    ledger.reverse(entry=entry, key="r1", points=60)
    with pytest.raises(ApplicationError, match="Only 40 of this entry's 100 points are left to reverse"):
        ledger.reverse(entry=entry, key="r2", points=41)
    ledger.reverse(entry=entry, key="r3", points=40)
    assert balances(account) == (0, 0, 0, 0, 0)


def test_reversing_an_earn_whose_points_were_spent_takes_other_points_or_refuses():
    account = MemberAccountFactory()
    sale = ledger.earn(account=account, points=100, key="sale")
    ledger.earn(account=account, points=30, key="bonus")
    ledger.spend(account=account, points=100, key="order")  # took all of `sale`'s lot (it expires first? same date)
    with pytest.raises(ApplicationError, match="cannot be taken back"):
        ledger.reverse(entry=sale, key="return", points=100)
    assert balances(account) == (30, 0, 130, 100, 0)
    ledger.reverse(entry=sale, key="return-part", points=30)
    assert balances(account) == (0, 0, 100, 100, 0)
    assert ledger_problems() == []


def test_reversing_a_spend_refunds_into_the_lots_it_came_from():
    account = MemberAccountFactory()
    earned = ledger.earn(account=account, points=50, key="e")
    spend = ledger.spend(account=account, points=50, key="order")
    ledger.reverse(entry=spend, key="refund", explanation="Order cancelled")
    assert balances(account) == (50, 0, 50, 0, 0)
    assert PointsLot.objects.get(entry=earned).remaining == 50
    with pytest.raises(ApplicationError, match="Only 0 of this entry's 50 points are left"):
        ledger.reverse(entry=spend, key="refund-again")


def test_reverse_entries_and_transfers_are_not_reversible():
    account = MemberAccountFactory()
    reversal = ledger.reverse(entry=ledger.earn(account=account, points=5, key="e"), key="r")
    with pytest.raises(ApplicationError, match="cannot be reversed"):
        ledger.reverse(entry=reversal, key="rr")


def test_expiry_takes_due_points_and_is_idempotent():
    program = ProgramFactory(expiry_months=24)
    account = MemberAccountFactory(program=program)
    now = timezone.now()
    ledger.earn(account=account, points=30, key="old", earned_at=now - timedelta(days=800))
    ledger.earn(account=account, points=20, key="new", earned_at=now)
    assert ledger.expire_due(now=now) == 1
    assert ledger.expire_due(now=now) == 0
    assert balances(account) == (20, 0, 50, 0, 30)
    assert ledger_problems() == []


def test_expiring_soon_shows_points_due_within_30_days():
    program = ProgramFactory(expiry_months=12)
    account = MemberAccountFactory(program=program)
    now = timezone.now()
    ledger.earn(account=account, points=25, key="a", earned_at=now - timedelta(days=350))
    ledger.earn(account=account, points=99, key="b", earned_at=now - timedelta(days=100))
    soon = expiring_soon(account=account)
    assert soon.points == 25
    assert soon.first_date is not None


def test_program_without_expiry_never_expires_points():
    account = MemberAccountFactory(program=ProgramFactory(expiry_months=None))
    ledger.earn(account=account, points=10, key="e", earned_at=timezone.now() - timedelta(days=5000))
    assert ledger.expire_due() == 0
    assert expiring_soon(account=account).points == 0


def test_transfer_moves_points_with_their_expiry_dates():
    member_account = MemberAccountFactory()
    company = PartnerAccountFactory(program=member_account.program, partner=member_account.member.partner)
    earned = ledger.earn(account=member_account, points=60, key="e")
    out_entry, in_entry = ledger.transfer(source=member_account, target=company, points=45, key="pool:1")
    again = ledger.transfer(source=member_account, target=company, points=45, key="pool:1")
    assert again == (out_entry, in_entry)
    assert balances(member_account)[0] == 15
    assert balances(company)[0] == 45
    assert PointsLot.objects.get(entry=in_entry).expires_at == PointsLot.objects.get(entry=earned).expires_at
    assert ledger_problems() == []


def test_transfer_between_programs_or_beyond_balance_is_refused():
    account = MemberAccountFactory()
    ledger.earn(account=account, points=10, key="e")
    with pytest.raises(ApplicationError, match="same program"):
        ledger.transfer(source=account, target=PartnerAccountFactory(), points=5, key="t1")
    with pytest.raises(ApplicationError, match="Not enough points"):
        ledger.transfer(source=account, target=PartnerAccountFactory(program=account.program), points=11, key="t2")
    assert balances(account)[0] == 10


def test_negative_adjustment_cannot_overdraw():
    account = MemberAccountFactory()
    ledger.earn(account=account, points=10, key="e")
    with pytest.raises(ApplicationError, match="Not enough points"):
        ledger.adjust(account=account, points=-11, key="adj", reason="Duplicate claim", created_by=None)
    ledger.adjust(account=account, points=-10, key="adj2", reason="Duplicate claim", created_by=None)
    assert balances(account)[0] == 0


def test_database_refuses_to_edit_or_delete_entries():
    account = MemberAccountFactory()
    entry = ledger.earn(account=account, points=10, key="e")
    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
        PointsEntry.objects.filter(pk=entry.pk).update(available_delta=1000)
    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM loyalty_pointsentry WHERE id = %s", [entry.pk])
    assert PointsEntry.objects.get(pk=entry.pk).available_delta == 10


def test_database_refuses_a_negative_balance_even_outside_the_service():
    account = MemberAccountFactory()
    with pytest.raises(Exception, match="account_available_not_negative"), transaction.atomic():
        PointsAccount.objects.filter(pk=account.pk).update(available=-1)
    with connection.cursor() as cursor:
        cursor.execute("SELECT available FROM loyalty_pointsaccount WHERE id = %s", [account.pk])
        assert cursor.fetchone()[0] == 0
