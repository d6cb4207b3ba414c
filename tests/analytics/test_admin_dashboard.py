"""The back office's index as the program managers' dashboard: who sees it, the work waiting and its links to the
filtered admin lists, the chosen program and period (bad input reported, never a server error), the charts with
their tables under the Content-Security-Policy, and a query count that does not grow with the data."""

import itertools
import re
from datetime import timedelta
from decimal import Decimal

import pytest
from dateutil.relativedelta import relativedelta
from django.contrib.staticfiles import finders
from django.db import connection
from django.template.loader import render_to_string
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from analytics import admin_dashboard, kpis
from analytics.charts import Chart, Series
from analytics.figures_cache import roll_ups_changed
from analytics.health import health_refresh
from analytics.models import ClaimsDay, MembersDay, MessagesDay, PointsDay, SalesDay
from communications.constants import CampaignStatus
from communications.models import Campaign, CampaignRecipient
from loyalty.constants import (
    AdjustmentStatus,
    ClaimFlag,
    ClaimStatus,
    ImportStatus,
    MdfStatus,
    ReferralStatus,
    ReturnStatus,
)
from loyalty.models import ClaimLine, PartnerTier, PointsAdjustment, SalesClaim, SalesImport, SalesSource, TierChange
from loyalty.services import ledger
from rewards import services as rewards_services
from rewards.constants import OrderStatus, PaidBy
from tests.analytics.helpers import local
from tests.loyalty.factories import MemberAccountFactory, ProductFactory, ProgramFactory, TierFactory
from tests.loyalty.factories_comarketing import MarketingRequestFactory
from tests.loyalty.factories_referrals import ReferralFactory
from tests.loyalty.factories_returns import EquipmentReturnFactory
from tests.partners.factories import (
    AccountManagerFactory,
    MemberFactory,
    OwnerFactory,
    PartnerFactory,
    UserFactory,
)
from tests.rewards.factories import MerchandiseFactory

pytestmark = pytest.mark.django_db

TODAY = timezone.localdate()
DEFAULT_START = kpis.month_start(TODAY) - relativedelta(months=11)
ADDRESS = {
    "name": "Ana Dealer",
    "street": "Main St 1",
    "postcode": "10115",
    "city": "Berlin",
    "country": "Germany",
    "phone": "+49 30 123456",
}
_numbers = itertools.count(1)


# Who sees it ------------------------------------------------------------------------------------------------


def test_a_program_manager_sees_the_dashboard_above_the_app_list(pm_client):
    ProgramFactory(name="Aqua Partners")

    response = pm_client.get("/admin/")

    assert response.status_code == 200
    dashboard = response.context["dashboard"]
    assert dashboard.program.name == "Aqua Partners"
    assert (dashboard.start, dashboard.end) == (DEFAULT_START, TODAY)
    text = response.text
    for section in ("work-waiting", "liability", "points", "sales", "roi", "funnel", "active", "tiers", "claims"):
        assert f'id="{section}"' in text
    # The partners overview and the app list stay, below the dashboard.
    assert text.index('id="pm-dashboard"') < text.index('id="program-overview-heading"') < text.index("app-loyalty")
    assert '<script src="/static/vendor/chartjs/chart.umd.min.js" defer></script>' in text
    assert '<script src="/static/js/charts.js" defer></script>' in text


def test_a_program_manager_without_the_superuser_flag_sees_it_too(client):
    ProgramFactory()
    client.force_login(UserFactory(staff_role="program_manager", is_staff=True))
    response = client.get("/admin/")
    assert response.status_code == 200
    assert "dashboard" in response.context
    assert 'id="pm-dashboard"' in response.text


def test_an_account_manager_marked_as_staff_sees_the_plain_index_without_figures(am_staff_client):
    ProgramFactory()
    PartnerFactory(name="Secret Water Ltd")
    response = am_staff_client.get("/admin/")
    assert response.status_code == 200
    assert "dashboard" not in response.context
    assert "pm-dashboard" not in response.text
    assert "chart.umd.min.js" not in response.text
    assert "Secret Water" not in response.text


@pytest.mark.parametrize("who", ["anonymous", "owner", "account_manager"])
def test_who_may_not_sign_in_to_the_back_office_is_sent_to_sign_in(client, who):
    if who == "owner":
        client.force_login(OwnerFactory().user)
    elif who == "account_manager":
        client.force_login(AccountManagerFactory())
    response = client.get("/admin/")
    assert response.status_code == 302
    assert response["Location"] == "/admin/login/?next=/admin/"


def test_without_a_program_the_dashboard_shows_the_work_waiting_only(pm_client):
    response = pm_client.get("/admin/")
    assert response.context["dashboard"].program is None
    assert 'id="work-waiting"' in response.text
    assert 'id="no-program"' in response.text
    assert 'id="liability"' not in response.text


# The work waiting -------------------------------------------------------------------------------------------


def claim(program, *, status=ClaimStatus.SUBMITTED, flags=()):
    member = MemberFactory()
    made = SalesClaim.objects.create(
        program=program,
        member=member,
        partner=member.partner,
        invoice_number=f"INV-{next(_numbers)}",
        invoice_date=TODAY,
        document="claims/2026/05/invoice.pdf",
        status=status,
        flags=list(flags),
        total_amount=Decimal("100"),
    )
    ClaimLine.objects.create(claim=made, product=ProductFactory(), quantity=1, amount=Decimal("100"), paid_quantity=0)
    return made


def order(program, reward):
    member = MemberFactory()
    account = ledger.member_account(program=program, member=member)
    ledger.earn(account=account, points=reward.points_price, key=f"seed-{member.pk}")
    return rewards_services.order_place(
        member=member,
        program=program,
        items=[(reward, 1)],
        paid_by=PaidBy.MEMBER,
        checkout_key=f"checkout-{member.pk}",
        address=ADDRESS,
    )


def sales_import(program, requester, *, status, error_rows=0):
    source = SalesSource.objects.filter(program=program).first() or SalesSource.objects.create(
        program=program, name="ERP", code="erp"
    )
    return SalesImport.objects.create(
        source=source,
        file="imports/2026/12/feed.csv",
        original_name=f"feed-{next(_numbers)}.csv",
        uploaded_by=requester,
        status=status,
        error_rows=error_rows,
    )


def adjustment(program, requester, *, status):
    return PointsAdjustment.objects.create(
        account=MemberAccountFactory(program=program), points=9000, reason="Trade fair", status=status,
        requested_by=requester,
    )  # fmt: skip


@pytest.fixture
def waiting_work(program_manager):
    """What is waiting — and, next to it, what is not — in two programs."""
    program, other = ProgramFactory(), ProgramFactory()
    expected = {
        "claims": [claim(program), claim(other, flags=[ClaimFlag.UNUSUAL_QUANTITY])],
        "orders_to_approve": [order(program, MerchandiseFactory(program=program, points_price=25000))],
        "orders_to_fulfil": [order(program, MerchandiseFactory(program=program, points_price=500))],
        "adjustments": [adjustment(other, program_manager, status=AdjustmentStatus.PENDING_APPROVAL)],
        "imports_failed": [sales_import(program, program_manager, status=ImportStatus.FAILED)],
        "imports_partly_failed": [sales_import(program, program_manager, status=ImportStatus.DONE, error_rows=3)],
        "comarketing_requested": [MarketingRequestFactory(fund__program=program)],
        "comarketing_claimed": [MarketingRequestFactory(fund__program=other, status=MdfStatus.CLAIMED)],
        "referrals": [ReferralFactory(program=program)],
        "returns": [EquipmentReturnFactory(program=program)],
    }
    expected["claims_flagged"] = [expected["claims"][1]]
    # Not waiting:
    claim(program, status=ClaimStatus.APPROVED, flags=[ClaimFlag.UNUSUAL_QUANTITY])
    claim(program, status=ClaimStatus.REJECTED)
    assert expected["orders_to_approve"][0].status == OrderStatus.PLACED
    assert expected["orders_to_fulfil"][0].status == OrderStatus.APPROVED
    adjustment(program, program_manager, status=AdjustmentStatus.REJECTED)
    sales_import(program, program_manager, status=ImportStatus.DONE)
    sales_import(program, program_manager, status=ImportStatus.RUNNING)
    MarketingRequestFactory(fund__program=program, status=MdfStatus.REIMBURSED)
    ReferralFactory(program=program, status=ReferralStatus.QUALIFIED)
    EquipmentReturnFactory(program=program, status=ReturnStatus.CONFIRMED)
    return expected


def test_the_work_waiting_counts_each_queue_in_one_query(waiting_work, django_assert_num_queries):
    with django_assert_num_queries(1):
        waiting = admin_dashboard.work_waiting()
    assert {item.key: item.count for item in waiting} == {key: len(rows) for key, rows in waiting_work.items()}
    assert [item.key for item in waiting if not item.urgent] == ["imports_partly_failed"]


def test_each_link_of_the_work_waiting_lists_exactly_its_rows(pm_client, waiting_work):
    response = pm_client.get("/admin/")
    waiting = response.context["dashboard"].waiting
    assert len(waiting) == len(waiting_work)
    for item in waiting:
        assert f'<a href="{item.url.replace("&", "&amp;")}"><strong>{item.count}</strong>' in response.text
        listed = pm_client.get(item.url)
        assert listed.status_code == 200, item.key
        shown = {row.pk for row in listed.context["cl"].result_list}
        assert shown == {row.pk for row in waiting_work[item.key]}, item.key


# The program and the period ---------------------------------------------------------------------------------


def test_the_program_chooser_shows_the_chosen_program(pm_client):
    first, second = ProgramFactory(name="A first"), ProgramFactory(name="B second")
    assert pm_client.get("/admin/").context["dashboard"].program == first
    response = pm_client.get("/admin/", {"program": second.pk})
    assert response.context["dashboard"].program == second
    assert "B second, " in response.text


def test_a_chosen_period_is_shown(pm_client):
    ProgramFactory()
    start = TODAY - timedelta(days=40)
    response = pm_client.get("/admin/", {"start": start.isoformat(), "end": TODAY.isoformat()})
    dashboard = response.context["dashboard"]
    assert (dashboard.start, dashboard.end) == (start, TODAY)
    assert len(dashboard.figures["points_months"]) == len(kpis.months_between(start, TODAY))


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"start": TODAY.isoformat(), "end": (TODAY - timedelta(days=1)).isoformat()}, "The range is reversed"),
        ({"end": (TODAY + timedelta(days=1)).isoformat()}, "The range ends in the future"),
        ({"start": (TODAY - relativedelta(years=11)).isoformat()}, "longer than 10 years"),
        ({"start": "last tuesday"}, "Enter a valid date"),
        ({"program": "999999"}, "Select a valid choice"),
    ],
)
def test_bad_input_is_reported_and_the_default_shown(pm_client, query, message):
    program = ProgramFactory()
    response = pm_client.get("/admin/", query)
    assert response.status_code == 200
    assert message in response.text
    assert "The first program and the last 12 months are shown instead." in response.text
    dashboard = response.context["dashboard"]
    assert (dashboard.program, dashboard.start, dashboard.end) == (program, DEFAULT_START, TODAY)


# Charts -----------------------------------------------------------------------------------------------------


def test_the_chart_partial_has_a_canvas_its_data_and_a_table_of_the_same_numbers():
    chart = Chart(
        "chart-test",
        "Sales by month",
        ["Jan 2026", "Feb 2026"],
        [Series("This year", [Decimal("1250.50"), None]), Series("Last year", [Decimal("1000"), Decimal("20")])],
        currency="EUR",
        label_heading="Month",
    )

    html = render_to_string("analytics/_chart.html", {"chart": chart})

    assert '<canvas data-chart="chart-test-data" role="img"' in html
    assert '<script id="chart-test-data" type="application/json">' in html
    assert '"data": ["1250.50", null]' in html
    table = re.search(r'<table class="table table-sm" id="chart-test-table">(.*?)</table>', html, re.S).group(1)
    assert "<caption>Sales by month</caption>" in table
    cells = [re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r"<t[hd][^>]*>.*?</t[hd]>", table, re.S)]
    assert cells == ["Month", "This year", "Last year", "Jan 2026", "€1,250.50", "€1,000.00", "Feb 2026", "—", "€20.00"]


def test_every_chart_of_the_dashboard_has_its_data_and_table_and_no_script_is_inline(pm_client):
    ProgramFactory()
    response = pm_client.get("/admin/")
    text = response.text
    canvases = re.findall(r'<canvas data-chart="([^"]+)"', text)
    assert len(canvases) == len(response.context["dashboard"].charts) == 6
    for data_id in canvases:
        assert f'<script id="{data_id}" type="application/json">' in text
        assert f'id="{data_id.removesuffix("-data")}-table"' in text
    for tag in re.findall(r"<script\b[^>]*>", text):
        assert "src=" in tag or 'type="application/json"' in tag, tag
    assert "script-src" in response["Content-Security-Policy"]
    assert "'unsafe-inline'" not in response["Content-Security-Policy"]


def test_chart_js_is_vendored_with_its_licence_and_the_drawing_script():
    for name in ("vendor/chartjs/chart.umd.min.js", "vendor/chartjs/LICENSE.md", "js/charts.js"):
        assert finders.find(name), name
    with open(finders.find("vendor/chartjs/chart.umd.min.js"), encoding="utf-8") as vendored:
        assert "Chart.js v4" in vendored.read(200)


# Query count ------------------------------------------------------------------------------------------------


def program_data(program, size: int) -> None:
    """`size` partners with people, points, sales, claims, tiers and campaigns, in the roll-ups and live tables."""
    tier = TierFactory(program=program, rank=next(_numbers))
    day = TODAY - timedelta(days=20)
    for index in range(size):
        partner = PartnerFactory()
        PartnerTier.objects.create(program=program, partner=partner, tier=tier, since=day, held_until=TODAY)
        TierChange.objects.create(program=program, partner=partner, to_tier=tier, metric_value=0, reason="first")
        member = MemberFactory(partner=partner)
        account = MemberAccountFactory(program=program, member=member)
        ledger.earn(account=account, points=100, key=f"data-{member.pk}")
        claim(program)
        common = {"day": day, "program_id": program.pk, "partner_id": partner.pk, "role_id": member.role_id}
        PointsDay.objects.create(**common, region_id=partner.region_id, product_line_id=0, issued=100)
        SalesDay.objects.create(
            **common, region_id=partner.region_id, product_line_id=index + 1, amount=Decimal("10"), units=1, lines=1
        )
        SalesDay.objects.create(
            **{**common, "day": kpis.year_before(day)}, region_id=partner.region_id, product_line_id=index + 1,
            amount=Decimal("8"), units=1, lines=1,
        )  # fmt: skip
        ClaimsDay.objects.create(**common, region_id=partner.region_id, submitted=1, approved=1, turnaround_hours=5)
        MembersDay.objects.create(**{**common, "program_id": 0}, region_id=partner.region_id, invited=1, joined=1)
        MessagesDay.objects.create(day=day, channel="email", role_id=next(_numbers), kind="campaign", sent=1)
        campaign = Campaign.objects.create(
            program=program, name=f"C{index}", status=CampaignStatus.SENT, sent_at=local(day)
        )
        CampaignRecipient.objects.create(campaign=campaign, member=member)


def queries_of(client) -> list[str]:
    with CaptureQueriesContext(connection) as captured:
        assert client.get("/admin/").status_code == 200
    return [query["sql"] for query in captured.captured_queries]


DASHBOARD_QUERIES = 35  # 32, and 3 for the partners at risk (their stored scores)


def test_the_dashboard_costs_the_same_queries_for_a_bigger_program(pm_client):
    program = ProgramFactory()
    program_data(program, 3)
    health_refresh(program=program)  # as the periodic task does
    small = queries_of(pm_client)
    program_data(program, 6)
    ProgramFactory()  # a second program to choose from
    health_refresh(program=program)
    roll_ups_changed()  # as the periodic task does after the roll-ups: the figures are computed again
    bigger = queries_of(pm_client)
    assert len(small) == len(bigger) == DASHBOARD_QUERIES, "\n".join(bigger)


def test_the_figures_are_computed_once_until_the_roll_ups_change(pm_client):
    program = ProgramFactory()
    program_data(program, 3)
    first = pm_client.get("/admin/")
    program_data(program, 6)  # more roll-up rows, written by hand: the periodic task has not run yet

    again = queries_of(pm_client)  # session, user, programs, the work waiting… and the figures from the cache
    second = pm_client.get("/admin/")
    roll_ups_changed()
    third = pm_client.get("/admin/")

    assert len(again) == DASHBOARD_QUERIES - 25, "\n".join(again)
    points = re.compile(r'id="points-issued">([^<]*)<')
    assert points.search(second.content.decode()).group(1) == points.search(first.content.decode()).group(1)
    assert points.search(third.content.decode()).group(1) != points.search(first.content.decode()).group(1)
    assert re.search(r'id="computed-at">Figures as of \d', first.content.decode())


def test_the_plain_index_costs_no_dashboard_queries(am_staff_client):
    program_data(ProgramFactory(), 3)
    assert len(queries_of(am_staff_client)) < DASHBOARD_QUERIES - 15


def test_the_partners_at_risk_are_listed_with_why_and_linked_to_their_overview(pm_client):
    program = ProgramFactory()
    quiet = PartnerFactory(name="Quiet Traders Ltd")
    MemberFactory.create_batch(3, partner=quiet)

    page = pm_client.get("/admin/").content.decode()

    block = page[page.index('id="at-risk"') :]
    assert "Quiet Traders Ltd" in block
    assert "0 of 3 members active in the last 90 days" in block
    assert reverse("partner_overview", args=[quiet.pk]) in block
    assert program.name in page
