"""The back office of co-marketing funds: the lists' query counts, funds set by hand and for a period, the actions on
requests (pre-approve with an amount, reimburse, reject a claim) and the proof files."""

from datetime import date
from decimal import Decimal

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.urls import reverse

from loyalty.constants import FundSource, MdfPayout, MdfStatus, ProofKind
from loyalty.models import MarketingFund, MarketingProof, PartnerTier
from loyalty.services import comarketing as services
from tests.loyalty.factories import ProgramFactory, TierFactory
from tests.loyalty.factories_comarketing import MarketingFundFactory, MarketingRequestFactory
from tests.loyalty.test_claims_services import JPEG, PDF, upload
from tests.partners.factories import PartnerFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("private_media")]
FUNDS = reverse("admin:loyalty_marketingfund_changelist")
REQUESTS = reverse("admin:loyalty_marketingrequest_changelist")


@pytest.fixture
def program():
    return ProgramFactory(mdf_percent=Decimal("50.00"), mdf_share_by_brands=True, mdf_payout=MdfPayout.CREDIT_NOTE)


def test_the_lists_cost_the_same_queries_however_many_rows(pm_client, program, django_assert_max_num_queries):
    fund = MarketingFundFactory(program=program)
    MarketingRequestFactory(fund=fund)
    for url in (FUNDS, REQUESTS):
        pm_client.get(url)
    counts = {}
    for url in (FUNDS, REQUESTS):
        with django_assert_max_num_queries(20) as few:
            assert pm_client.get(url).status_code == 200
        counts[url] = len(few.captured_queries)
    for _ in range(5):
        MarketingRequestFactory(fund=MarketingFundFactory(program=program))
    for url in (FUNDS, REQUESTS):
        with django_assert_max_num_queries(counts[url]):
            assert pm_client.get(url).status_code == 200


def test_a_fund_added_by_hand_goes_through_the_service(pm_client, program):
    partner = PartnerFactory()
    response = pm_client.post(
        reverse("admin:loyalty_marketingfund_add"),
        {
            "program": program.pk,
            "partner": partner.pk,
            "period_start": "2026-01-01",
            "period_end": "2026-12-31",
            "amount": "5000.00",
            "note": "",
        },
    )
    assert response.status_code == 302
    fund = MarketingFund.objects.get()
    assert (fund.partner, fund.amount, fund.source) == (partner, Decimal("5000.00"), FundSource.MANUAL)


def test_funds_for_a_period_by_tier_from_the_admin_page(pm_client, program):
    gold = TierFactory(program=program, mdf_fund_amount=Decimal("3000.00"))
    partner = PartnerFactory()
    PartnerTier.objects.create(
        program=program, partner=partner, tier=gold, since=date(2026, 1, 1), held_until=date(2026, 12, 31)
    )

    response = pm_client.post(
        reverse("admin:loyalty_marketingfund_for_period"),
        {"program": program.pk, "period_start": "2026-07-01", "period_end": "2026-09-30", "method": "tier"},
    )

    assert response.status_code == 302
    fund = MarketingFund.objects.get()
    assert (fund.partner, fund.amount, fund.period_start) == (partner, Decimal("3000.00"), date(2026, 7, 1))


def test_pre_approving_from_the_list_asks_the_amount_and_refuses_more_than_is_left(pm_client, program):
    fund = MarketingFundFactory(program=program, amount=Decimal("1000.00"))
    first, second = MarketingRequestFactory(fund=fund), MarketingRequestFactory(fund=fund)
    action = {"action": "pre_approve", ACTION_CHECKBOX_NAME: [first.pk, second.pk]}

    asked = pm_client.post(REQUESTS, action)
    done = pm_client.post(REQUESTS, {**action, "apply": "1", "amount": "600.00"}, follow=True)

    assert "Amount to pre-approve" in asked.content.decode()
    first.refresh_from_db()
    second.refresh_from_db()
    fund.refresh_from_db()
    assert (first.status, second.status) == (MdfStatus.PRE_APPROVED, MdfStatus.REQUESTED)
    assert fund.committed == Decimal("600.00")
    assert "Only €400.00 is left in the fund" in done.content.decode()


def test_reimbursing_and_rejecting_claims_from_the_list(pm_client, program, program_manager):
    fund = MarketingFundFactory(program=program)
    rows = []
    for _ in range(2):
        row = MarketingRequestFactory(fund=fund)
        services.request_pre_approve(request=row, actor=program_manager, amount=Decimal("500.00"))
        services.request_claim(
            request=row,
            member=row.member,
            actual_cost=Decimal("1000.00"),
            other_brands=1,
            proofs=[
                (ProofKind.ADVERT, upload("a.jpg", JPEG)),
                (ProofKind.INVOICE, upload("i.pdf", PDF, "application/pdf")),
            ],
        )
        rows.append(row)

    pm_client.post(REQUESTS, {"action": "reimburse", ACTION_CHECKBOX_NAME: [rows[0].pk]})
    pm_client.post(
        REQUESTS,
        {
            "action": "reject_claim",
            ACTION_CHECKBOX_NAME: [rows[1].pk],
            "apply": "1",
            "reason": "The advert is missing.",
        },
    )

    for row in rows:
        row.refresh_from_db()
    assert (rows[0].status, rows[0].reimbursed_amount) == (MdfStatus.REIMBURSED, Decimal("250.00"))
    assert (rows[1].status, rows[1].reason) == (MdfStatus.CLAIM_REJECTED, "The advert is missing.")
    page = pm_client.get(reverse("admin:loyalty_marketingrequest_change", args=[rows[0].pk]))
    assert page.status_code == 200
    proof = MarketingProof.objects.filter(request=rows[0], kind=ProofKind.ADVERT).get()
    file = pm_client.get(reverse("admin:loyalty_marketingrequest_proof", args=[rows[0].pk, proof.pk]))
    assert (file.status_code, file["Content-Type"]) == (200, "image/jpeg")


def test_partner_staff_cannot_open_the_back_office_pages(partner_staff_client):
    assert partner_staff_client.get(REQUESTS).status_code == 302
    assert partner_staff_client.get(reverse("admin:loyalty_marketingfund_for_period")).status_code == 302
