from datetime import timedelta

import pytest
from django.utils import timezone

from loyalty.common.errors import ApplicationError
from loyalty.constants import AdjustmentStatus, LeaverPolicy
from loyalty.models import PointsAccount, PointsAdjustment, PointsEntry
from loyalty.selectors.ledger import ledger_problems
from loyalty.services import ledger
from loyalty.services.adjustments import adjustment_approve, adjustment_reject, adjustment_request
from loyalty.tasks.ledger import expire_due_points, release_due_points
from partners import services as partner_services
from tests.loyalty.factories import MemberAccountFactory, ProgramFactory
from tests.partners.factories import AccountManagerFactory, MemberFactory, OwnerFactory, ProgramManagerFactory

pytestmark = pytest.mark.django_db


def test_small_adjustment_posts_at_once():
    account = MemberAccountFactory(program=ProgramFactory(adjustment_approval_threshold=500))
    adjustment = adjustment_request(
        account=account, points=500, reason="Goodwill", requested_by=ProgramManagerFactory()
    )
    account.refresh_from_db()
    assert adjustment.status == AdjustmentStatus.POSTED
    assert account.available == 500
    assert adjustment.entry.explanation == "Goodwill"


def test_large_adjustment_waits_for_a_second_program_manager():
    account = MemberAccountFactory(program=ProgramFactory(adjustment_approval_threshold=500))
    requester, second = ProgramManagerFactory(), ProgramManagerFactory()
    adjustment = adjustment_request(account=account, points=501, reason="Trade show", requested_by=requester)
    account.refresh_from_db()
    assert (adjustment.status, account.available) == (AdjustmentStatus.PENDING_APPROVAL, 0)

    with pytest.raises(ApplicationError, match="second program manager"):
        adjustment_approve(adjustment=adjustment, approver=requester)
    adjustment_approve(adjustment=adjustment, approver=second)
    adjustment.refresh_from_db()
    account.refresh_from_db()
    assert (adjustment.status, adjustment.decided_by, account.available) == (AdjustmentStatus.POSTED, second, 501)
    with pytest.raises(ApplicationError, match="already posted"):
        adjustment_approve(adjustment=adjustment, approver=second)
    assert PointsEntry.objects.count() == 1


def test_rejected_adjustment_posts_nothing():
    account = MemberAccountFactory(program=ProgramFactory(adjustment_approval_threshold=10))
    ledger.earn(account=account, points=100, key="earned")
    adjustment = adjustment_request(account=account, points=-50, reason="Fraud", requested_by=ProgramManagerFactory())
    adjustment_reject(adjustment=adjustment, approver=ProgramManagerFactory(), reason="Not proven")
    adjustment.refresh_from_db()
    account.refresh_from_db()
    assert adjustment.status == AdjustmentStatus.REJECTED
    assert (account.available, PointsEntry.objects.count()) == (100, 1)


@pytest.mark.parametrize("points", [0, 1.5, "10"])
def test_bad_adjustments_are_refused_and_change_nothing(points):
    account = MemberAccountFactory()
    with pytest.raises(ApplicationError, match="whole number"):
        adjustment_request(account=account, points=points, reason="x", requested_by=ProgramManagerFactory())
    assert not PointsAdjustment.objects.exists()


def test_only_program_managers_adjust_and_a_reason_is_required():
    account = MemberAccountFactory()
    with pytest.raises(ApplicationError, match="Only program managers"):
        adjustment_request(account=account, points=5, reason="x", requested_by=AccountManagerFactory())
    with pytest.raises(ApplicationError, match="Give a reason"):
        adjustment_request(account=account, points=5, reason="  ", requested_by=ProgramManagerFactory())
    assert not PointsAdjustment.objects.exists()


def test_negative_adjustment_beyond_the_balance_is_refused_and_leaves_no_request():
    account = MemberAccountFactory()
    with pytest.raises(ApplicationError, match="Not enough points"):
        adjustment_request(account=account, points=-5, reason="Correction", requested_by=ProgramManagerFactory())
    assert not PointsAdjustment.objects.exists()


def _member_who_left(policy, **details):
    """A member with 300 points available and 40 pending, deactivated by their owner under the leaver `policy`;
    returns the member, the program and the member's account (reloaded)."""
    owner = OwnerFactory()
    member = MemberFactory(partner=owner.partner)
    program = ProgramFactory(leaver_policy=policy)
    account = ledger.member_account(program=program, member=member)
    ledger.earn(account=account, points=300, key="e1")
    ledger.earn(account=account, points=40, key="e2", available_at=timezone.now() + timedelta(days=5))
    partner_services.member_deactivate(member=member, actor=owner.user, **details)
    account.refresh_from_db()
    return member, program, account


def test_leaver_transfer_moves_available_and_pending_points_to_the_company():
    member, program, account = _member_who_left(LeaverPolicy.TRANSFER, reason="Moved away")
    company = PointsAccount.objects.get(program=program, partner=member.partner)
    assert (account.available, account.pending) == (0, 0)
    assert (company.available, company.pending) == (300, 40)
    assert ledger_problems() == []


def test_leaver_forfeit_takes_the_points_away():
    member, _, account = _member_who_left(LeaverPolicy.FORFEIT)
    assert (account.available, account.pending) == (0, 0)
    assert not PointsAccount.objects.filter(partner=member.partner).exists()
    assert ledger_problems() == []


def test_leaver_keep_leaves_the_points_alone():
    _, _, account = _member_who_left(LeaverPolicy.KEEP)
    assert (account.available, account.pending) == (300, 40)


def test_periodic_tasks_expire_and_release():
    account = MemberAccountFactory(program=ProgramFactory(expiry_months=1))
    ledger.earn(account=account, points=9, key="old", earned_at=timezone.now() - timedelta(days=40))
    ledger.earn(account=account, points=4, key="held", available_at=timezone.now() - timedelta(seconds=1))
    assert release_due_points.delay().get() == 0  # already available: not pending when earned in the past
    assert expire_due_points.delay().get() == 1
    account.refresh_from_db()
    assert (account.available, account.expired) == (4, 9)


def test_a_large_debit_beyond_the_balance_is_refused_when_requested():
    account = MemberAccountFactory(program=ProgramFactory(adjustment_approval_threshold=10))
    with pytest.raises(ApplicationError, match="Not enough points"):
        adjustment_request(account=account, points=-500, reason="Fraud", requested_by=ProgramManagerFactory())
    assert not PointsAdjustment.objects.exists()


def test_rejecting_needs_a_reason():
    account = MemberAccountFactory(program=ProgramFactory(adjustment_approval_threshold=10))
    adjustment = adjustment_request(account=account, points=50, reason="Event", requested_by=ProgramManagerFactory())
    with pytest.raises(ApplicationError, match="Say why"):
        adjustment_reject(adjustment=adjustment, approver=ProgramManagerFactory(), reason=" ")
    adjustment.refresh_from_db()
    assert adjustment.status == AdjustmentStatus.PENDING_APPROVAL
