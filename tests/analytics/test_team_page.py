"""The figures analytics adds to the tables of a partner's people (partners.hooks.provides_member_columns): on the
owner's team page and on the partner page, each person's points earned this year, balance (a link to their
statement), last activity and training; query counts that do not grow with the team; every statement reachable by a
link from the team page, the partner page and the overview."""

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format

from loyalty.constants import AttemptStatus
from loyalty.models import QuizAttempt
from loyalty.services import ledger
from partners.constants import PayoutPolicy
from tests.analytics.helpers import clock
from tests.analytics.test_health import passed_quiz
from tests.helpers import visible
from tests.loyalty.factories import ModuleFactory, ProgramFactory
from tests.partners.factories import AccountManagerFactory, MemberFactory, OwnerFactory

pytestmark = pytest.mark.django_db


def body_rows(response) -> list[str]:
    """The people table's rows, each as its visible text."""
    body = re.search(r"<tbody>(.*?)</tbody>", response.content.decode(), re.S)
    found = re.findall(r"<tr>(.*?)</tr>", body.group(1), re.S) if body else []
    return [re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", row)).strip() for row in found]


def headings(response) -> list[str]:
    head = re.search(r"<thead>(.*?)</thead>", response.content.decode(), re.S).group(1)
    return [re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r"<th[^>]*>(.*?)</th>", head, re.S)]


@pytest.fixture
def program():
    return ProgramFactory(currency_name="AquaPoints")


@pytest.fixture
def owner(client):
    owner = OwnerFactory(partner__name="Aqua Dealer Ltd", user__full_name="Olga Owner")
    client.force_login(owner.user)
    return owner


@pytest.fixture
def rita(owner, program):
    """Rita earned 1,000 more than a year ago and spent 300; this year she earned 150, and 30 for a claim taken back
    again; she passed two modules (one of them twice)."""
    rita = MemberFactory(partner=owner.partner, user__full_name="Rita Rep")
    account = ledger.member_account(program=program, member=rita)
    with clock(timezone.now() - timedelta(days=400)):
        ledger.earn(account=account, points=1000, key="old")
        ledger.spend(account=account, points=300, key="old-spend")
    ledger.earn(account=account, points=150, key="new")
    taken_back = ledger.earn(account=account, points=30, key="claim")
    ledger.reverse(entry=taken_back, key="claim-back")
    module, other = ModuleFactory(course__program=program), ModuleFactory(course__program=program)
    passed_quiz(rita, module, days_ago=40)
    passed_quiz(rita, other, days_ago=10)
    at = timezone.now() - timedelta(days=5)
    QuizAttempt.objects.create(
        member=rita, module=module, number=2, round=2, status=AttemptStatus.PASSED, percent=90, correct=9, total=10,
        started_at=at, deadline=at, submitted_at=at,
    )  # fmt: skip
    return rita


def test_the_team_page_shows_what_each_person_earned_this_year_their_balance_activity_and_training(
    client, owner, program, rita
):
    year = timezone.localdate().year

    response = client.get(reverse("team"))

    assert response.status_code == 200
    assert headings(response)[5:9] == [f"Earned in {year}", "Balance", "Last activity", "Modules passed"]
    row = next(row for row in body_rows(response) if "Rita Rep" in row)
    assert f"150 850 {date_format(timezone.localdate(), 'j M Y')} 2" in row
    olga = next(row for row in body_rows(response) if "Olga Owner" in row)
    assert olga.endswith("0 0 — 0")  # no account, nothing done yet
    account = ledger.member_account(program=program, member=rita)
    link = f'<a href="{reverse("points_statement")}?account={account.pk}">850</a>'
    assert link in response.content.decode()
    # The statement opens by following the link.
    statement = client.get(f"{reverse('points_statement')}?account={account.pk}")
    assert statement.status_code == 200
    assert "Rita Rep" in visible(statement)


def test_a_pooled_partners_team_page_says_why_people_earn_little(client, owner, program, rita):
    owner.partner.payout_policy = PayoutPolicy.POOLED
    owner.partner.save()

    assert "Staff bonuses are pooled" in visible(client.get(reverse("team")))


def test_without_a_running_program_the_team_page_shows_no_figures(client, owner, program, rita):
    program.is_active = False
    program.save()

    response = client.get(reverse("team"))

    assert response.status_code == 200
    assert "Balance" not in headings(response)


def test_the_team_page_links_the_company_dashboard_and_exports_the_team_with_its_filters(client, owner, rita):
    response = client.get(reverse("team"), {"q": "rita", "status": "active"})

    html = response.content.decode()
    assert f'href="{reverse("company_dashboard")}"' in html
    link = re.search(r'href="([^"]+)" data-testid="team-export"', html).group(1).replace("&amp;", "&")
    assert link == f"{reverse('export_start', args=['members'])}?format=csv&q=rita&status=active"


@pytest.mark.parametrize("team_size", [3, 30])
def test_team_page_query_count_does_not_grow_with_the_team(
    client, owner, program, team_size, django_assert_num_queries
):
    for n, member in enumerate(MemberFactory.create_batch(team_size, partner=owner.partner)):
        ledger.earn(account=ledger.member_account(program=program, member=member), points=5, key=f"t{n}")

    # session, user, the viewer's membership, roles, count, one page of rows and its users; the program and the
    # page's figures (analytics); the navigation's balance and the inbox bell's unread count
    with django_assert_num_queries(11):
        response = client.get(reverse("team"))

    assert len(body_rows(response)) == min(team_size + 1, 25)


def test_the_partner_page_shows_the_figures_and_links_the_overview_to_its_account_manager(client, owner, program, rita):
    manager = AccountManagerFactory()
    owner.partner.account_manager = manager
    owner.partner.save()
    client.force_login(manager)

    response = client.get(reverse("partner_detail", args=[owner.partner.pk]))

    html = response.content.decode()
    assert f'href="{reverse("partner_overview", args=[owner.partner.pk])}"' in html
    account = ledger.member_account(program=program, member=rita)
    assert f'href="{reverse("points_statement")}?account={account.pk}"' in html
    row = next(row for row in body_rows(response) if "Rita Rep" in row)
    assert "150 850" in row
    assert client.get(f"{reverse('points_statement')}?account={account.pk}").status_code == 200


def test_another_account_manager_opens_neither_the_partner_page_nor_its_statements(client, owner, program, rita):
    client.force_login(AccountManagerFactory())
    account = ledger.member_account(program=program, member=rita)

    assert client.get(reverse("partner_detail", args=[owner.partner.pk])).status_code == 404
    assert client.get(reverse("partner_overview", args=[owner.partner.pk])).status_code == 404
    assert client.get(f"{reverse('points_statement')}?account={account.pk}").status_code == 404
