"""Prize draws: the seed's hash published at the opening and the entry list's at the close, the winners re-derived
from the revealed seed by an independent copy of the published procedure, entries bought (once per form token, also
at the same moment), the free entry where the region requires it, the most entries per member, entries by activity,
refusals that change nothing, and every entrant told the result."""

import hashlib
import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone

from communications.constants import Kind
from communications.models import Delivery
from loyalty.common.errors import ApplicationError
from loyalty.constants import DrawStatus, EntryKind, EntrySource, EntrySourceKind, Formula, RuleEvent
from loyalty.engine.facts import member_event
from loyalty.error_codes import ErrorCode
from loyalty.models import DrawEntry, DrawWinner, PointsEntry
from loyalty.services import draws as services
from loyalty.services import ledger
from loyalty.services.earning import post_event
from partners.constants import MemberStatus
from tests.loyalty.factories import ProgramFactory, RuleFactory
from tests.loyalty.factories_draws import DrawEntryFactory, PrizeDrawFactory, balance, give_points, opened
from tests.partners.factories import MemberFactory, RegionFactory

pytestmark = pytest.mark.django_db


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def independent_winners(seed: str, entry_list: str, prizes: int) -> list[int]:
    """The procedure as published on the verification page, written again from its words (not the app's code)."""
    entries = [tuple(int(part) for part in line.split(":")) for line in entry_list.split("\n") if line]
    winners = []
    for k in range(1, prizes + 1):
        tickets = [member for _entry, member, count in entries for _ in range(count)]
        if not tickets:
            break
        h = int(hashlib.sha256(f"{seed}:{k}".encode()).hexdigest(), 16)
        winner = tickets[h % len(tickets)]
        winners.append(winner)
        entries = [entry for entry in entries if entry[1] != winner]
    return winners


def closed(draw):
    return services.draw_close(draw=draw, now=draw.closes_at)


def assert_nothing_entered(draw, member, points_before: int):
    assert not DrawEntry.objects.filter(draw=draw, member=member).exists()
    assert balance(member, draw.program) == points_before
    assert not PointsEntry.objects.filter(source_type=EntrySource.DRAW).exists()


# Opening, closing, drawing ---------------------------------------------------------------------------------------


def test_opening_draws_a_secret_seed_and_publishes_its_sha256():
    draw = PrizeDrawFactory()

    opened_draw = services.draw_open(draw=draw)

    draw.refresh_from_db()
    assert draw.status == DrawStatus.OPEN
    assert len(draw.seed) == 64 and int(draw.seed, 16) >= 0
    assert draw.seed_hash == sha256(draw.seed)
    assert opened_draw.seed_hash == draw.seed_hash
    assert draw.entries_hash == ""


def test_opening_without_prizes_or_twice_is_refused():
    no_prize = PrizeDrawFactory(prizes=" \n ")
    with pytest.raises(ApplicationError) as refused:
        services.draw_open(draw=no_prize)
    assert refused.value.code == ErrorCode.EMPTY
    no_prize.refresh_from_db()
    assert (no_prize.status, no_prize.seed, no_prize.seed_hash) == (DrawStatus.DRAFT, "", "")

    draw = opened()
    seed = draw.seed
    with pytest.raises(ApplicationError) as refused:
        services.draw_open(draw=draw)
    assert refused.value.code == ErrorCode.BAD_TRANSITION
    draw.refresh_from_db()
    assert draw.seed == seed


def test_the_winners_follow_from_the_revealed_seed_and_the_entry_list_whose_hashes_were_published_before():
    draw = opened(prizes="Vienna\nCoffee machine\nBottle")
    published_seed_hash = draw.seed_hash
    members = [MemberFactory() for _ in range(6)]
    for number, member in enumerate(members, 1):
        DrawEntryFactory(draw=draw, member=member, count=number)
    DrawEntryFactory(draw=draw, member=members[0], count=4)  # a second entry of the same member

    draw = closed(draw)
    published_entries_hash = draw.entries_hash
    entry_list = "\n".join(
        f"{e.pk}:{e.member_id}:{e.count}" for e in DrawEntry.objects.filter(draw=draw).order_by("pk")
    )
    assert draw.status == DrawStatus.CLOSED
    assert draw.seed_hash == published_seed_hash
    assert published_entries_hash == sha256(entry_list)

    draw = services.draw_run(draw=draw)

    draw.refresh_from_db()
    assert draw.status == DrawStatus.DRAWN and draw.drawn_at is not None
    assert sha256(draw.seed) == published_seed_hash
    assert draw.entries_hash == published_entries_hash
    stored = list(DrawWinner.objects.filter(draw=draw).order_by("rank").values_list("rank", "prize", "member_id"))
    expected = independent_winners(draw.seed, entry_list, 3)
    assert stored == [
        (rank, prize, member)
        for rank, (prize, member) in enumerate(zip(["Vienna", "Coffee machine", "Bottle"], expected, strict=True), 1)
    ]
    assert len({member for _rank, _prize, member in stored}) == 3


def test_a_member_wins_at_most_once_and_prizes_stop_when_the_entrants_run_out():
    draw = opened(prizes="First\nSecond\nThird")
    heavy, light = MemberFactory(), MemberFactory()
    DrawEntryFactory(draw=draw, member=heavy, count=9)
    DrawEntryFactory(draw=draw, member=light, count=1)

    services.draw_run(draw=closed(draw))

    winners = list(DrawWinner.objects.filter(draw=draw).order_by("rank").values_list("rank", "member_id"))
    assert [rank for rank, _member in winners] == [1, 2]
    assert {member for _rank, member in winners} == {heavy.pk, light.pk}


def test_a_draw_nobody_entered_is_drawn_with_no_winner():
    draw = closed(opened())

    services.draw_run(draw=draw)

    draw.refresh_from_db()
    assert draw.status == DrawStatus.DRAWN
    assert draw.entries_hash == sha256("")
    assert not DrawWinner.objects.filter(draw=draw).exists()


def test_closing_before_the_closing_moment_and_drawing_an_open_draw_are_refused():
    draw = opened()

    with pytest.raises(ApplicationError) as early:
        services.draw_close(draw=draw, now=draw.closes_at - timedelta(seconds=1))
    with pytest.raises(ApplicationError) as not_closed:
        services.draw_run(draw=draw)

    assert (early.value.code, not_closed.value.code) == (ErrorCode.DATE_WINDOW, ErrorCode.BAD_TRANSITION)
    draw.refresh_from_db()
    assert (draw.status, draw.entries_hash) == (DrawStatus.OPEN, "")
    assert not DrawWinner.objects.exists()


def test_every_entrant_hears_the_result_won_or_not_with_their_entries(django_capture_on_commit_callbacks):
    draw = opened(prizes="The only prize")
    members = [MemberFactory() for _ in range(3)]
    for member, count in zip(members, (1, 2, 3), strict=True):
        DrawEntryFactory(draw=draw, member=member, count=count)
    closed(draw)

    with django_capture_on_commit_callbacks(execute=True):
        services.draw_run(draw=draw)

    winner = DrawWinner.objects.get(draw=draw).member_id
    told = Delivery.objects.filter(kind=Kind.DRAW_RESULT, channel="inbox").order_by("member_id")
    assert [d.member_id for d in told] == [m.pk for m in members]
    for delivery, count in zip(told, (1, 2, 3), strict=True):
        assert delivery.source_key == f"draw:{draw.pk}:result"
        if delivery.member_id == winner:
            assert "you won The only prize" in delivery.body
        else:
            assert "this time you did not win" in delivery.body
        assert f"You held {count} entr" in delivery.body


def test_run_due_draws_closes_and_draws_the_draws_whose_entries_closed_only():
    due = opened(closes_at=timezone.now() + timedelta(minutes=5))
    DrawEntryFactory(draw=due, count=2)
    later = opened(closes_at=timezone.now() + timedelta(days=2))

    drawn = services.run_due_draws(now=timezone.now() + timedelta(minutes=6))

    due.refresh_from_db()
    later.refresh_from_db()
    assert drawn == 1
    assert (due.status, later.status) == (DrawStatus.DRAWN, DrawStatus.OPEN)
    assert DrawWinner.objects.filter(draw=due).count() == 1
    assert services.run_due_draws(now=timezone.now() + timedelta(minutes=6)) == 0


# Buying entries ----------------------------------------------------------------------------------------------------


def test_buying_entries_spends_the_price_from_the_members_account_once_per_form_token():
    draw = opened(entry_price_points=100)
    member = MemberFactory()
    give_points(member, draw.program, 1_000)

    first = services.entries_buy(member=member, draw=draw, count=3, token="token-aaaa")
    again = services.entries_buy(member=member, draw=draw, count=3, token="token-aaaa")

    assert again.pk == first.pk
    assert (first.count, first.source) == (3, EntrySourceKind.BOUGHT)
    assert balance(member, draw.program) == 700
    spent = PointsEntry.objects.get(source_type=EntrySource.DRAW)
    assert (spent.kind, spent.available_delta, spent.source_id) == (EntryKind.SPEND, -300, str(draw.pk))


@pytest.mark.django_db(transaction=True)
def test_the_same_purchase_sent_twice_at_once_enters_and_spends_once():
    draw = opened(entry_price_points=100)
    member = MemberFactory()
    give_points(member, draw.program, 1_000)
    barrier, outcomes, lock = threading.Barrier(2), [], threading.Lock()

    def buy():
        try:
            barrier.wait()
            entry = services.entries_buy(member=member, draw=draw, count=2, token="double-tap")
            outcome = entry.pk
        except ApplicationError as exc:
            outcome = exc.code
        finally:
            connection.close()
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=buy) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    entry = DrawEntry.objects.get(draw=draw)
    assert outcomes == [entry.pk, entry.pk]
    assert entry.count == 2
    assert balance(member, draw.program) == 800
    assert PointsEntry.objects.filter(source_type=EntrySource.DRAW).count() == 1


def test_buying_after_the_close_is_refused_and_nothing_is_spent():
    draw = opened(entry_price_points=100)
    member = MemberFactory()
    give_points(member, draw.program, 1_000)

    with pytest.raises(ApplicationError) as refused:
        services.entries_buy(member=member, draw=draw, count=1, token="late-token", now=draw.closes_at)

    assert refused.value.code == ErrorCode.DRAW_NOT_OPEN
    assert "closed" in refused.value.message
    assert_nothing_entered(draw, member, 1_000)


def test_buying_once_the_draw_is_closed_is_refused_even_before_its_closing_moment_passes_for_the_caller():
    draw = opened(entry_price_points=100)
    member = MemberFactory()
    give_points(member, draw.program, 1_000)
    closed(draw)

    with pytest.raises(ApplicationError) as refused:
        services.entries_buy(member=member, draw=draw, count=1, token="late-token", now=draw.opens_at)

    assert refused.value.code == ErrorCode.DRAW_NOT_OPEN
    assert_nothing_entered(draw, member, 1_000)


def test_buying_more_than_the_most_entries_across_all_sources_is_refused():
    draw = opened(entry_price_points=10, max_entries_per_member=3)
    member = MemberFactory(partner__region=RegionFactory(free_draw_entry=True))
    give_points(member, draw.program, 1_000)
    services.free_entry_take(member=member, draw=draw)
    services.entries_buy(member=member, draw=draw, count=2, token="first-buy")

    with pytest.raises(ApplicationError) as refused:
        services.entries_buy(member=member, draw=draw, count=1, token="second-buy")

    assert refused.value.code == ErrorCode.DRAW_ENTRIES_MAX
    assert refused.value.extra == {"held": 3, "left": 0}
    assert sum(DrawEntry.objects.filter(member=member).values_list("count", flat=True)) == 3
    assert balance(member, draw.program) == 980


def test_buying_without_enough_points_says_what_it_costs_and_changes_nothing():
    draw = opened(entry_price_points=100)
    member = MemberFactory()
    give_points(member, draw.program, 150)

    with pytest.raises(ApplicationError) as refused:
        services.entries_buy(member=member, draw=draw, count=2, token="too-dear")

    assert refused.value.code == ErrorCode.INSUFFICIENT_POINTS
    assert refused.value.message == "2 entries cost 200 AquaPoints; you have 150."
    assert not DrawEntry.objects.exists()
    assert balance(member, draw.program) == 150


def test_buying_where_entries_are_not_for_sale_or_as_an_inactive_member_is_refused():
    draw = opened(entry_price_points=None)
    member = MemberFactory()
    give_points(member, draw.program, 1_000)
    with pytest.raises(ApplicationError) as not_for_sale:
        services.entries_buy(member=member, draw=draw, count=1, token="no-sale")
    inactive = MemberFactory(status=MemberStatus.PENDING_APPROVAL)
    with pytest.raises(ApplicationError) as not_active:
        services.entries_buy(member=inactive, draw=opened(), count=1, token="inactive")

    assert (not_for_sale.value.code, not_active.value.code) == (ErrorCode.DRAW_NOT_FOR_SALE, ErrorCode.MEMBER_INACTIVE)
    assert not DrawEntry.objects.exists()
    assert balance(member, draw.program) == 1_000


# The free entry -------------------------------------------------------------------------------------------------


def test_the_free_entry_is_offered_where_the_region_requires_it_once_with_the_weight_of_a_bought_one():
    draw = opened()
    member = MemberFactory(partner__region=RegionFactory(free_draw_entry=True))

    entry = services.free_entry_take(member=member, draw=draw)
    with pytest.raises(ApplicationError) as twice:
        services.free_entry_take(member=member, draw=draw)

    assert (entry.source, entry.count) == (EntrySourceKind.FREE, 1)
    assert twice.value.code == ErrorCode.DRAW_FREE_ENTRY_TAKEN
    assert DrawEntry.objects.filter(draw=draw, member=member).count() == 1
    assert balance(member, draw.program) == 0


def test_no_free_entry_where_the_region_does_not_require_it():
    draw = opened()
    member = MemberFactory(partner__region=RegionFactory(free_draw_entry=False))

    with pytest.raises(ApplicationError) as refused:
        services.free_entry_take(member=member, draw=draw)

    assert refused.value.code == ErrorCode.DRAW_NO_FREE_ENTRY
    assert not DrawEntry.objects.exists()


def test_the_free_entry_after_the_close_is_refused():
    draw = opened()
    member = MemberFactory(partner__region=RegionFactory(free_draw_entry=True))

    with pytest.raises(ApplicationError) as refused:
        services.free_entry_take(member=member, draw=draw, now=draw.closes_at + timedelta(minutes=1))

    assert refused.value.code == ErrorCode.DRAW_NOT_OPEN
    assert not DrawEntry.objects.exists()


# Entries by activity ----------------------------------------------------------------------------------------------


def earn_by_rule(member, program, key: str):
    event = member_event(
        kind=RuleEvent.TRAINING_PASSED.value,
        program=program,
        source_key=key,
        member=member,
        occurred_on=timezone.localdate(),
    )
    return post_event(program=program, event=event)


def test_the_close_grants_one_entry_per_n_points_earned_by_rules_in_the_window_up_to_the_most():
    program = ProgramFactory()
    RuleFactory(
        program=program, event=RuleEvent.TRAINING_PASSED, formula=Formula.FIXED, value=Decimal(250),
        apply_tier_multiplier=False,
    )  # fmt: skip
    draw = opened(program=program, points_per_activity_entry=100, max_entries_per_member=4)
    busy, keen, idle = MemberFactory(), MemberFactory(), MemberFactory()
    for number in range(3):
        earn_by_rule(busy, program, f"busy:{number}")  # 750 points: 7 entries, capped at 4
    earn_by_rule(keen, program, "keen:1")  # 250 points: 2 entries
    give_points(idle, program, 5_000)  # not earned by a rule: no entry
    draw.closes_at = timezone.now() + timedelta(seconds=1)
    draw.save(update_fields=["closes_at"])

    closed(draw)

    granted = dict(
        DrawEntry.objects.filter(draw=draw, source=EntrySourceKind.ACTIVITY).values_list("member_id", "count")
    )
    assert granted == {busy.pk: 4, keen.pk: 2}
    assert DrawEntry.objects.get(member=keen).key == f"draw:{draw.pk}:activity:{keen.pk}"
    assert ledger.member_account(program=program, member=busy).available == 750  # entries by activity cost nothing
