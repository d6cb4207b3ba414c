"""A member's own progress (/my-progress/): what they earned and redeemed month by month (their own account only),
their company's tier progress, their place on the program period's leaderboards; for partner members only; a query
count that does not grow with their ledger."""

import json
import re
from datetime import timedelta
from decimal import Decimal

import pytest
from dateutil.relativedelta import relativedelta
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format

from loyalty.models import PartnerTier, PeriodStanding
from loyalty.selectors.leaderboards import current_period_start
from loyalty.services import ledger
from partners.constants import MemberStatus
from tests.analytics.helpers import clock, local
from tests.helpers import visible
from tests.loyalty.factories import ProgramFactory, TierFactory
from tests.partners.factories import AccountManagerFactory, MemberFactory, ProgramManagerFactory

pytestmark = pytest.mark.django_db

TODAY = timezone.localdate()
THIS_MONTH = TODAY.replace(day=1)


def chart_data(response, chart_id: str = "earned-months") -> dict:
    found = re.search(
        rf'<script id="{chart_id}-data" type="application/json">(.*?)</script>', response.content.decode()
    )
    return json.loads(found.group(1))


@pytest.fixture
def program():
    return ProgramFactory(currency_name="AquaPoints")


@pytest.fixture
def member(client):
    member = MemberFactory(partner__name="Aqua Dealer Ltd", user__full_name="Rita Rep")
    client.force_login(member.user)
    return member


def standing(program, *, points, member=None, partner=None):
    return PeriodStanding.objects.create(
        program=program,
        period_start=current_period_start(program=program),
        partner=partner or member.partner,
        member=member,
        points=points,
        normalised=Decimal(points),
    )


def test_a_member_sees_what_they_earned_and_redeemed_each_month_of_the_last_twelve(client, member, program):
    account = ledger.member_account(program=program, member=member)
    with clock(local(THIS_MONTH - relativedelta(months=14))):
        ledger.earn(account=account, points=999, key="too-old")
    with clock(local((THIS_MONTH - relativedelta(months=2)).replace(day=15))):
        ledger.earn(account=account, points=200, key="two-months-ago")
    ledger.earn(account=account, points=100, key="now")
    taken_back = ledger.earn(account=account, points=40, key="taken-back")
    ledger.reverse(entry=taken_back, key="taken-back-reversal")
    spent = ledger.spend(account=account, points=50, key="order")
    ledger.reverse(entry=spent, key="partly-refunded", points=20)
    someone_else = ledger.member_account(program=program, member=MemberFactory(partner=member.partner))
    ledger.earn(account=someone_else, points=5000, key="not-mine")

    response = client.get(reverse("my_progress"))

    assert response.status_code == 200
    data = chart_data(response)
    months = [THIS_MONTH - relativedelta(months=n) for n in range(11, -1, -1)]
    assert data["labels"] == [date_format(month, "M Y") for month in months]
    earned, redeemed = (dataset["data"] for dataset in data["datasets"])
    assert earned == ["0"] * 9 + ["200", "0", "100"]
    assert redeemed == ["0"] * 11 + ["30"]
    text = visible(response)
    assert "Earned in 12 months 300" in text
    assert "Available now 1,269" in text  # 999 + 200 + 100 + 40 − 40 − 50 + 20: the old points still count


def test_a_member_without_points_sees_empty_months_and_how_to_get_on_the_board(client, member, program):
    response = client.get(reverse("my_progress"))

    assert chart_data(response)["datasets"][0]["data"] == ["0"] * 12
    text = visible(response)
    assert "You are not on the leaderboard yet" in text
    assert "My rank —" in text


def test_a_member_sees_their_rank_and_their_companys_among_the_programs_people_and_companies(client, member, program):
    standing(program, member=member, points=1500)
    standing(program, member=MemberFactory(), points=2750)
    standing(program, member=MemberFactory(), points=500)
    standing(program, partner=member.partner, points=1500)
    standing(program, partner=MemberFactory().partner, points=3000)

    text = visible(client.get(reverse("my_progress")))

    assert "My rank 2 of 3" in text
    assert "My company's rank 2 of 2" in text
    assert "you have 1,500" in text


def test_a_member_sees_their_companys_tier_progress(client, member, program):
    silver = TierFactory(program=program, name="Silver", rank=0, threshold=Decimal("0"))
    TierFactory(program=program, name="Gold", rank=1, threshold=Decimal("10000"))
    PartnerTier.objects.create(
        program=program, partner=member.partner, tier=silver, since=TODAY, held_until=TODAY + timedelta(days=90)
    )

    text = visible(client.get(reverse("my_progress")))

    assert "Aqua Dealer Ltd’s tier" in text
    assert "Silver · €10,000.00 of sales to reach Gold" in text


@pytest.mark.parametrize("who", [AccountManagerFactory, ProgramManagerFactory])
def test_managers_have_no_progress_page(client, program, who):
    client.force_login(who())

    assert client.get(reverse("my_progress")).status_code == 404


def test_without_a_running_program_there_is_no_progress_page(client, member):
    assert client.get(reverse("my_progress")).status_code == 404


def test_anonymous_visitors_are_sent_to_sign_in(client):
    response = client.get(reverse("my_progress"))

    assert response.status_code == 302
    assert response.url.startswith(reverse("account_login"))


@pytest.mark.parametrize("entries", [5, 50])
def test_progress_query_count_does_not_grow_with_the_members_ledger(
    client, member, program, entries, django_assert_num_queries
):
    account = ledger.member_account(program=program, member=member)
    for n in range(entries):
        ledger.earn(account=account, points=10, key=f"e{n}")
    standing(program, member=member, points=10 * entries)

    # session, user, membership, program; the account and its months; the people's board (own row, its rank and the
    # total, the rows around it); the companies' board (own row: none, the total, the top rows); the navigation's
    # balance and the inbox bell's unread count; the tier progress (the program's tiers)
    with django_assert_num_queries(15):
        response = client.get(reverse("my_progress"))

    assert response.status_code == 200


def test_the_home_page_leads_an_active_member_to_their_progress(client, member, program):
    response = client.get(reverse("home"))

    panel = re.search(
        r'<section class="card mt-3"[^>]*data-testid="progress-panel">(.*?)</section>', response.content.decode(), re.S
    )
    assert panel is not None
    assert f'href="{reverse("my_progress")}"' in panel.group(1)


def test_a_member_waiting_for_approval_gets_no_progress_card(client, program):
    waiting = MemberFactory(status=MemberStatus.PENDING_APPROVAL, joined_at=None)
    client.force_login(waiting.user)

    assert 'data-testid="progress-panel"' not in client.get(reverse("home")).content.decode()
