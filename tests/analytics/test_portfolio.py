"""The account manager's portfolio (/portfolio/) and a partner's overview (/partners/<id>/overview/, the owner's
company dashboard): who may open them, what each row says, sorting, filtering and bad parameters, links to every
statement, claim and order, and query counts that do not grow with the data."""

import re
from datetime import timedelta

import pytest
from django.urls import reverse

from analytics.health import health_refresh
from analytics.rollups import rollup_days
from loyalty.models import PartnerTier
from loyalty.services import ledger
from partners.constants import MemberStatus, PartnerStatus
from rewards.constants import PaidBy
from rewards.services import order_place
from tests.analytics.helpers import submit
from tests.analytics.test_health import TODAY, earned_now, points, sales, team
from tests.helpers import visible
from tests.loyalty.factories import ProductFactory, ProgramFactory, TierFactory
from tests.partners.factories import (
    AccountManagerFactory,
    MemberFactory,
    OwnerFactory,
    PartnerFactory,
    ProgramManagerFactory,
    RegionFactory,
    UserFactory,
)
from tests.rewards.factories import RewardFactory

pytestmark = pytest.mark.django_db


def rows(response) -> list[str]:
    """The portfolio's rows, each as its visible text."""
    html = response.content.decode()
    found = re.findall(r'<tr data-testid="portfolio-row">(.*?)</tr>', html, re.S)
    return [re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", row)).strip() for row in found]


def names(response) -> list[str]:
    return [re.search(r'overview/">([^<]+)</a>', row).group(1) for row in _row_html(response)]


def _row_html(response) -> list[str]:
    return re.findall(r'<tr data-testid="portfolio-row">(.*?)</tr>', response.content.decode(), re.S)


@pytest.fixture
def program():
    return ProgramFactory(currency_name="AquaPoints", money_currency="EUR")


@pytest.fixture
def ann(client):
    manager = AccountManagerFactory(full_name="Ann Manager")
    client.force_login(manager)
    return manager


@pytest.fixture
def book(program, ann):
    """Ann's partners: Falling (sales −35 %, 1 of 4 active, Gold, 500 company points, North) and Steady (sales +10 %,
    2 of 2 active, no tier, 50 points a person, South); Elsewhere belongs to another account manager."""
    north, south = RegionFactory(code="north", name="North"), RegionFactory(code="south", name="South")
    gold = TierFactory(program=program, name="Gold", rank=1)
    falling = PartnerFactory(name="Falling Ltd", account_manager=ann, region=north)
    steady = PartnerFactory(name="Steady Ltd", account_manager=ann, region=south)
    elsewhere = PartnerFactory(name="Elsewhere Ltd", account_manager=AccountManagerFactory())
    PartnerTier.objects.create(program=program, partner=falling, tier=gold, since=TODAY, held_until=TODAY)
    falling_team = team(falling, 4)
    earned_now(program, falling_team[0], key="falling")
    ledger.earn(account=ledger.partner_account(program=program, partner=falling), points=500, key="falling-company")
    for n, member in enumerate(team(steady, 2)):
        earned_now(program, member, key=f"steady-{n}")
        ledger.earn(account=ledger.member_account(program=program, member=member), points=40, key=f"steady+{n}")
    team(elsewhere, 1)
    sales(program, falling, this_year="6500", last_year="10000")
    sales(program, steady, this_year="11000", last_year="10000")
    sales(program, elsewhere, this_year="1", last_year="1")
    return falling, steady, elsewhere


# Who sees it ---------------------------------------------------------------------------------------------------------


def test_an_account_manager_sees_their_partners_tier_sales_trend_points_activity_and_health(client, program, book):
    falling, steady, _ = book

    response = client.get(reverse("portfolio"))

    assert response.status_code == 200
    assert names(response) == ["Falling Ltd", "Steady Ltd"]  # at risk first; Elsewhere is not Ann's
    first, second = rows(response)
    assert "Gold" in first and "North" in first
    assert "€6,500.00" in first and "\u221235 % vs last year" in first
    assert "510 company 500 · people 10" in first  # 500 on the company account, 10 earned by one person
    assert "1 of 4" in first
    assert "39 / 100 At risk" in first  # sales 12 of 40, activity 15 of 30: 27 of 70
    assert "sales \u221235 % vs last year; 1 of 4 members active in the last 90 days" in first
    assert "+10 % vs last year" in second and "2 of 2" in second and "At risk" not in second
    html = response.content.decode()
    assert f'href="{reverse("partner_overview", args=[falling.pk])}"' in html
    company = ledger.partner_account(program=program, partner=falling)
    assert f'href="{reverse("points_statement")}?account={company.pk}"' in html
    assert "1 at risk" in visible(response)


def test_a_program_manager_sees_every_partner(client, book):
    client.force_login(ProgramManagerFactory())

    response = client.get(reverse("portfolio"), {"sort": "name"})

    assert names(response) == ["Elsewhere Ltd", "Falling Ltd", "Steady Ltd"]
    assert "Portfolio" in visible(response)


@pytest.mark.parametrize("who", ["owner", "member", "no_membership"])
def test_owners_members_and_people_without_a_partner_get_404(client, book, who):
    falling = book[0]
    user = {
        "owner": lambda: OwnerFactory(partner=falling).user,
        "member": lambda: falling.members.first().user,
        "no_membership": UserFactory,
    }[who]()
    client.force_login(user)

    assert client.get(reverse("portfolio")).status_code == 404


def test_anonymous_visitors_are_sent_to_sign_in(client):
    response = client.get(reverse("portfolio"))

    assert response.status_code == 302
    assert response.url.startswith(reverse("account_login"))


def test_an_account_manager_without_partners_is_told_why_the_list_is_empty(client, ann, program):
    response = client.get(reverse("portfolio"))

    assert "No partners are assigned to you yet." in visible(response)


def test_without_a_running_program_the_portfolio_says_so(client, ann):
    response = client.get(reverse("portfolio"))

    assert response.status_code == 200
    assert "No program is running yet." in visible(response)


# Sorting, filtering, bad parameters ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ("health", ["Falling Ltd", "Steady Ltd"]),
        ("trend", ["Falling Ltd", "Steady Ltd"]),
        ("name", ["Falling Ltd", "Steady Ltd"]),
        ("points", ["Falling Ltd", "Steady Ltd"]),
        ("nonsense", ["Falling Ltd", "Steady Ltd"]),
    ],
)
def test_the_portfolio_sorts_by_health_trend_name_or_points(client, book, program, sort, expected):
    assert names(client.get(reverse("portfolio"), {"sort": sort})) == expected


def test_sorting_by_points_and_trend_puts_the_partner_with_more_or_falling_first(client, book, program, ann):
    rising = PartnerFactory(name="A Rising Ltd", account_manager=ann)
    sales(program, rising, this_year="300", last_year="100")
    ledger.earn(account=ledger.partner_account(program=program, partner=rising), points=9000, key="rising")

    assert names(client.get(reverse("portfolio"), {"sort": "points"}))[0] == "A Rising Ltd"
    assert names(client.get(reverse("portfolio"), {"sort": "trend"})) == ["Falling Ltd", "Steady Ltd", "A Rising Ltd"]
    assert names(client.get(reverse("portfolio"), {"sort": "name"}))[0] == "A Rising Ltd"


def test_the_portfolio_filters_by_tier_region_risk_and_name(client, book, program):
    gold = program.tiers.get(name="Gold")
    url = reverse("portfolio")

    assert names(client.get(url, {"tier": gold.pk})) == ["Falling Ltd"]
    assert names(client.get(url, {"tier": "none"})) == ["Steady Ltd"]
    assert names(client.get(url, {"region": "south"})) == ["Steady Ltd"]
    assert names(client.get(url, {"at_risk": "on"})) == ["Falling Ltd"]
    assert names(client.get(url, {"q": "stead"})) == ["Steady Ltd"]
    assert "No partners match your search." in visible(client.get(url, {"q": "Elsewhere"}))


def test_unknown_filter_values_and_partners_outside_the_portfolio_are_ignored(client, book, program):
    falling, steady, elsewhere = book
    other_tier = TierFactory(name="Platinum elsewhere")  # another program's tier: not a choice here

    for query in (
        {"tier": other_tier.pk},
        {"tier": "gold'--"},
        {"region": "atlantis"},
        {"page": "999"},
        {"page": "x"},
        {"partner": elsewhere.pk},
        {"sort": "-health"},
    ):
        response = client.get(reverse("portfolio"), query)
        assert response.status_code == 200, query
        assert names(response) == ["Falling Ltd", "Steady Ltd"], query
        assert "Elsewhere" not in response.content.decode()


def test_a_prospect_is_listed_but_never_marked_at_risk(client, ann, program):
    PartnerFactory(name="Prospect Ltd", account_manager=ann, status=PartnerStatus.PROSPECT)

    response = client.get(reverse("portfolio"))

    assert names(response) == ["Prospect Ltd"]
    assert "At risk" not in rows(response)[0]
    assert names(client.get(reverse("portfolio"), {"at_risk": "on"})) == []


def test_the_portfolio_is_paginated_by_25(client, ann, program):
    PartnerFactory.create_batch(26, account_manager=ann)

    first = client.get(reverse("portfolio"))
    second = client.get(reverse("portfolio"), {"page": 2})

    assert len(rows(first)) == 25
    assert len(rows(second)) == 1
    assert "Page 2 of 2" in visible(second)


def test_an_htmx_request_renders_only_the_table(client, book):
    response = client.get(reverse("portfolio"), {"q": "fall"}, headers={"HX-Request": "true"})

    html = response.content.decode()
    assert html.lstrip().startswith('<div id="portfolio-table">')
    assert "<nav" not in html.split('<div id="portfolio-table">')[0]
    assert names(response) == ["Falling Ltd"]


def test_the_export_button_carries_the_pages_filters(client, book):
    response = client.get(reverse("portfolio"), {"q": "fall", "region": "north", "page": "1"})

    link = re.search(r'href="([^"]+)" data-testid="portfolio-export"', response.content.decode()).group(1)
    assert link.replace("&amp;", "&") == f"{reverse('export_start', args=['partners'])}?format=csv&q=fall&region=north"


@pytest.mark.parametrize("count", [3, 12])
def test_portfolio_query_count_does_not_grow_with_the_partners(client, ann, program, count, django_assert_num_queries):
    TierFactory(program=program)
    for n, partner in enumerate(PartnerFactory.create_batch(count, account_manager=ann)):
        people = team(partner, 2)
        earned_now(program, people[0], key=f"q{n}")
        sales(program, partner, this_year="10", last_year="20")
        points(program, partner, issued=10, redeemed=1)

    health_refresh(program=program, today=TODAY)  # as the periodic task does

    # session, user, the viewer's membership (none); the program; tiers and regions (the filter form); the partners;
    # their stored health; the balances
    with django_assert_num_queries(9):
        response = client.get(reverse("portfolio"))

    assert len(rows(response)) == count


# A partner's overview ------------------------------------------------------------------------------------------------


@pytest.fixture
def busy(program, book):
    """Falling Ltd with a claim, an order and a rejected order, and a member who left."""
    falling = book[0]
    rep = falling.members.order_by("pk").first()
    claim = submit(rep, program, [(ProductFactory(), 1, 100)], number="INV-77", invoice_date=TODAY)
    ledger.earn(account=ledger.member_account(program=program, member=rep), points=100, key="for-order")
    reward = RewardFactory(program=program, points_price=30)
    order = order_place(
        member=rep, program=program, items=[(reward, 1)], paid_by=PaidBy.MEMBER, checkout_key="overview-order"
    )
    MemberFactory(partner=falling, status=MemberStatus.LEFT, user__full_name="Gone Person")
    rollup_days(first=TODAY, last=TODAY, tables=("claims", "points"))
    return falling, rep, claim, order


def test_the_partner_overview_links_its_statement_claims_orders_and_each_persons_statement(client, program, busy):
    falling, rep, claim, order = busy

    response = client.get(reverse("partner_overview", args=[falling.pk]))

    assert response.status_code == 200
    html = response.content.decode()
    text = visible(response)
    company = ledger.partner_account(program=program, partner=falling)
    rep_account = ledger.member_account(program=program, member=rep)
    statement = reverse("points_statement")
    assert f'href="{statement}?account={company.pk}"' in html
    assert f'href="{statement}?account={rep_account.pk}"' in html
    assert f'href="{reverse("claim_detail", args=[claim.pk])}"' in html
    assert f'href="{reverse("order_detail", args=[order.pk])}"' in html
    assert f'href="{reverse("partner_detail", args=[falling.pk])}"' in html
    assert "INV-77" in text and "Gold" in text and "At risk" in text
    assert "€6,500.00" in text and "\u221235 % vs last year" in text
    assert "This year: 1 sent, 1 approved, 0 rejected." in text  # approved at once: a small amount
    assert "This year: 610 earned, 30 redeemed, 0 expired." in text
    assert "Gone Person" not in text  # people who left are not listed
    # The company statement is reachable by following its link.
    assert client.get(f"{statement}?account={company.pk}").status_code == 200
    assert client.get(f"{statement}?account={rep_account.pk}").status_code == 200


def test_the_overview_of_a_partner_outside_the_portfolio_is_404(client, book):
    elsewhere = book[2]

    assert client.get(reverse("partner_overview", args=[elsewhere.pk])).status_code == 404
    assert client.get(reverse("partner_overview", args=[999999])).status_code == 404


def test_an_owner_sees_their_own_partners_overview_and_company_dashboard_but_not_anothers(client, book):
    falling, steady, _ = book
    owner = OwnerFactory(partner=falling)
    client.force_login(owner.user)

    assert client.get(reverse("partner_overview", args=[falling.pk])).status_code == 200
    assert client.get(reverse("partner_overview", args=[steady.pk])).status_code == 404
    response = client.get(reverse("company_dashboard"))
    assert response.status_code == 200
    assert "Falling Ltd at a glance" in visible(response)
    assert f'href="{reverse("company")}"' in response.content.decode()


@pytest.mark.parametrize("who", ["member", "account_manager"])
def test_the_company_dashboard_is_for_owners_only(client, book, who):
    user = book[0].members.first().user if who == "member" else AccountManagerFactory()
    client.force_login(user)

    assert client.get(reverse("company_dashboard")).status_code == 404
    if who == "member":
        assert client.get(reverse("partner_overview", args=[book[0].pk])).status_code == 404


def test_a_program_manager_opens_any_partners_overview(client, book):
    client.force_login(ProgramManagerFactory())

    assert client.get(reverse("partner_overview", args=[book[2].pk])).status_code == 200


def test_the_overview_pages_its_people_with_htmx_without_computing_the_rest(
    client, book, django_assert_max_num_queries
):
    falling = book[0]
    team(falling, 30)

    # session, user, membership (none), the partner, program; the people's count, page and users; their figures
    with django_assert_max_num_queries(9):
        response = client.get(
            reverse("partner_overview", args=[falling.pk]), {"page": 2}, headers={"HX-Request": "true"}
        )

    html = response.content.decode()
    assert html.lstrip().startswith('<div id="overview-members">')
    assert "Page 2 of 2" in visible(response)


@pytest.mark.parametrize("size", [3, 12])
def test_overview_query_count_does_not_grow_with_the_partner(client, program, ann, size, django_assert_num_queries):
    partner = PartnerFactory(account_manager=ann)
    people = team(partner, size)
    ledger.earn(account=ledger.partner_account(program=program, partner=partner), points=50, key="company")
    for n, member in enumerate(people):
        earned_now(program, member, key=f"o{n}")
        submit(member, program, [(ProductFactory(), 1, 10)], number=f"INV-{n}", invoice_date=TODAY)
        sales(program, partner, this_year="0", last_year="0")
    points(program, partner, issued=10, redeemed=1, day=TODAY - timedelta(days=40))

    health_refresh(program=program, today=TODAY)  # as the periodic task does

    # session, user, membership, program; people: count, page, users, figures; the balances, the company statement,
    # claims, orders, tier, the stored health, sales, points and claims by month
    with django_assert_num_queries(18):
        response = client.get(reverse("partner_overview", args=[partner.pk]))

    assert response.status_code == 200


# Navigation ----------------------------------------------------------------------------------------------------------


def test_the_navigation_offers_each_viewer_their_dashboard(client, book):
    falling = book[0]
    home = reverse("home")

    html = client.get(home).content.decode()
    assert f'href="{reverse("portfolio")}"' in html and "My portfolio" in html

    client.force_login(OwnerFactory(partner=falling).user)
    html = client.get(home).content.decode()
    assert f'href="{reverse("company_dashboard")}"' in html and f'href="{reverse("my_progress")}"' in html
    assert f'href="{reverse("portfolio")}"' not in html

    client.force_login(falling.members.filter(role__is_owner=False).first().user)
    html = client.get(home).content.decode()
    assert f'href="{reverse("my_progress")}"' in html
    assert f'href="{reverse("company_dashboard")}"' not in html


def test_the_portfolio_marks_its_link_current_and_a_partners_overview_as_part_of_it(client, book):
    response = client.get(reverse("partner_overview", args=[book[0].pk]))

    link = re.search(r'<a class="nav-link[^"]*"[^>]*href="/portfolio/"[^>]*>', response.content.decode()).group(0)
    assert "active" in link
