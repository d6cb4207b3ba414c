"""Dated events and expert sessions (Reward.event_starts_at/event_place): capacity is the stock, booking a seat is
redeeming it, cancelling before the event refunds, members-only is the minimum tier; the program team records
attendance once the event has started, and attending pays through the rules' "event attended" event, once."""

from collections import Counter
from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from loyalty.common.errors import ApplicationError
from loyalty.constants import EntrySource, Formula, RuleEvent
from loyalty.models import PartnerTier, PointsEntry
from loyalty.selectors.ledger import ledger_problems
from loyalty.services import ledger
from rewards import selectors, services
from rewards.admin_forms import RewardAdminForm
from rewards.constants import OrderStatus, PaidBy, RewardKind
from rewards.error_codes import ErrorCode
from rewards.models import RedemptionLine, RedemptionOrder, Reward
from tests.loyalty.factories import ProgramFactory, RuleFactory, TierFactory
from tests.loyalty.test_ledger_concurrency import run_in_parallel
from tests.partners.factories import MemberFactory
from tests.rewards.factories import RewardFactory

pytestmark = pytest.mark.django_db

SOON = timezone.now() + timedelta(days=10)
PAST = timezone.now() - timedelta(hours=2)


@pytest.fixture
def program():
    return ProgramFactory(currency_name="AquaPoints", order_approval_threshold=5000)


def event(program, **fields):
    defaults = {
        "name": "Business breakfast",
        "kind": RewardKind.EXPERIENCE,
        "points_price": 200,
        "stock": 20,
        "event_starts_at": SOON,
        "event_place": "Hotel Adlon, Berlin",
    }
    return RewardFactory(program=program, **{**defaults, **fields})


def member_with(program, points=1000):
    member = MemberFactory()
    ledger.earn(account=ledger.member_account(program=program, member=member), points=points, key=f"seed{member.pk}")
    return member


def balance(program, member) -> int:
    return ledger.member_account(program=program, member=member).available


def book(member, program, reward, key="k1", quantity=1) -> RedemptionOrder:
    return services.order_place(
        member=member, program=program, items=[(reward, quantity)], paid_by=PaidBy.MEMBER, checkout_key=key
    )


def seat_of(order) -> RedemptionLine:
    return order.lines.get()


def pays_for_attending(program, points=150):
    return RuleFactory(program=program, event=RuleEvent.EVENT_ATTENDED, formula=Formula.FIXED, value=Decimal(points))


# Booking ---------------------------------------------------------------------------------------------------------


def test_booking_a_seat_takes_one_of_the_capacity_and_the_points(program):
    breakfast = event(program)
    member = member_with(program)

    order = book(member, program, breakfast)

    breakfast.refresh_from_db()
    assert (order.status, breakfast.stock, balance(program, member)) == (OrderStatus.APPROVED, 19, 800)
    assert selectors.seat_capacity(reward=breakfast) == 20


def test_the_holder_may_cancel_an_approved_seat_before_the_event_and_gets_points_and_seat_back(program):
    breakfast = event(program)
    member = member_with(program)
    order = book(member, program, breakfast)
    assert services.can_cancel(viewer=member.user, order=order)

    services.order_transition(order=order, to=OrderStatus.CANCELLED, actor=member.user, note="Cannot come")

    breakfast.refresh_from_db()
    assert (breakfast.stock, balance(program, member)) == (20, 1000)


def test_an_approved_seat_cannot_be_cancelled_by_its_holder_once_the_event_started(program):
    breakfast = event(program)
    member = member_with(program)
    order = book(member, program, breakfast)
    Reward.objects.filter(pk=breakfast.pk).update(event_starts_at=PAST)

    assert not services.can_cancel(viewer=member.user, order=order)
    with pytest.raises(ApplicationError) as refused:
        services.order_transition(order=order, to=OrderStatus.CANCELLED, actor=member.user, note="Too late")

    assert refused.value.code == ErrorCode.FORBIDDEN
    order.refresh_from_db()
    assert (order.status, balance(program, member)) == (OrderStatus.APPROVED, 800)


def test_a_members_only_event_is_refused_below_its_tier_with_a_clear_message_and_nothing_spent(program):
    silver = TierFactory(program=program, name="Silver", rank=1)
    gold = TierFactory(program=program, name="Gold", rank=2)
    gala = event(program, name="Club gala", min_tier=gold)
    member = member_with(program)
    today = timezone.localdate()
    PartnerTier.objects.create(program=program, partner=member.partner, tier=silver, since=today, held_until=today)

    with pytest.raises(ApplicationError) as refused:
        book(member, program, gala)

    assert refused.value.message == "Club gala is reserved for Gold partners and above."
    gala.refresh_from_db()
    assert (gala.stock, balance(program, member), RedemptionOrder.objects.count()) == (20, 1000, 0)
    assert list(selectors.event_list(member=member, program=program)) == []


def test_a_members_only_event_is_bookable_at_its_tier(program):
    gold = TierFactory(program=program, name="Gold", rank=2)
    gala = event(program, name="Club gala", min_tier=gold)
    member = member_with(program)
    today = timezone.localdate()
    PartnerTier.objects.create(program=program, partner=member.partner, tier=gold, since=today, held_until=today)

    assert book(member, program, gala).total_points == 200


@pytest.mark.django_db(transaction=True)
def test_two_members_racing_for_the_last_seat_one_books_it_and_the_other_is_told_it_is_full():
    program = ProgramFactory(order_approval_threshold=5000)
    breakfast = event(program, stock=1)
    members = [member_with(program), member_with(program)]

    def attempt(i):
        book(members[i], program, breakfast, key=f"race{i}")
        return "booked"

    outcomes = run_in_parallel(2, attempt)

    assert outcomes == Counter({"booked": 1, ErrorCode.OUT_OF_STOCK: 1})
    breakfast.refresh_from_db()
    assert breakfast.stock == 0
    assert sorted(balance(program, member) for member in members) == [800, 1000]
    assert ledger_problems() == []


def test_the_member_who_lost_the_race_gets_a_clear_message(program):
    breakfast = event(program, stock=1)
    book(member_with(program), program, breakfast)
    late = member_with(program)

    with pytest.raises(ApplicationError) as refused:
        book(late, program, breakfast, key="k2")

    assert refused.value.message == "Business breakfast is out of stock for that quantity."
    assert balance(program, late) == 1000


# Attendance ------------------------------------------------------------------------------------------------------


def started_seat(program):
    breakfast = event(program)
    member = member_with(program)
    order = book(member, program, breakfast)
    Reward.objects.filter(pk=breakfast.pk).update(event_starts_at=PAST)
    return member, seat_of(order)


def test_attending_pays_once_through_the_rule_even_when_marked_twice(program, program_manager):
    pays_for_attending(program)
    member, seat = started_seat(program)

    services.attendance_record(line=seat, actor=program_manager, attended=True)
    services.attendance_record(line=seat, actor=program_manager, attended=True)

    seat.refresh_from_db()
    assert seat.attended_at is not None and not seat.no_show
    assert balance(program, member) == 800 + 150
    entries = PointsEntry.objects.filter(source_type=EntrySource.EVENT)
    assert list(entries.values_list("available_delta", flat=True)) == [150]
    assert ledger_problems() == []


def test_a_no_show_pays_nothing(program, program_manager):
    pays_for_attending(program)
    member, seat = started_seat(program)

    services.attendance_record(line=seat, actor=program_manager, attended=False)

    seat.refresh_from_db()
    assert (seat.no_show, seat.attended_at, balance(program, member)) == (True, None, 800)
    assert not PointsEntry.objects.filter(source_type=EntrySource.EVENT).exists()


def test_attendance_before_the_event_starts_is_refused_and_nothing_changes(program, program_manager):
    pays_for_attending(program)
    breakfast = event(program)
    member = member_with(program)
    seat = seat_of(book(member, program, breakfast))

    with pytest.raises(ApplicationError) as refused:
        services.attendance_record(line=seat, actor=program_manager, attended=True)

    assert refused.value.code == ErrorCode.EVENT_NOT_STARTED
    seat.refresh_from_db()
    assert (seat.attended_at, seat.no_show, balance(program, member)) == (None, False, 800)


def test_a_member_cannot_record_their_own_attendance(program):
    pays_for_attending(program)
    member, seat = started_seat(program)

    with pytest.raises(ApplicationError) as refused:
        services.attendance_record(line=seat, actor=member.user, attended=True)

    assert refused.value.code == ErrorCode.FORBIDDEN
    seat.refresh_from_db()
    assert (seat.attended_at, balance(program, member)) == (None, 800)


def test_an_attendance_already_paid_cannot_be_turned_into_a_no_show(program, program_manager):
    pays_for_attending(program)
    member, seat = started_seat(program)
    services.attendance_record(line=seat, actor=program_manager, attended=True)

    with pytest.raises(ApplicationError) as refused:
        services.attendance_record(line=seat, actor=program_manager, attended=False)

    assert refused.value.code == ErrorCode.ATTENDANCE_RECORDED
    seat.refresh_from_db()
    assert (seat.no_show, balance(program, member)) == (False, 950)


def test_the_attendance_page_marks_ticked_seats_attended_once_the_event_started(pm_client, program):
    pays_for_attending(program)
    member, seat = started_seat(program)
    url = reverse("admin:rewards_reward_attendance", args=[seat.reward_id])

    body = pm_client.get(url).content.decode()
    assert member.user.email in body and "Mark attended" in body
    pm_client.post(url, {"line": [seat.pk], "mark": "attended"})

    seat.refresh_from_db()
    assert seat.attended_at is not None
    assert balance(program, member) == 950


def test_the_attendance_page_offers_no_marking_before_the_event(pm_client, program):
    breakfast = event(program)
    member = member_with(program)
    book(member, program, breakfast)

    body = pm_client.get(reverse("admin:rewards_reward_attendance", args=[breakfast.pk])).content.decode()

    assert member.user.email in body
    assert "Attendance can be recorded once the event has started." in body
    assert "Mark attended" not in body


@pytest.mark.parametrize("bookings", [1, 8])
def test_the_attendance_page_query_count_does_not_grow_with_bookings(
    pm_client, program, django_assert_max_num_queries, bookings
):
    breakfast = event(program)
    for n in range(bookings):
        book(member_with(program), program, breakfast, key=f"b{n}")
    with django_assert_max_num_queries(12):
        response = pm_client.get(reverse("admin:rewards_reward_attendance", args=[breakfast.pk]))
    assert response.content.decode().count('name="line"') == 0  # not started: nothing to tick
    assert response.content.decode().count("Order ") >= bookings


# The reward form -------------------------------------------------------------------------------------------------


def form_data(reward, **changes):
    form = RewardAdminForm(instance=reward)
    return {**form.initial, "allowed_roles": [], "allowed_regions": [], **changes}


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"kind": RewardKind.MERCHANDISE}, "kind"),
        ({"stock": ""}, "stock"),
        ({"event_place": ""}, "event_place"),
        ({"event_starts_at": ""}, "event_starts_at"),  # a place without a date
    ],
)
def test_the_reward_form_refuses_an_incomplete_dated_event(program, changes, field):
    breakfast = event(program)
    form = RewardAdminForm(form_data(breakfast, **changes), instance=breakfast)

    assert not form.is_valid()
    assert list(form.errors) == [field]
    breakfast.refresh_from_db()
    assert (breakfast.kind, breakfast.stock, breakfast.event_place) == (
        RewardKind.EXPERIENCE,
        20,
        "Hotel Adlon, Berlin",
    )


def test_the_reward_form_accepts_a_complete_expert_session(program):
    plain = RewardFactory(program=program, kind=RewardKind.SESSION, stock=None)
    starts = timezone.localtime(SOON).replace(second=0, microsecond=0)
    data = form_data(plain, stock=6, event_starts_at=starts.strftime("%Y-%m-%d %H:%M"), event_place="Online (Teams)")

    form = RewardAdminForm(data, instance=plain)

    assert form.is_valid(), form.errors
    form.save()
    plain.refresh_from_db()
    assert (plain.stock, plain.event_place, plain.event_starts_at) == (6, "Online (Teams)", starts)


# Member pages ----------------------------------------------------------------------------------------------------


def test_the_reward_page_shows_date_place_and_seats_left(client, program):
    gold = TierFactory(program=program, name="Gold", rank=1)
    breakfast = event(program, stock=3, min_tier=gold)
    member = member_with(program)
    today = timezone.localdate()
    PartnerTier.objects.create(program=program, partner=member.partner, tier=gold, since=today, held_until=today)
    book(member, program, breakfast)  # 2 of 3 left
    client.force_login(member.user)

    body = client.get(reverse("reward_detail", args=[breakfast.pk])).content.decode()

    assert "Hotel Adlon, Berlin" in body
    assert "2 of 3 seats left" in body
    assert "Members-only: Gold and above" in body
    assert timezone.localtime(SOON).isoformat(timespec="seconds")[:16] in body


@pytest.mark.parametrize("count", [1, 12])
def test_the_catalogue_shows_upcoming_events_first_with_seats_and_a_pinned_query_count(
    client, program, django_assert_max_num_queries, count
):
    member = member_with(program, points=100_000)
    for n in range(count):
        event(program, name=f"Breakfast {n:02d}", event_starts_at=SOON + timedelta(days=n))
    client.force_login(member.user)

    with django_assert_max_num_queries(14):  # as the catalogue without events, + the upcoming events
        body = client.get(reverse("catalogue")).content.decode()

    assert "Upcoming events and sessions" in body
    assert body.count("20 of 20 seats left") == min(count, 6) + count
    assert body.index("Breakfast 00") < body.index("Upcoming events and sessions") + 2000


def test_my_orders_show_my_upcoming_events_with_date_and_place(client, program):
    breakfast = event(program)
    member = member_with(program)
    book(member, program, breakfast)
    other = member_with(program)
    book(other, program, event(program, name="Other partner's tour", event_place="Plant tour, Linz"), key="o1")
    client.force_login(member.user)

    body = client.get(reverse("order_list")).content.decode()

    assert "My upcoming events" in body
    assert "Business breakfast" in body and "Hotel Adlon, Berlin" in body
    assert "Plant tour, Linz" not in body


def test_my_orders_have_no_events_section_without_upcoming_seats(client, program):
    member = member_with(program)
    client.force_login(member.user)

    body = client.get(reverse("order_list")).content.decode()

    assert "My upcoming events" not in body
