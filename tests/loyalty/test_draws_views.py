"""The member site's prize draws: the list with the entries the member holds, a draw's page (buying, the free entry,
the results), the verification page re-deriving the winners, who may see what, and the pages' query counts."""

import hashlib
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from loyalty.constants import EntrySource
from loyalty.models import DrawEntry, PointsEntry
from loyalty.services import draws as services
from tests.helpers import messages_of, visible
from tests.loyalty.factories import ProgramFactory
from tests.loyalty.factories_draws import DrawEntryFactory, PrizeDrawFactory, balance, give_points, opened
from tests.partners.factories import MemberFactory, OwnerFactory, ProgramManagerFactory, RegionFactory

pytestmark = pytest.mark.django_db
LIST = reverse("draw_list")


@pytest.fixture
def program():
    return ProgramFactory(currency_name="AquaPoints")


@pytest.fixture
def member():
    return MemberFactory(partner__region=RegionFactory(free_draw_entry=True))


@pytest.fixture
def signed_in(client, member):
    client.force_login(member.user)
    return client


def drawn(draw):
    return services.draw_run(draw=services.draw_close(draw=draw, now=draw.closes_at))


def test_the_list_shows_the_programs_draws_with_the_entries_the_member_holds(signed_in, program, member):
    summer = opened(program=program, name="Summer draw")
    DrawEntryFactory(draw=summer, member=member, count=3)
    DrawEntryFactory(draw=summer, count=5)  # someone else's
    PrizeDrawFactory(program=program, name="Draft draw")
    opened(program=ProgramFactory(is_active=False), name="Other program's draw")

    response = signed_in.get(LIST)

    text = visible(response)
    assert response.status_code == 200
    assert "Summer draw Open for entries" in text
    assert "You hold 3 entries." in text
    assert "Draft draw" not in text and "Other program's draw" not in text


def test_the_list_without_draws_says_so(signed_in, program):
    response = signed_in.get(LIST)

    assert "No prize draw right now" in visible(response)


def test_the_list_takes_the_same_queries_for_one_draw_or_many(signed_in, program, member, django_assert_num_queries):
    opened(program=program)
    signed_in.get(LIST)
    with django_assert_num_queries(7) as one:
        signed_in.get(LIST)
    for _ in range(4):
        DrawEntryFactory(draw=opened(program=program), member=member, count=2)
    with django_assert_num_queries(len(one.captured_queries)):
        signed_in.get(LIST)


def test_buying_on_the_draws_page_spends_once_however_often_the_form_is_sent(signed_in, program, member):
    draw = opened(program=program, entry_price_points=100)
    give_points(member, program, 1_000)
    page = signed_in.get(reverse("draw_detail", args=[draw.pk]))
    token = page.context["form"].initial["token"]
    assert "100 AquaPoints per entry; you have 1,000 AquaPoints." in visible(page)

    first = signed_in.post(reverse("draw_buy", args=[draw.pk]), {"count": "2", "token": token})
    signed_in.post(reverse("draw_buy", args=[draw.pk]), {"count": "2", "token": token})

    assert first.status_code == 302
    assert messages_of(first) == [f"You bought 2 entries to {draw.name}."]
    assert DrawEntry.objects.get(draw=draw, member=member).count == 2
    assert balance(member, program) == 800
    assert PointsEntry.objects.filter(source_type=EntrySource.DRAW).count() == 1
    assert "You hold 2 entries." in visible(signed_in.get(reverse("draw_detail", args=[draw.pk])))


def test_buying_after_the_close_shows_why_and_changes_nothing(signed_in, program, member):
    draw = opened(program=program, entry_price_points=100)
    give_points(member, program, 1_000)
    draw.closes_at = timezone.now() - timedelta(seconds=1)
    draw.opens_at = draw.closes_at - timedelta(days=1)
    draw.save(update_fields=["opens_at", "closes_at"])

    response = signed_in.post(reverse("draw_buy", args=[draw.pk]), {"count": "1", "token": "a-late-token"})

    assert messages_of(response)[0].startswith(f"Entries to {draw.name} closed at ")
    assert not DrawEntry.objects.exists()
    assert balance(member, program) == 1_000


def test_the_free_entry_is_offered_where_the_region_requires_it(signed_in, program, member):
    draw = opened(program=program)
    page = visible(signed_in.get(reverse("draw_detail", args=[draw.pk])))
    assert "Enter for free" in page

    signed_in.post(reverse("draw_free_entry", args=[draw.pk]))
    again = signed_in.post(reverse("draw_free_entry", args=[draw.pk]))

    assert messages_of(again)[-1:] == [f"You already hold your free entry to {draw.name}."]
    assert DrawEntry.objects.get(draw=draw, member=member).count == 1
    assert "You hold your free entry." in visible(signed_in.get(reverse("draw_detail", args=[draw.pk])))


def test_no_free_entry_is_offered_elsewhere(client, program):
    elsewhere = MemberFactory(partner__region=RegionFactory(free_draw_entry=False))
    client.force_login(elsewhere.user)
    draw = opened(program=program)

    page = visible(client.get(reverse("draw_detail", args=[draw.pk])))
    client.post(reverse("draw_free_entry", args=[draw.pk]))

    assert "Enter for free" not in page
    assert not DrawEntry.objects.exists()


def test_an_owner_sees_how_many_entries_the_team_holds_and_a_member_only_their_own(client, program):
    owner = OwnerFactory()
    colleague = MemberFactory(partner=owner.partner)
    draw = opened(program=program)
    DrawEntryFactory(draw=draw, member=owner, count=1)
    DrawEntryFactory(draw=draw, member=colleague, count=4)
    DrawEntryFactory(draw=draw, count=7)  # another partner's

    client.force_login(owner.user)
    owners_page = visible(client.get(reverse("draw_detail", args=[draw.pk])))
    client.force_login(colleague.user)
    colleagues_page = visible(client.get(reverse("draw_detail", args=[draw.pk])))

    assert "You hold 1 entry." in owners_page and "Your team holds 5 entries in all." in owners_page
    assert "You hold 4 entries." in colleagues_page and "Your team holds" not in colleagues_page


def test_the_results_show_on_the_draws_page_once_drawn(signed_in, program, member):
    draw = opened(program=program, prizes="A weekend in Vienna")
    DrawEntryFactory(draw=draw, member=member, count=2)
    drawn(draw)

    text = visible(signed_in.get(reverse("draw_detail", args=[draw.pk])))

    assert "Winners A weekend in Vienna You!" in text


def test_the_verification_page_re_derives_the_winners_from_the_revealed_seed_and_the_entry_list(signed_in, program):
    draw = opened(program=program, prizes="First\nSecond")
    people = [MemberFactory(user__full_name=f"Person {n}") for n in range(3)]
    for count, person in enumerate(people, 1):
        DrawEntryFactory(draw=draw, member=person, count=count)
    drawn(draw)
    draw.refresh_from_db()

    response = signed_in.get(reverse("draw_verify", args=[draw.pk]))

    text = visible(response)
    entry_list = "\n".join(f"{e.pk}:{e.member_id}:{e.count}" for e in DrawEntry.objects.order_by("pk"))
    assert draw.seed_hash in text and draw.entries_hash in text and draw.seed in text
    assert hashlib.sha256(entry_list.encode()).hexdigest() == draw.entries_hash
    assert entry_list in response.content.decode()
    assert "Verified: the seed and the entry list match the hashes" in text
    assert "The announced winners are the re-derived ones." in text
    assert len(response.context["check"].derived) == 2
    assert "Person" not in text  # ids and counts only
    plain = signed_in.get(reverse("draw_entry_list", args=[draw.pk]))
    assert plain.content.decode() == entry_list


def test_the_verification_page_keeps_the_seed_secret_until_the_draw(signed_in, program):
    draw = opened(program=program)

    text = visible(signed_in.get(reverse("draw_verify", args=[draw.pk])))

    assert draw.seed_hash in text
    assert draw.seed not in text
    assert "Revealed after the draw." in text and "Published when entries close." in text


def test_the_verification_page_takes_the_same_queries_for_few_or_many_entries(
    signed_in, program, django_assert_num_queries
):
    draw = opened(program=program)
    DrawEntryFactory(draw=draw)
    drawn(draw)
    signed_in.get(reverse("draw_verify", args=[draw.pk]))
    with django_assert_num_queries(8) as few:
        signed_in.get(reverse("draw_verify", args=[draw.pk]))
    many = opened(program=program)
    for _ in range(30):
        DrawEntryFactory(draw=many, count=3)
    drawn(many)
    with django_assert_num_queries(len(few.captured_queries)):
        signed_in.get(reverse("draw_verify", args=[many.pk]))


def test_the_draws_page_takes_a_fixed_number_of_queries(signed_in, program, member, django_assert_max_num_queries):
    draw = opened(program=program)
    give_points(member, program, 500)
    for _ in range(5):
        DrawEntryFactory(draw=draw, member=member)
    with django_assert_max_num_queries(9):
        signed_in.get(reverse("draw_detail", args=[draw.pk]))


@pytest.mark.parametrize("name", ["draw_detail", "draw_verify", "draw_entry_list"])
def test_draft_and_other_programs_draws_are_not_found(signed_in, program, name):
    draft = PrizeDrawFactory(program=program)
    elsewhere = opened(program=ProgramFactory(is_active=False))

    assert signed_in.get(reverse(name, args=[draft.pk])).status_code == 404
    assert signed_in.get(reverse(name, args=[elsewhere.pk])).status_code == 404


def test_people_outside_the_program_get_no_draw_pages(client, program):
    draw = opened(program=program)
    assert client.get(LIST).status_code == 302  # to sign in
    client.force_login(ProgramManagerFactory())
    assert client.get(LIST).status_code == 404
    assert client.get(reverse("draw_verify", args=[draw.pk])).status_code == 404
    assert client.post(reverse("draw_free_entry", args=[draw.pk])).status_code == 404
    assert not DrawEntry.objects.exists()
