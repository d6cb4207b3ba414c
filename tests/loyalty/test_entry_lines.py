"""The page behind a statement entry: the sale lines of a sell-out import that paid (or took back) its points."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from loyalty.models import PointsAccount, PointsEntry
from tests.loyalty.test_imports import DAY, World
from tests.partners.factories import AccountManagerFactory, MemberFactory, OwnerFactory

pytestmark = pytest.mark.usefixtures("private_media")


@pytest.fixture
def world(db):
    return World()


def entry_of(sales_import, holder: str) -> PointsEntry:
    return PointsEntry.objects.get(idempotency_key=f"sales-import:{sales_import.pk}:{holder}")


def url(entry) -> str:
    return reverse("points_entry", args=[entry.pk])


def shown(response) -> list[tuple[str, int, list[str]]]:
    """(external id, points for the account, explanations) of the lines on the page."""
    return [
        (row["line"].external_id, row["points"], [p.explanation for p in row["postings"]])
        for row in response.context["rows"]
    ]


def test_a_member_sees_the_lines_behind_their_entry_with_explanations_adding_up_to_it(client, world):
    world.rule.shares = [{"role": "sales", "percent": 60}]
    world.rule.save()
    colleague = MemberFactory(partner=world.partner)
    imp = world.run(
        [world.line("L1", invoice="INV-7"), world.line("L2", qty="5"), world.line("L3", rep=f"M{colleague.pk}")]
    )
    entry = entry_of(imp, f"m{world.member.pk}")
    client.force_login(world.member.user)

    response = client.get(url(entry))

    assert response.status_code == 200
    assert shown(response) == [
        ("L1", 60, ["Softeners v1: 10 units × 10 pts = 100; Sales rep share 60% = 60"]),
        ("L2", 30, ["Softeners v1: 5 units × 10 pts = 50; Sales rep share 60% = 30"]),
    ]
    assert sum(row["points"] for row in response.context["rows"]) == entry.points == 90
    body = response.content.decode()
    assert entry.explanation in body
    assert "INV-7" in body
    assert f"{DAY:%-d %b %Y}" in body
    assert "AQ-1" in body and world.product.name in body
    assert 'data-label="How it counts"' in body


def test_the_owner_sees_only_the_lines_that_paid_the_company_account(client, world):
    owner = OwnerFactory(partner=world.partner)
    imp = world.run([world.line("L1"), world.line("L2", rep=""), world.line("L3", qty="2", rep="")])
    entry = entry_of(imp, f"p{world.partner.pk}")
    client.force_login(owner.user)

    response = client.get(url(entry))

    assert response.status_code == 200
    assert [(ext, points) for ext, points, _ in shown(response)] == [("L2", 100), ("L3", 20)]  # not L1: the rep's
    assert entry.points == 120
    assert f"Company account of {world.partner.name}" in response.content.decode()


def test_company_shares_of_the_reps_lines_are_listed_for_the_company_account(client, world):
    world.rule.shares = [{"role": "sales", "percent": 60}]
    world.rule.save()
    owner = OwnerFactory(partner=world.partner)
    imp = world.run([world.line("L1"), world.line("L2", qty="5")])
    entry = entry_of(imp, f"p{world.partner.pk}")
    client.force_login(owner.user)

    response = client.get(url(entry))

    assert shown(response) == [
        ("L1", 40, ["Softeners v1: 10 units × 10 pts = 100; company share = 40"]),
        ("L2", 20, ["Softeners v1: 5 units × 10 pts = 50; company share = 20"]),
    ]
    assert entry.points == 60


def test_colleagues_other_partners_and_unassigned_account_managers_get_404(client, world):
    imp = world.run([world.line("L1"), world.line("L2", rep="")])
    member_entry = entry_of(imp, f"m{world.member.pk}")
    company_entry = entry_of(imp, f"p{world.partner.pk}")
    colleague = MemberFactory(partner=world.partner)
    elsewhere = MemberFactory()
    manager = AccountManagerFactory()

    for user in (colleague.user, elsewhere.user, manager):
        client.force_login(user)
        assert client.get(url(member_entry)).status_code == 404
        assert client.get(url(company_entry)).status_code == 404
    client.force_login(world.member.user)
    assert client.get(url(company_entry)).status_code == 404  # a member never sees the company account
    assert client.get(reverse("points_entry", args=[0])).status_code == 404


def test_the_assigned_account_manager_sees_the_entry(client, world):
    manager = AccountManagerFactory()
    world.partner.account_manager = manager
    world.partner.save()
    imp = world.run([world.line("L1")])
    client.force_login(manager)

    response = client.get(url(entry_of(imp, f"m{world.member.pk}")))

    assert response.status_code == 200
    assert [ext for ext, _, _ in shown(response)] == ["L1"]


def test_anonymous_visitors_are_sent_to_sign_in(client, world):
    imp = world.run([world.line("L1")])
    target = url(entry_of(imp, f"m{world.member.pk}"))
    response = client.get(target)
    assert (response.status_code, response.url) == (302, f"/accounts/login/?next={target}")


def test_a_reversal_entry_lists_the_return_lines_that_took_the_points_back(client, world):
    world.run([world.line("L1", qty="10")])  # 100 points
    returned = world.run([world.line("R1", qty="-3", amount="-30", returns="L1"), world.line("L2", qty="1")])
    reversal = PointsEntry.objects.get(kind="reverse", source_id=str(returned.pk))
    client.force_login(world.member.user)

    response = client.get(url(reversal))

    assert response.status_code == 200
    [row] = response.context["rows"]
    assert (row["line"].external_id, row["line"].quantity, row["points"]) == ("R1", -3, -30)
    assert reversal.points == -30
    assert "The returns behind it" in response.content.decode()
    # The same import's earn entry lists its sale, not the return.
    assert [ext for ext, _, _ in shown(client.get(url(entry_of(returned, f"m{world.member.pk}"))))] == ["L2"]


def test_an_entry_without_sale_lines_shows_the_empty_state(client, world):
    from loyalty.services import ledger

    account = ledger.member_account(program=world.program, member=world.member)
    entry = ledger.earn(account=account, points=50, key="bonus", explanation="Welcome bonus")
    client.force_login(world.member.user)

    response = client.get(url(entry))

    assert response.status_code == 200
    assert response.context["rows"] == []
    assert "No sale lines behind this entry" in response.content.decode()


def _page_queries(client, entry) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url(entry)).status_code == 200
    return len(queries)


def test_the_query_count_does_not_grow_with_the_lines(client, world, django_assert_max_num_queries):
    few = world.run([world.line(f"A{n}") for n in range(3)])
    many = world.run([world.line(f"B{n}") for n in range(30)])
    client.force_login(world.member.user)
    few_entry, many_entry = entry_of(few, f"m{world.member.pk}"), entry_of(many, f"m{world.member.pk}")

    # + 1 for the inbox bell's unread count in the navigation (cached after the first page)
    with django_assert_max_num_queries(9):
        client.get(url(many_entry))
    assert _page_queries(client, few_entry) == _page_queries(client, many_entry)


def test_page_two_lists_the_rest_and_htmx_gets_only_the_table(client, world):
    imp = world.run([world.line(f"L{n:02}") for n in range(30)])
    entry = entry_of(imp, f"m{world.member.pk}")
    client.force_login(world.member.user)

    response = client.get(url(entry), {"page": 2})
    assert [ext for ext, _, _ in shown(response)] == [f"L{n:02}" for n in range(25, 30)]
    assert "Showing 26–30 of 30" in response.content.decode()

    partial = client.get(url(entry), {"page": 2}, headers={"HX-Request": "true"})
    body = partial.content.decode()
    assert body.lstrip().startswith('<div id="lines">')
    assert len(partial.context["rows"]) == 5


def test_the_statement_links_sell_out_entries_to_their_lines(client, world):
    from loyalty.services import ledger

    imp = world.run([world.line("L1")])
    entry = entry_of(imp, f"m{world.member.pk}")
    account = PointsAccount.objects.get(program=world.program, member=world.member)
    ledger.earn(account=account, points=5, key="bonus", explanation="Welcome bonus")
    client.force_login(world.member.user)

    body = client.get(reverse("points_statement")).content.decode()

    assert f'<a href="{url(entry)}">{entry.explanation}</a>' in body
    assert body.count('href="/points/entries/') == 1  # the bonus is not a sell-out entry
