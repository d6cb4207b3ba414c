"""A colleague tagged on a claim can open it read-only and see their share; statement entries from claims name
the claim and link to it; a claim line that paid someone nothing says why (issue #10, point 14)."""

from decimal import Decimal

import pytest
from django.urls import reverse

from loyalty.constants import ClaimStatus
from loyalty.services import claims as services
from partners.constants import PayoutPolicy
from tests.loyalty.factories import ProductFactory, ProgramFactory, RuleFactory
from tests.loyalty.test_claims_services import submit
from tests.loyalty.test_claims_views import visible
from tests.partners.factories import MemberFactory, OwnerFactory, ProgramManagerFactory, role

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("private_media")]


@pytest.fixture
def program():
    return ProgramFactory(currency_name="AquaPoints", claim_window_days=60, claim_auto_approve_below=Decimal("0"))


@pytest.fixture
def team():
    owner = OwnerFactory(partner__name="Blue Water Ltd")
    rep = MemberFactory(partner=owner.partner, role=role("sales"), user__full_name="Ana Rep")
    engineer = MemberFactory(partner=owner.partner, role=role("engineer"), user__full_name="Eli Engineer")
    foreman = MemberFactory(partner=owner.partner, role=role("foreman"), user__full_name="Fay Foreman")
    return rep, engineer, foreman


def approved(program, rep, colleagues):
    claim = submit(
        rep, program, lines=[(ProductFactory(name="Pump X"), Decimal("10"), Decimal("1000.00"))], colleagues=colleagues
    )
    services.claim_approve(claim=claim, actor=ProgramManagerFactory())
    claim.refresh_from_db()
    assert claim.status == ClaimStatus.APPROVED
    return claim


def test_a_tagged_colleague_opens_the_claim_and_sees_their_share_only(client, program, team):
    rep, engineer, _ = team
    RuleFactory(program=program, shares=[{"role": "sales", "percent": 60}, {"role": "engineer", "percent": 40}])
    claim = approved(program, rep, [engineer])
    client.force_login(engineer.user)

    response = client.get(reverse("claim_detail", args=[claim.pk]))

    assert response.status_code == 200
    page = visible(response)
    assert "Ana Rep shared this claim with you. Your share: 40 AquaPoints" in page
    assert "Only the colleague who made the claim can correct or withdraw it." in page
    assert response.context["points_total"] == 40  # not the rep's 60
    assert reverse("claim_withdraw", args=[claim.pk]) not in response.content.decode()
    assert reverse("claim_resubmit", args=[claim.pk]) not in response.content.decode()


def test_a_tagged_colleague_cannot_withdraw_or_correct_the_claim(client, program, team):
    rep, engineer, _ = team
    claim = submit(rep, program, colleagues=[engineer])
    client.force_login(engineer.user)

    assert client.post(reverse("claim_withdraw", args=[claim.pk])).status_code == 404
    claim.refresh_from_db()
    assert claim.status == ClaimStatus.SUBMITTED


def test_the_tagged_claim_is_in_the_colleagues_list_marked_as_shared(client, program, team):
    rep, engineer, foreman = team
    claim = submit(rep, program, colleagues=[engineer])
    client.force_login(engineer.user)

    response = client.get(reverse("claim_list"))

    assert [c.pk for c in response.context["page"]] == [claim.pk]
    assert "Shared by Ana Rep" in visible(response)
    client.force_login(foreman.user)  # same company, not tagged
    assert client.get(reverse("claim_detail", args=[claim.pk])).status_code == 404


def test_a_colleague_whose_role_no_rule_pays_is_told_why(client, program, team):
    rep, _, foreman = team
    RuleFactory(program=program, shares=[{"role": "sales", "percent": 60}, {"role": "engineer", "percent": 40}])
    claim = approved(program, rep, [foreman])
    client.force_login(foreman.user)

    page = visible(client.get(reverse("claim_detail", args=[claim.pk])))

    assert "Ana Rep shared this claim with you; it paid you nothing" in page
    assert "Nothing paid: No rule pays a foreman for this product." in page


def test_a_claim_approved_for_nothing_says_why_to_the_claimant(client, program, team):
    rep, _, _ = team
    RuleFactory(program=program).products.set([ProductFactory()])  # pays for another product only
    claim = approved(program, rep, [])
    client.force_login(rep.user)

    page = visible(client.get(reverse("claim_detail", args=[claim.pk])))

    assert "The claim was approved but paid nothing" in page
    assert "Nothing paid: No rule pays for this product." in page


def test_a_pooled_partner_tells_the_member_their_share_went_to_the_company(client, program, team):
    rep, _, _ = team
    rep.partner.payout_policy = PayoutPolicy.POOLED
    rep.partner.save()
    RuleFactory(program=program)
    claim = approved(program, rep, [])
    client.force_login(rep.user)

    page = visible(client.get(reverse("claim_detail", args=[claim.pk])))

    assert "Blue Water Ltd pools staff bonuses: the share went to the company account." in page


def test_statement_entries_from_a_claim_name_it_and_link_to_it(client, program, team):
    rep, engineer, _ = team
    RuleFactory(program=program, shares=[{"role": "sales", "percent": 60}, {"role": "engineer", "percent": 40}])
    claim = approved(program, rep, [engineer])
    client.force_login(engineer.user)

    response = client.get(reverse("points_statement"))

    html = response.content.decode()
    assert f'href="{reverse("claim_detail", args=[claim.pk])}" data-testid="entry-claim">Claim {claim.pk}</a>' in html
    # and the link opens
    assert client.get(reverse("claim_detail", args=[claim.pk])).status_code == 200
