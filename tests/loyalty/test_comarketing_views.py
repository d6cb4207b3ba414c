"""The member site's co-marketing pages: the fund and the requests, asking, claiming with proof, withdrawing, the
proof files, who may see what, and the pages' query counts."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from loyalty.constants import MdfStatus, ProofKind
from loyalty.models import MarketingProof, MarketingRequest
from loyalty.services import comarketing as services
from tests.helpers import visible
from tests.loyalty.factories import ProgramFactory
from tests.loyalty.factories_comarketing import MarketingFundFactory, MarketingRequestFactory
from tests.loyalty.test_claims_services import JPEG, PDF, stored_files, upload
from tests.partners.factories import (
    AccountManagerFactory,
    MemberFactory,
    OwnerFactory,
    ProgramManagerFactory,
    role,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("private_media")]
OVERVIEW = reverse("mdf_overview")
NEW = reverse("mdf_request_new")
TODAY = timezone.localdate()


@pytest.fixture
def program():
    return ProgramFactory(mdf_percent=Decimal("50.00"), mdf_share_by_brands=True)


@pytest.fixture
def owner():
    return OwnerFactory(partner__name="Blue Water Ltd", user__full_name="Olga Owner")


@pytest.fixture
def fund(program, owner):
    return MarketingFundFactory(program=program, partner=owner.partner, amount=Decimal("2000.00"))


@pytest.fixture
def pm():
    return ProgramManagerFactory()


def pre_approved(fund, pm, member=None, amount="600.00"):
    request = MarketingRequestFactory(fund=fund, **({"member": member} if member else {}))
    return services.request_pre_approve(request=request, actor=pm, amount=Decimal(amount))


# The fund and the list --------------------------------------------------------------------------------------


def test_the_owner_sees_the_fund_with_what_is_left_and_the_requests(client, fund, owner, pm):
    pre_approved(fund, pm, member=owner, amount="600.00")
    client.force_login(owner.user)

    page = visible(client.get(OVERVIEW))

    assert "Your fund from" in page
    assert "€2,000.00" in page and "€600.00" in page and "€1,400.00" in page
    assert "Pre-approved" in page
    assert "Ask for money" in page


def test_the_list_costs_the_same_queries_however_many_requests(client, fund, owner, pm, django_assert_max_num_queries):
    client.force_login(owner.user)
    pre_approved(fund, pm, member=owner)
    client.get(OVERVIEW)  # warm the session and the caches
    with django_assert_max_num_queries(12) as few:
        client.get(OVERVIEW)
    for _ in range(6):
        MarketingRequestFactory(fund=fund, member=MemberFactory(partner=owner.partner))
    with django_assert_max_num_queries(len(few.captured_queries)):
        response = client.get(OVERVIEW)
    assert visible(response).count("planned for") == 7


def test_without_a_fund_or_requests_the_page_says_so(client, program, owner):
    client.force_login(owner.user)
    page = visible(client.get(OVERVIEW))
    assert "No co-marketing fund for now" in page
    assert "No requests yet" in page
    assert "Ask for money" not in page


def test_an_engineer_has_no_co_marketing_page(client, fund, owner):
    engineer = MemberFactory(partner=owner.partner, role=role("engineer"))
    client.force_login(engineer.user)
    assert client.get(OVERVIEW).status_code == 404
    assert client.get(NEW).status_code == 404


def test_a_sales_rep_sees_only_the_requests_they_made(client, fund, owner):
    rep = MemberFactory(partner=owner.partner)
    mine = MarketingRequestFactory(fund=fund, member=rep, title="My flyer")
    theirs = MarketingRequestFactory(fund=fund, member=owner, title="Owner's fair")
    client.force_login(rep.user)

    page = visible(client.get(OVERVIEW))

    assert "My flyer" in page and "Owner's fair" not in page
    assert client.get(reverse("mdf_request_detail", args=[mine.pk])).status_code == 200
    assert client.get(reverse("mdf_request_detail", args=[theirs.pk])).status_code == 404


def test_another_partner_cannot_see_a_request_nor_its_proof(client, fund, pm):
    request = pre_approved(fund, pm)
    services.request_claim(
        request=request,
        member=request.member,
        actual_cost=Decimal("1000"),
        other_brands=0,
        proofs=[
            (ProofKind.ADVERT, upload("a.jpg", JPEG)),
            (ProofKind.INVOICE, upload("i.pdf", PDF, "application/pdf")),
        ],
    )
    proof = MarketingProof.objects.filter(kind=ProofKind.INVOICE).get()
    client.force_login(OwnerFactory().user)

    assert client.get(reverse("mdf_request_detail", args=[request.pk])).status_code == 404
    assert client.get(reverse("mdf_proof", args=[proof.pk])).status_code == 404


def test_the_partner_the_program_team_and_the_account_manager_can_open_a_proof(client, fund, owner, pm):
    request = pre_approved(fund, pm, member=owner)
    services.request_claim(
        request=request,
        member=owner,
        actual_cost=Decimal("1000"),
        other_brands=0,
        proofs=[
            (ProofKind.ADVERT, upload("a.jpg", JPEG)),
            (ProofKind.INVOICE, upload("i.pdf", PDF, "application/pdf")),
        ],
    )
    proof = MarketingProof.objects.filter(kind=ProofKind.INVOICE).get()
    url = reverse("mdf_proof", args=[proof.pk])
    fund.partner.account_manager = AccountManagerFactory()
    fund.partner.save(update_fields=["account_manager"])

    for user in (owner.user, pm, fund.partner.account_manager):
        client.force_login(user)
        response = client.get(url)
        assert response.status_code == 200
        assert response["Content-Type"] == "application/pdf"
    client.force_login(AccountManagerFactory())
    assert client.get(url).status_code == 404


# Asking and claiming ----------------------------------------------------------------------------------------


def test_a_sales_rep_asks_for_money_from_the_form(client, fund, owner):
    rep = MemberFactory(partner=owner.partner)
    client.force_login(rep.user)
    day = TODAY + timedelta(days=10)

    response = client.post(
        NEW, {"title": "Advert in the local paper", "planned_on": day.isoformat(), "planned_cost": "1500.00"}
    )

    made = MarketingRequest.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("mdf_request_detail", args=[made.pk])
    assert (made.member, made.fund, made.planned_cost, made.status) == (
        rep,
        fund,
        Decimal("1500.00"),
        MdfStatus.REQUESTED,
    )


def test_a_request_refused_by_the_service_shows_why_and_writes_nothing(client, program, owner):
    client.force_login(owner.user)
    response = client.post(NEW, {"title": "Fair", "planned_on": TODAY.isoformat(), "planned_cost": "100"})
    assert response.status_code == 200
    assert "no co-marketing fund for" in visible(response)
    assert not MarketingRequest.objects.exists()


def test_claiming_with_the_advert_and_the_invoice_sends_the_claim(client, fund, owner, pm):
    request = pre_approved(fund, pm, member=owner)
    client.force_login(owner.user)

    response = client.post(
        reverse("mdf_request_claim", args=[request.pk]),
        {
            "actual_cost": "1000.00",
            "other_brands": "1",
            "advert": upload("advert.jpg", JPEG),
            "invoice": upload("bill.pdf", PDF, "application/pdf"),
        },
    )

    assert response.status_code == 302
    request.refresh_from_db()
    assert (request.status, request.actual_cost, request.other_brands) == (MdfStatus.CLAIMED, Decimal("1000.00"), 1)
    assert sorted(request.proofs.values_list("kind", flat=True)) == [ProofKind.ADVERT, ProofKind.INVOICE]


def test_a_claim_without_the_invoice_is_shown_again_and_nothing_is_stored(client, fund, owner, pm, private_media):
    request = pre_approved(fund, pm, member=owner)
    client.force_login(owner.user)

    response = client.post(
        reverse("mdf_request_claim", args=[request.pk]),
        {"actual_cost": "1000.00", "other_brands": "0", "advert": upload("advert.jpg", JPEG)},
    )

    assert response.status_code == 200
    assert "The claim was not sent" in visible(response)
    request.refresh_from_db()
    assert request.status == MdfStatus.PRE_APPROVED
    assert stored_files(private_media) == []


def test_the_request_page_shows_the_history_and_the_reimbursement(client, fund, owner, pm):
    request = pre_approved(fund, pm, member=owner, amount="600.00")
    services.request_claim(
        request=request,
        member=owner,
        actual_cost=Decimal("1000"),
        other_brands=3,
        proofs=[
            (ProofKind.ADVERT, upload("a.jpg", JPEG)),
            (ProofKind.INVOICE, upload("i.pdf", PDF, "application/pdf")),
        ],
    )
    fund.program.mdf_payout = "credit_note"
    fund.program.save(update_fields=["mdf_payout"])
    services.request_reimburse(request=request, actor=pm)
    client.force_login(owner.user)

    page = visible(client.get(reverse("mdf_request_detail", args=[request.pk])))

    assert "Reimbursed €125.00 as a credit note." in page
    assert "50 % × 1,000.00 × 1/(1+3) = 125.00" in page
    for title in ("Pre-approved", "Claimed with proof", "Reimbursed"):
        assert title in page


def test_withdrawing_from_the_request_page_gives_the_money_back(client, fund, owner, pm):
    request = pre_approved(fund, pm, member=owner, amount="600.00")
    client.force_login(owner.user)

    response = client.post(reverse("mdf_request_withdraw", args=[request.pk]))

    assert response.status_code == 302
    fund.refresh_from_db()
    request.refresh_from_db()
    assert (request.status, fund.committed) == (MdfStatus.WITHDRAWN, Decimal("0.00"))
