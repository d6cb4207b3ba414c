"""Equipment returns' services: registering (every refusal changes nothing; serial numbers once across partners,
compared by their matching key, released by a rejection), confirming through the rule engine with the monthly cap
(the office-supplies retailer's case, across a month boundary), rejecting with a reason, who may decide, the
member told, and the races: two confirmations at once, two returns of one serial at once."""

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from communications.constants import Kind
from communications.models import Delivery
from loyalty.common.errors import ApplicationError
from loyalty.constants import EntrySource, ReturnStatus
from loyalty.error_codes import ErrorCode
from loyalty.models import EquipmentReturn, EquipmentReturnEvent, PointsEntry, ReturnedSerial
from loyalty.services import returns as services
from partners.constants import MemberStatus
from tests.loyalty.factories import ProductLineFactory, ProgramFactory
from tests.loyalty.factories_returns import CollectionPointFactory, ReturnTypeFactory, returns_rule
from tests.partners.factories import MemberFactory, OwnerFactory, PartnerFactory, ProgramManagerFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def program():
    return ProgramFactory(starts_on=timezone.localdate() - timedelta(days=400), claim_window_days=60)


@pytest.fixture
def cartridge(program):
    return ReturnTypeFactory(program=program, name="Toner cartridge", max_quantity=500)


@pytest.fixture
def depot(program):
    return CollectionPointFactory(program=program, name="Central depot")


@pytest.fixture
def member():
    return MemberFactory(user__full_name="Rita Reseller", partner__name="Paper & Co")


@pytest.fixture
def pm():
    return ProgramManagerFactory()


def register(member, program, return_type, point, quantity=1, **fields):
    values = {"returned_on": timezone.localdate(), "serials": ()}
    return services.return_register(
        member=member,
        program=program,
        return_type=return_type,
        collection_point=point,
        quantity=quantity,
        **{**values, **fields},
    )


def earned(member) -> list[int]:
    entries = PointsEntry.objects.filter(account__member=member, source_type=EntrySource.RETURN).order_by("pk")
    return [entry.available_delta + entry.pending_delta for entry in entries]


def nothing_written():
    return (
        EquipmentReturn.objects.count(),
        ReturnedSerial.objects.count(),
        EquipmentReturnEvent.objects.count(),
    ) == (0, 0, 0)


# Registering ---------------------------------------------------------------------------------------------------


def test_registering_a_return_waits_for_confirmation_with_its_serials_and_history(program, member, depot):
    scanner = ReturnTypeFactory(program=program, name="Scanner", requires_serials=True)
    today = timezone.localdate()

    made = register(member, program, scanner, depot, quantity=2, returned_on=today, serials=[" SN-1 ", "SN-2"])

    made.refresh_from_db()
    assert (made.status, made.quantity, made.returned_on, made.partner, made.member) == (
        ReturnStatus.REGISTERED,
        2,
        today,
        member.partner,
        member,
    )
    assert sorted(made.serials.values_list("serial", "serial_key")) == [("SN1", "sn1"), ("SN2", "sn2")]
    assert list(made.events.values_list("from_status", "to_status", "actor")) == [
        ("", ReturnStatus.REGISTERED, member.user_id)
    ]


def test_a_type_without_serials_takes_a_return_without_any(program, member, cartridge, depot):
    made = register(member, program, cartridge, depot, quantity=80)

    assert made.quantity == 80 and made.serials.count() == 0


@pytest.mark.parametrize(
    ("change", "code", "says"),
    [
        ({"quantity": 501}, ErrorCode.RETURN_QUANTITY, "At most 500 units of Toner cartridge can be returned at once"),
        ({"quantity": 0}, ErrorCode.RETURN_QUANTITY, "Enter at least 1 unit."),
        ({"returned_on": 1}, ErrorCode.RETURN_DATE_FUTURE, "The return day cannot be in the future."),
        ({"returned_on": -61}, ErrorCode.RETURN_DATE_TOO_OLD, "Returns can be registered up to 60 days later"),
        ({"serials": ["A1", "A2"], "quantity": 3}, ErrorCode.SERIALS_COUNT, "3 units, 2 serial numbers"),
        ({"serials": ["A1", "a 1"], "quantity": 2}, ErrorCode.SERIAL_REPEATED, "entered twice: a 1."),
        ({"serials": ["X" * 81]}, ErrorCode.SERIAL_INVALID, "at most 80 characters"),
        ({"serials": ["- -"]}, ErrorCode.SERIAL_INVALID, "needs letters or digits: - -."),
    ],
)
def test_bad_registrations_are_refused_and_write_nothing(program, member, cartridge, depot, change, code, says):
    if "returned_on" in change:
        change = {**change, "returned_on": timezone.localdate() + timedelta(days=change["returned_on"])}

    with pytest.raises(ApplicationError) as refused:
        register(member, program, cartridge, depot, **change)

    assert refused.value.code == code
    assert says in refused.value.message
    assert nothing_written()


def test_the_oldest_return_day_allowed_is_the_claim_window(program, member, cartridge, depot):
    made = register(member, program, cartridge, depot, returned_on=timezone.localdate() - timedelta(days=60))

    assert made.pk is not None


def test_a_type_requiring_serials_refuses_a_return_without_them(program, member, depot):
    scanner = ReturnTypeFactory(program=program, name="Scanner", requires_serials=True)

    with pytest.raises(ApplicationError) as refused:
        register(member, program, scanner, depot, quantity=2)

    assert refused.value.code == ErrorCode.SERIALS_COUNT
    assert refused.value.message == "Scanner needs the serial number of each of the 2 units returned, one per line."
    assert nothing_written()


def test_a_type_or_point_of_another_program_or_inactive_is_refused(program, member, cartridge, depot):
    other = ProgramFactory()
    cases = [
        (ReturnTypeFactory(program=other), depot, ErrorCode.RETURN_TYPE_UNKNOWN),
        (ReturnTypeFactory(program=program, is_active=False), depot, ErrorCode.RETURN_TYPE_UNKNOWN),
        (cartridge, CollectionPointFactory(program=other), ErrorCode.COLLECTION_POINT_UNKNOWN),
        (cartridge, CollectionPointFactory(program=program, is_active=False), ErrorCode.COLLECTION_POINT_UNKNOWN),
    ]
    for return_type, point, code in cases:
        with pytest.raises(ApplicationError) as refused:
            register(member, program, return_type, point)
        assert refused.value.code == code
    assert nothing_written()


def test_an_inactive_member_cannot_register(program, cartridge, depot):
    member = MemberFactory(status=MemberStatus.PENDING_APPROVAL)

    with pytest.raises(ApplicationError) as refused:
        register(member, program, cartridge, depot)

    assert refused.value.code == ErrorCode.MEMBER_INACTIVE
    assert nothing_written()


def test_a_serial_registered_by_another_partner_is_refused_and_named(program, member, depot):
    scanner = ReturnTypeFactory(program=program, name="Scanner", requires_serials=True)
    register(MemberFactory(), program, scanner, depot, serials=["AB123"])

    with pytest.raises(ApplicationError) as refused:
        register(member, program, scanner, depot, quantity=2, serials=["ZZ-9", "ab-12 3"])

    assert refused.value.code == ErrorCode.SERIAL_REGISTERED
    assert refused.value.message == "This serial number was registered in another return already: ab-12 3."
    assert EquipmentReturn.objects.count() == 1 and ReturnedSerial.objects.count() == 1


def test_a_rejected_return_releases_its_serials_for_a_new_return(program, member, depot, pm):
    scanner = ReturnTypeFactory(program=program, name="Scanner", requires_serials=True)
    first = register(member, program, scanner, depot, serials=["AB123"])
    services.return_reject(return_id=first.pk, actor=pm, reason="Nothing arrived.")

    second = register(member, program, scanner, depot, serials=["ab-12 3"])

    assert list(ReturnedSerial.objects.order_by("pk").values_list("equipment_return", "is_released")) == [
        (first.pk, True),
        (second.pk, False),
    ]


# Confirming: the office-supplies retailer's 100 points per cartridge, at most 10,000 a month ------------------------


def test_returns_within_one_month_pay_up_to_the_monthly_cap_and_the_member_is_told(
    program, member, cartridge, depot, pm
):
    returns_rule(program, points=100, cap=10_000)
    day = timezone.localdate()
    first = register(member, program, cartridge, depot, quantity=80, returned_on=day)
    second = register(member, program, cartridge, depot, quantity=40, returned_on=day)

    _done, paid_first = services.return_confirm(return_id=first.pk, actor=pm)
    _done, paid_second = services.return_confirm(return_id=second.pk, actor=pm)

    assert earned(member) == [8_000, 2_000]
    assert (paid_first.points, paid_first.wanted, paid_first.limited) == (8_000, 8_000, False)
    assert (paid_second.points, paid_second.wanted, paid_second.limited) == (2_000, 4_000, True)
    second.refresh_from_db()
    assert second.status == ReturnStatus.CONFIRMED
    assert second.reason == "Paid up to your monthly cap: 2,000 of 4,000 points."
    notice = Delivery.objects.get(kind=Kind.RETURN_DECIDED, source_key=f"return:{second.pk}:confirmed", channel="inbox")
    assert "You earned 2,000 points." in notice.body
    assert "Paid up to your monthly cap: 2,000 of 4,000 points." in notice.body
    first.refresh_from_db()
    assert first.reason == ""


def test_rules_for_a_product_line_pay_its_returns_at_their_own_rate(program, member, depot, pm):
    printers, toner = ProductLineFactory(), ProductLineFactory()
    printer = ReturnTypeFactory(program=program, name="Laser printer", product_line=printers)
    cartridge = ReturnTypeFactory(program=program, name="Toner", product_line=toner)
    returns_rule(program, code="printers", points=200).product_lines.set([printers])
    returns_rule(program, code="toner", points=20).product_lines.set([toner])

    for return_type, quantity in ((printer, 2), (cartridge, 5)):
        services.return_confirm(return_id=register(member, program, return_type, depot, quantity).pk, actor=pm)

    assert earned(member) == [400, 100]


def test_the_cap_starts_again_in_the_next_month_by_return_day(program, member, cartridge, depot, pm):
    returns_rule(program, points=100, cap=10_000)
    this_month = timezone.localdate().replace(day=1)
    last_month = this_month - timedelta(days=1)
    earlier = [register(member, program, cartridge, depot, quantity=q, returned_on=last_month) for q in (80, 40)]
    later = register(member, program, cartridge, depot, quantity=120, returned_on=this_month)

    for made in [*earlier, later]:
        services.return_confirm(return_id=made.pk, actor=pm)

    assert earned(member) == [8_000, 2_000, 10_000]


def test_a_return_beyond_a_full_cap_pays_nothing_and_says_so(program, member, cartridge, depot, pm):
    returns_rule(program, points=100, cap=10_000)
    full = register(member, program, cartridge, depot, quantity=100)
    beyond = register(member, program, cartridge, depot, quantity=5)
    services.return_confirm(return_id=full.pk, actor=pm)

    _done, payout = services.return_confirm(return_id=beyond.pk, actor=pm)

    assert earned(member) == [10_000]
    assert (payout.points, payout.wanted) == (0, 500)
    beyond.refresh_from_db()
    assert (beyond.status, beyond.reason) == (ReturnStatus.CONFIRMED, "Paid up to your monthly cap: 0 of 500 points.")


def test_a_confirmed_return_cannot_be_confirmed_or_rejected_again(program, member, cartridge, depot, pm):
    returns_rule(program, points=100)
    made = register(member, program, cartridge, depot, quantity=3)
    services.return_confirm(return_id=made.pk, actor=pm)

    for decide in (
        lambda: services.return_confirm(return_id=made.pk, actor=pm),
        lambda: services.return_reject(return_id=made.pk, actor=pm, reason="Oops"),
    ):
        with pytest.raises(ApplicationError) as refused:
            decide()
        assert refused.value.code == ErrorCode.BAD_TRANSITION
    assert earned(member) == [300]
    assert made.events.count() == 2


def test_rejecting_needs_a_reason_and_tells_the_member(program, member, cartridge, depot, pm):
    made = register(member, program, cartridge, depot, quantity=3)
    with pytest.raises(ApplicationError) as refused:
        services.return_reject(return_id=made.pk, actor=pm, reason="  ")
    assert refused.value.code == ErrorCode.REASON_REQUIRED
    made.refresh_from_db()
    assert made.status == ReturnStatus.REGISTERED

    services.return_reject(return_id=made.pk, actor=pm, reason="Nothing arrived at the depot.")

    made.refresh_from_db()
    assert (made.status, made.reason, made.decided_by) == (ReturnStatus.REJECTED, "Nothing arrived at the depot.", pm)
    notice = Delivery.objects.get(kind=Kind.RETURN_DECIDED, source_key=f"return:{made.pk}:rejected", channel="inbox")
    assert "was not confirmed" in notice.body and "Nothing arrived at the depot." in notice.body
    assert earned(member) == []


# Who decides ---------------------------------------------------------------------------------------------------


def test_the_collecting_partners_people_confirm_returns_at_their_points(program, member, cartridge):
    returns_rule(program, points=100)
    collector = PartnerFactory(name="Green Depot")
    point = CollectionPointFactory(program=program, partner=collector)
    clerk = MemberFactory(partner=collector)
    made = register(member, program, cartridge, point, quantity=2)

    services.return_confirm(return_id=made.pk, actor=clerk.user)

    assert earned(member) == [200]


def test_others_cannot_decide_a_return_and_nothing_changes(program, member, cartridge):
    returns_rule(program, points=100)
    collector = PartnerFactory()
    point = CollectionPointFactory(program=program, partner=collector)
    made = register(member, program, cartridge, point, quantity=2)
    outsiders = [
        OwnerFactory().user,  # another partner's owner
        MemberFactory(partner=member.partner).user,  # the member's colleague
        MemberFactory(partner=collector, status=MemberStatus.LEFT).user,  # a collector who left
    ]

    for user in outsiders:
        with pytest.raises(ApplicationError) as refused:
            services.return_confirm(return_id=made.pk, actor=user)
        assert refused.value.code == ErrorCode.FORBIDDEN

    made.refresh_from_db()
    assert made.status == ReturnStatus.REGISTERED and earned(member) == []


def test_a_collector_cannot_confirm_their_own_return(program, cartridge):
    returns_rule(program, points=100)
    collector = PartnerFactory()
    point = CollectionPointFactory(program=program, partner=collector)
    clerk = MemberFactory(partner=collector)
    made = register(clerk, program, cartridge, point, quantity=2)

    with pytest.raises(ApplicationError) as refused:
        services.return_confirm(return_id=made.pk, actor=clerk.user)

    assert refused.value.code == ErrorCode.FOUR_EYES
    assert earned(clerk) == []


# Races ---------------------------------------------------------------------------------------------------------


def _at_once(*calls) -> list:
    barrier, outcomes, lock = threading.Barrier(len(calls)), [], threading.Lock()

    def run(call):
        try:
            barrier.wait()
            call()
            outcome = "done"
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
def test_two_confirmations_at_once_pay_once():
    program = ProgramFactory(starts_on=timezone.localdate() - timedelta(days=400))
    returns_rule(program, points=100, cap=10_000)
    member = MemberFactory()
    made = register(member, program, ReturnTypeFactory(program=program), CollectionPointFactory(program=program), 30)
    pm = ProgramManagerFactory()

    outcomes = _at_once(*[lambda: services.return_confirm(return_id=made.pk, actor=pm)] * 2)

    assert outcomes == sorted(["done", ErrorCode.BAD_TRANSITION])
    assert earned(member) == [3_000]
    assert EquipmentReturnEvent.objects.filter(to_status=ReturnStatus.CONFIRMED).count() == 1
    assert Delivery.objects.filter(kind=Kind.RETURN_DECIDED, channel="inbox").count() == 1


@pytest.mark.django_db(transaction=True)
def test_two_returns_of_the_same_serial_at_once_one_is_refused():
    program = ProgramFactory(starts_on=timezone.localdate() - timedelta(days=400))
    scanner = ReturnTypeFactory(program=program, requires_serials=True)
    point = CollectionPointFactory(program=program)
    first, second = MemberFactory(), MemberFactory()

    outcomes = _at_once(
        lambda: register(first, program, scanner, point, quantity=2, serials=["AB123", "Q-1"]),
        lambda: register(second, program, scanner, point, quantity=1, serials=["ab-12 3"]),
    )

    assert outcomes == sorted(["done", ErrorCode.SERIAL_REGISTERED])
    assert list(ReturnedSerial.objects.values_list("serial_key", flat=True).filter(serial_key="ab123")) == ["ab123"]
    assert EquipmentReturn.objects.count() == 1
