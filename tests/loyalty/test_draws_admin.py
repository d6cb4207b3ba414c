"""The prize draws' back office: opening, closing and drawing from the list's actions (refusals reported, nothing
changed), the seed kept secret until the draw, what members were promised read-only once open, and the lists' query
counts that do not grow with rows."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from loyalty.constants import DrawStatus
from loyalty.models import DrawWinner, PrizeDraw
from tests.helpers import messages_of
from tests.loyalty.factories_draws import DrawEntryFactory, PrizeDrawFactory, opened

pytestmark = pytest.mark.django_db


def url(view: str = "changelist", *args, model: str = "prizedraw") -> str:
    return reverse(f"admin:loyalty_{model}_{view}", args=args)


def act(client, action: str, *draws):
    return client.post(url(), {"action": action, "_selected_action": [d.pk for d in draws]})


def test_opening_from_the_list_publishes_the_seed_hash_and_keeps_the_seed_secret(pm_client):
    draw = PrizeDrawFactory(name="Spring draw")

    response = act(pm_client, "open_draws", draw)

    draw.refresh_from_db()
    assert messages_of(response) == ["Opened 1 draw: Spring draw."]
    assert draw.status == DrawStatus.OPEN and len(draw.seed_hash) == 64
    page = pm_client.get(url("change", draw.pk)).content.decode()
    assert draw.seed_hash in page
    assert draw.seed not in page
    assert "Secret until the draw." in page


def test_closing_before_the_closing_moment_is_refused_with_a_message_and_changes_nothing(pm_client):
    draw = opened(name="Spring draw")

    response = act(pm_client, "close_draws", draw)

    draw.refresh_from_db()
    assert messages_of(response)[0].startswith("Spring draw: Entries to Spring draw are open until ")
    assert (draw.status, draw.entries_hash) == (DrawStatus.OPEN, "")


def test_closing_and_drawing_from_the_list_picks_the_winners_and_reveals_the_seed(pm_client):
    draw = opened(name="Spring draw", prizes="Vienna")
    DrawEntryFactory(draw=draw, count=2)
    closing = timezone.now() - timedelta(seconds=1)
    PrizeDraw.objects.filter(pk=draw.pk).update(opens_at=closing - timedelta(days=1), closes_at=closing)

    closed = act(pm_client, "close_draws", draw)
    ran = act(pm_client, "run_draws", draw)

    draw.refresh_from_db()
    assert messages_of(closed) == ["Closed 1 draw: Spring draw."]
    assert messages_of(ran)[-1] == "Drew 1 draw: Spring draw."
    assert draw.status == DrawStatus.DRAWN
    assert DrawWinner.objects.filter(draw=draw).count() == 1
    page = pm_client.get(url("change", draw.pk)).content.decode()
    assert draw.seed in page and "1. Vienna: " in page


def test_an_open_draws_promises_are_read_only(pm_client):
    draw = opened()

    page = pm_client.get(url("change", draw.pk))

    form = page.context["adminform"].form
    assert "prizes" not in form.fields and "entry_price_points" not in form.fields
    assert "name" in form.fields


def test_the_lists_take_the_same_queries_for_few_or_many_rows(pm_client, django_assert_num_queries):
    draw = opened()
    DrawEntryFactory(draw=draw)
    pm_client.get(url())
    with django_assert_num_queries(7) as few:
        pm_client.get(url())
    with django_assert_num_queries(8) as few_entries:
        pm_client.get(url(model="drawentry"))
    for _ in range(5):
        other = opened()
        for _ in range(3):
            DrawEntryFactory(draw=other, count=2)
    with django_assert_num_queries(len(few.captured_queries)):
        pm_client.get(url())
    with django_assert_num_queries(len(few_entries.captured_queries)):
        pm_client.get(url(model="drawentry"))
