"""Referrals: a member refers a prospect; duplicates are found across partners by matching keys; a prospect already
in the program is refused; the program team qualifies, converts (paid by rule, once, also under concurrency) or
rejects (with a reason the referrer reads); bad moves are refused and change nothing."""

import threading
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone

from communications.constants import Kind
from communications.models import Delivery
from loyalty.common.errors import ApplicationError
from loyalty.constants import EntrySource, ReferralStatus
from loyalty.error_codes import ErrorCode
from loyalty.models import PointsEntry, Referral, ReferralEvent
from loyalty.services import referrals as services
from partners.constants import MemberStatus, PartnerStatus
from tests.loyalty.factories import ProgramFactory
from tests.loyalty.factories_referrals import ReferralFactory, referral_rule
from tests.partners.factories import MemberFactory, PartnerFactory, ProgramManagerFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def program():
    return ProgramFactory()


@pytest.fixture
def manager():
    return ProgramManagerFactory()


def refer(member, program, **fields):
    values = {
        "company_name": "Hotel Seeblick AG",
        "company_id": "CHE-123.456.789",
        "contact_name": "Anna Berger",
        "contact_email": "anna.berger@seeblick.example",
        "contact_phone": "+41 44 000 00 00",
        "need": "Softeners for 3 hotels",
    }
    return services.referral_submit(member=member, program=program, **{**values, **fields})


def decide(referral, to, actor, **fields):
    return services.referral_transition(referral=referral, to=to, actor=actor, **fields)


def convert(referral, actor, **fields):
    decide(referral, ReferralStatus.QUALIFIED, actor)
    return decide(referral, ReferralStatus.CONVERTED, actor, **fields)


def earned(member) -> list[tuple[int, str, str]]:
    return list(
        PointsEntry.objects.filter(account__member=member)
        .order_by("pk")
        .values_list("available_delta", "source_type", "source_id")
    )


# Submitting ----------------------------------------------------------------------------------------------------


def test_a_referral_is_stored_with_its_keys_and_history(program):
    member = MemberFactory()

    referral = refer(member, program, company_name="  Hotel Seeblick AG ")

    referral.refresh_from_db()
    assert (referral.company_name, referral.status, referral.partner_id) == (
        "Hotel Seeblick AG",
        ReferralStatus.SUBMITTED,
        member.partner_id,
    )
    assert (referral.company_key, referral.email_key) == ("che-123.456.789", "anna.berger@seeblick.example")
    assert referral.duplicate_of is None
    assert list(referral.events.values_list("from_status", "to_status", "actor", "note")) == [
        ("", ReferralStatus.SUBMITTED, member.user_id, "Submitted")
    ]
    assert services.submitted_message(referral) == (
        "Thank you: Hotel Seeblick AG is referred. The program team contacts them; the decision will show here."
    )


def test_the_same_company_id_typed_otherwise_by_another_partner_is_a_duplicate(program):
    first = refer(MemberFactory(), program, company_id="CHE-123.456.789", contact_email="a@one.example")
    other_partner = MemberFactory()

    second = refer(other_partner, program, company_id=" che\u2013123.456.789\u200b", contact_email="b@two.example")

    assert second.duplicate_of == first
    day = timezone.localdate(first.created_at).strftime("%-d %b %Y")
    message = services.submitted_message(second)
    assert message == (
        f"Hotel Seeblick AG was already referred on {day}. Your referral is kept; the program team decides which one "
        "counts, and the decision will show here."
    )
    assert first.partner.name not in message


def test_the_same_email_in_other_case_and_spacing_is_a_duplicate_of_the_first_referral(program):
    first = refer(MemberFactory(), program, company_id="", contact_email="Anna.Berger@Seeblick.example")
    second = refer(MemberFactory(), program, company_id="X-1", contact_email=" anna.berger@SEEBLICK.example ")
    # Matches the second by company id only: still a duplicate of the first referral of the prospect.
    third = refer(MemberFactory(), program, company_id=" x\u20131 ", contact_email="someone@else.example")

    assert (second.duplicate_of, third.duplicate_of) == (first, first)


def test_referrals_of_another_program_are_not_duplicates():
    refer(MemberFactory(), ProgramFactory())

    referral = refer(MemberFactory(), ProgramFactory())

    assert referral.duplicate_of is None


def test_a_company_that_is_already_a_partner_by_legal_id_is_refused_and_nothing_is_stored(program):
    PartnerFactory(legal_id="CHE-555.666.777")
    member = MemberFactory()

    with pytest.raises(ApplicationError) as refusal:
        refer(member, program, company_name="Aqua Dealer AG", company_id=" che\u2013555.666.777")

    assert refusal.value.code == ErrorCode.ALREADY_PARTNER
    assert refusal.value.message == "Aqua Dealer AG is already a partner of the program, so it cannot be referred."
    assert (Referral.objects.count(), ReferralEvent.objects.count()) == (0, 0)


def test_a_contact_who_signs_in_as_a_partners_member_is_refused(program):
    MemberFactory(user=UserFactory(email="boss@dealer.example"))

    with pytest.raises(ApplicationError) as refusal:
        refer(MemberFactory(), program, company_id="", contact_email="Boss@Dealer.example")

    assert refusal.value.code == ErrorCode.ALREADY_PARTNER
    assert Referral.objects.count() == 0


def test_a_closed_partner_or_a_person_who_left_can_be_referred_again(program):
    PartnerFactory(legal_id="OLD-1", status=PartnerStatus.CLOSED)
    MemberFactory(user=UserFactory(email="gone@dealer.example"), status=MemberStatus.LEFT)

    referral = refer(MemberFactory(), program, company_id="OLD-1", contact_email="gone@dealer.example")

    assert referral.pk is not None


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"company_name": " "}, ErrorCode.INVALID_REFERRAL),
        ({"contact_email": "not an address"}, ErrorCode.INVALID_REFERRAL),
        ({"need": "x" * 2001}, ErrorCode.TEXT_TOO_LONG),
    ],
)
def test_bad_input_is_refused_and_nothing_is_stored(program, fields, code):
    with pytest.raises(ApplicationError) as refusal:
        refer(MemberFactory(), program, **fields)

    assert refusal.value.code == code
    assert Referral.objects.count() == 0


def test_an_inactive_member_or_program_cannot_refer(program):
    waiting = MemberFactory(status=MemberStatus.PENDING_APPROVAL)
    with pytest.raises(ApplicationError) as refusal:
        refer(waiting, program)
    assert refusal.value.code == ErrorCode.MEMBER_INACTIVE

    with pytest.raises(ApplicationError) as refusal:
        refer(MemberFactory(), ProgramFactory(is_active=False))
    assert refusal.value.code == ErrorCode.PROGRAM_INACTIVE
    assert Referral.objects.count() == 0


# Deciding ------------------------------------------------------------------------------------------------------


def test_conversion_pays_the_referrer_by_rule_once_and_tells_them(program, manager, django_capture_on_commit_callbacks):
    referral_rule(program, points=500)
    member = MemberFactory()
    referral = refer(member, program)

    with django_capture_on_commit_callbacks(execute=True):
        convert(referral, manager, deal_amount=Decimal("12500.00"))

    referral.refresh_from_db()
    assert (referral.status, referral.deal_amount, referral.decided_by) == (
        ReferralStatus.CONVERTED,
        Decimal("12500.00"),
        manager,
    )
    assert earned(member) == [(500, EntrySource.REFERRAL, f"referral:{referral.pk}")]
    entry = PointsEntry.objects.get(account__member=member)
    assert entry.explanation == "Referral bonus v1, referral “Hotel Seeblick AG”: 500 pts = 500"
    assert list(referral.events.values_list("from_status", "to_status", "note")) == [
        ("", ReferralStatus.SUBMITTED, "Submitted"),
        (ReferralStatus.SUBMITTED, ReferralStatus.QUALIFIED, "Qualified"),
        (ReferralStatus.QUALIFIED, ReferralStatus.CONVERTED, "Converted, deal amount 12500.00"),
    ]
    told = Delivery.objects.filter(kind=Kind.REFERRAL_DECIDED, member=member, channel="inbox").get()
    assert told.subject == "Your referral Hotel Seeblick AG became a customer"
    assert "You earned 500 points." in told.body


def test_a_rule_for_big_deals_pays_by_the_deal_amount(program, manager):
    referral_rule(program, points=500)
    referral_rule(program, points=2000, code="big-deal", name="Big deal bonus", min_amount=Decimal("10000"))
    small, big = MemberFactory(), MemberFactory()

    convert(
        refer(small, program, company_name="Small Shop", company_id="S-1", contact_email="a@small.example"),
        manager,
        deal_amount=Decimal("900"),
    )
    convert(
        refer(big, program, company_name="Big Hotel", company_id="B-1", contact_email="b@big.example"),
        manager,
        deal_amount=Decimal("25000"),
    )

    assert sorted(points for points, _, _ in earned(small)) == [500]
    assert sorted(points for points, _, _ in earned(big)) == [500, 2000]


def test_converting_again_is_refused_and_pays_nothing_more(program, manager):
    referral_rule(program, points=500)
    member = MemberFactory()
    referral = convert(refer(member, program), manager)

    with pytest.raises(ApplicationError) as refusal:
        decide(referral, ReferralStatus.CONVERTED, manager)

    assert refusal.value.code == ErrorCode.BAD_TRANSITION
    assert refusal.value.message == f"Referral {referral.pk} is already converted."
    assert [points for points, _, _ in earned(member)] == [500]
    assert referral.events.count() == 3


def test_a_duplicate_of_a_converted_prospect_cannot_be_converted(program, manager):
    referral_rule(program, points=500)
    first = convert(refer(MemberFactory(), program), manager)
    second_member = MemberFactory()
    second = refer(second_member, program, contact_email="other@seeblick.example")
    decide(second, ReferralStatus.QUALIFIED, manager)

    with pytest.raises(ApplicationError) as refusal:
        decide(second, ReferralStatus.CONVERTED, manager)

    assert refusal.value.code == ErrorCode.ALREADY_CONVERTED
    assert refusal.value.message == (
        f"Hotel Seeblick AG was converted through referral {first.pk} already; a prospect converts once."
    )
    second.refresh_from_db()
    assert second.status == ReferralStatus.QUALIFIED
    assert earned(second_member) == []


def test_without_a_referral_rule_conversion_pays_nothing_and_says_so(program, manager):
    member = MemberFactory()

    convert(refer(member, program), manager)

    assert earned(member) == []
    told = Delivery.objects.get(kind=Kind.REFERRAL_DECIDED, member=member, channel="inbox")
    assert "points" not in told.body


def test_rejection_keeps_the_reason_and_tells_the_referrer(program, manager):
    member = MemberFactory()
    referral = refer(member, program)

    decide(referral, ReferralStatus.REJECTED, manager, reason="  Already a customer of our distributor. ")

    referral.refresh_from_db()
    assert (referral.status, referral.reason) == (ReferralStatus.REJECTED, "Already a customer of our distributor.")
    told = Delivery.objects.get(kind=Kind.REFERRAL_DECIDED, member=member, channel="inbox")
    assert told.subject == "Your referral Hotel Seeblick AG was not taken up"
    assert "Already a customer of our distributor." in told.body
    assert earned(member) == []


def test_rejection_without_a_reason_is_refused_and_changes_nothing(program, manager):
    referral = refer(MemberFactory(), program)

    with pytest.raises(ApplicationError) as refusal:
        decide(referral, ReferralStatus.REJECTED, manager, reason=" ")

    assert refusal.value.code == ErrorCode.REASON_REQUIRED
    referral.refresh_from_db()
    assert (referral.status, referral.events.count()) == (ReferralStatus.SUBMITTED, 1)
    assert not Delivery.objects.filter(kind=Kind.REFERRAL_DECIDED).exists()


@pytest.mark.parametrize(
    ("start", "to"),
    [
        (ReferralStatus.SUBMITTED, ReferralStatus.CONVERTED),
        (ReferralStatus.REJECTED, ReferralStatus.QUALIFIED),
        (ReferralStatus.CONVERTED, ReferralStatus.REJECTED),
        (ReferralStatus.QUALIFIED, ReferralStatus.QUALIFIED),
    ],
)
def test_bad_moves_are_refused_and_change_nothing(program, manager, start, to):
    referral_rule(program)
    referral = ReferralFactory(program=program, status=start)

    with pytest.raises(ApplicationError) as refusal:
        decide(referral, to, manager, reason="Because")

    assert refusal.value.code == ErrorCode.BAD_TRANSITION
    referral.refresh_from_db()
    assert referral.status == start
    assert (ReferralEvent.objects.count(), PointsEntry.objects.count(), Delivery.objects.count()) == (0, 0, 0)


def test_only_program_managers_decide(program):
    referral = refer(MemberFactory(), program)

    with pytest.raises(ApplicationError) as refusal:
        decide(referral, ReferralStatus.QUALIFIED, MemberFactory().user)

    assert refusal.value.code == ErrorCode.FORBIDDEN
    referral.refresh_from_db()
    assert referral.status == ReferralStatus.SUBMITTED


def test_a_deal_amount_only_goes_with_a_conversion_and_is_not_negative(program, manager):
    referral = refer(MemberFactory(), program)

    with pytest.raises(ApplicationError) as refusal:
        decide(referral, ReferralStatus.QUALIFIED, manager, deal_amount=Decimal("10.00"))
    assert refusal.value.code == ErrorCode.INVALID_REFERRAL
    decide(referral, ReferralStatus.QUALIFIED, manager)
    with pytest.raises(ApplicationError) as refusal:
        decide(referral, ReferralStatus.CONVERTED, manager, deal_amount=Decimal("-1.00"))
    assert refusal.value.code == ErrorCode.VALUE_NOT_POSITIVE

    referral.refresh_from_db()
    assert (referral.status, referral.deal_amount) == (ReferralStatus.QUALIFIED, None)


def test_conversion_records_the_partner_the_prospect_became(program, manager):
    referral = refer(MemberFactory(), program, company_id="NEW-42")
    decide(referral, ReferralStatus.QUALIFIED, manager)
    joined = PartnerFactory(legal_id=" new\u201342")

    decide(referral, ReferralStatus.CONVERTED, manager)

    referral.refresh_from_db()
    assert referral.existing_partner == joined


# Concurrency ---------------------------------------------------------------------------------------------------


def _at_once(*calls) -> list[str]:
    """Run the calls in threads released together; each outcome is "ok" or the refusal's code."""
    barrier, outcomes, lock = threading.Barrier(len(calls)), [], threading.Lock()

    def run(call):
        try:
            barrier.wait()
            call()
            outcome = "ok"
        except ApplicationError as exc:
            outcome = exc.code
        finally:
            connection.close()
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=run, args=(call,)) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sorted(outcomes)


@pytest.mark.django_db(transaction=True)
def test_two_conversions_at_once_pay_once():
    program, manager = ProgramFactory(), ProgramManagerFactory()
    referral_rule(program, points=500)
    first_member, second_member = MemberFactory(), MemberFactory()
    first = refer(first_member, program)
    second = refer(second_member, program, contact_email="other@seeblick.example")  # the same company id
    for referral in (first, second):
        decide(referral, ReferralStatus.QUALIFIED, manager)

    outcomes = _at_once(
        lambda: decide(Referral.objects.get(pk=first.pk), ReferralStatus.CONVERTED, manager),
        lambda: decide(Referral.objects.get(pk=first.pk), ReferralStatus.CONVERTED, manager),
        lambda: decide(Referral.objects.get(pk=second.pk), ReferralStatus.CONVERTED, manager),
    )

    assert outcomes.count("ok") == 1
    assert set(outcomes) - {"ok"} <= {ErrorCode.BAD_TRANSITION, ErrorCode.ALREADY_CONVERTED}
    assert Referral.objects.filter(status=ReferralStatus.CONVERTED).count() == 1
    assert PointsEntry.objects.filter(source_type=EntrySource.REFERRAL).count() == 1
    assert sum(points for points, _, _ in earned(first_member) + earned(second_member)) == 500


@pytest.mark.django_db(transaction=True)
def test_two_referrals_of_one_prospect_at_once_are_one_original_and_one_duplicate():
    program = ProgramFactory()
    members = [MemberFactory(), MemberFactory()]

    outcomes = _at_once(*[lambda member=member: refer(member, program) for member in members])

    assert outcomes == ["ok", "ok"]
    first, second = Referral.objects.order_by("created_at", "pk")
    assert (first.duplicate_of_id, second.duplicate_of_id) == (None, first.pk)
