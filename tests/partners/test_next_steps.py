"""The home page's "What I can do next" offers the real next steps for the person's role and state (issue #10,
point 17): claim a sale, redeem when they can afford something, approve staff, finish the profile."""

from decimal import Decimal

import pytest
from django.urls import reverse

from loyalty.constants import ClaimStatus
from loyalty.models import ClaimLine, SalesClaim
from loyalty.services import ledger
from partners.constants import MemberStatus
from rewards import services as rewards_services
from rewards.constants import OrderStatus, PaidBy
from tests.loyalty.factories import ProductFactory, ProgramFactory
from tests.partners.factories import MemberFactory, OwnerFactory, ProgramManagerFactory
from tests.rewards.factories import MerchandiseFactory, RewardFactory

pytestmark = pytest.mark.django_db


def steps_of(client) -> list[str]:
    response = client.get(reverse("home"))
    assert response.status_code == 200
    return [step.title for step in response.context["next_steps"]]


def make_claim(program, member, status) -> SalesClaim:
    claim = SalesClaim.objects.create(
        program=program,
        member=member,
        partner=member.partner,
        invoice_number=f"INV-{member.pk}-{status}",
        invoice_date=program.starts_on,
        document="claims/2026/05/invoice.pdf",
        status=status,
        total_amount=Decimal("100"),
    )
    ClaimLine.objects.create(claim=claim, product=ProductFactory(), quantity=1, amount=Decimal("100"))
    return claim


@pytest.fixture
def program():
    return ProgramFactory(currency_name="AquaPoints")


def test_an_active_member_with_a_complete_profile_is_offered_to_claim_a_sale_first(client, program):
    member = MemberFactory(phone="+49 30 1234")
    client.force_login(member.user)

    steps = steps_of(client)

    assert steps[0] == "Claim a sale"
    assert "Finish my profile" not in steps
    assert "Redeem a reward" not in steps  # nothing in the catalogue
    assert f'href="{reverse("claim_new")}"' in client.get(reverse("home")).content.decode()


def test_a_member_without_a_phone_number_is_asked_to_finish_the_profile(client, program):
    member = MemberFactory(phone="")
    client.force_login(member.user)

    steps = steps_of(client)

    assert "Finish my profile" in steps
    assert "My profile" not in steps


def test_redeem_is_offered_only_when_the_member_can_afford_a_reward_in_stock(client, program):
    member = MemberFactory(phone="+49 30 1234")
    RewardFactory(program=program, points_price=500)
    MerchandiseFactory(program=program, points_price=50, stock=0)  # affordable, but none left
    client.force_login(member.user)
    ledger.earn(account=ledger.member_account(program=program, member=member), points=100, key="next-steps")

    assert "Redeem a reward" not in steps_of(client)

    ledger.earn(account=ledger.member_account(program=program, member=member), points=400, key="next-steps-2")
    response = client.get(reverse("home"))

    redeem = next(step for step in response.context["next_steps"] if step.title == "Redeem a reward")
    assert redeem.text == "You can afford 1 reward now."
    assert redeem.url == reverse("catalogue") + "?affordable=1"


def test_a_rejected_claim_comes_before_everything_else(client, program):
    member = MemberFactory(phone="+49 30 1234")
    make_claim(program, member, ClaimStatus.REJECTED)
    make_claim(program, member, ClaimStatus.REJECTED)
    client.force_login(member.user)

    steps = steps_of(client)

    assert steps[0] == "Correct 2 rejected claims"
    assert "Claim a sale" in steps


def test_an_owner_with_people_waiting_is_offered_to_approve_them_first(client, program):
    owner = OwnerFactory(phone="+49 30 1234")
    MemberFactory(partner=owner.partner, status=MemberStatus.PENDING_APPROVAL)
    client.force_login(owner.user)

    steps = steps_of(client)

    assert steps[0] == "Approve a new colleague"
    assert "Company settings" in steps
    assert "My team" not in steps


def test_an_owner_with_nobody_waiting_gets_the_team_page_not_an_approval(client, program):
    owner = OwnerFactory(phone="+49 30 1234")
    client.force_login(owner.user)

    steps = steps_of(client)

    assert "My team" in steps
    assert not any(step.startswith("Approve") for step in steps)


def test_a_pending_member_is_offered_neither_claims_nor_rewards(client, program):
    member = MemberFactory(status=MemberStatus.PENDING_APPROVAL, phone="")
    RewardFactory(program=program, points_price=1)
    client.force_login(member.user)

    steps = steps_of(client)

    assert steps == ["Finish my profile"]


def test_a_program_manager_is_sent_to_the_claims_waiting_for_a_decision(client, program):
    waiting = make_claim(program, MemberFactory(), ClaimStatus.SUBMITTED)
    make_claim(program, MemberFactory(), ClaimStatus.APPROVED)
    make_claim(ProgramFactory(is_active=False), MemberFactory(), ClaimStatus.SUBMITTED)  # another program's
    client.force_login(ProgramManagerFactory())

    response = client.get(reverse("home"))

    first = response.context["next_steps"][0]
    assert first.title == "Decide on a claim"
    changelist = reverse("admin:loyalty_salesclaim_changelist")
    assert first.url == f"{changelist}?status__exact=submitted&program__id__exact={program.pk}"
    assert [c.pk for c in client.get(first.url).context["cl"].result_list] == [waiting.pk]
    assert "Back office" in [step.title for step in response.context["next_steps"]]


def test_without_a_running_program_nobody_is_offered_to_claim(client):
    member = MemberFactory(phone="+49 30 1234")
    client.force_login(member.user)

    steps = steps_of(client)

    assert "Claim a sale" not in steps
    assert "My profile" in steps


def test_an_account_manager_is_offered_their_partners_claims(client, program):
    from tests.partners.factories import AccountManagerFactory, PartnerFactory

    manager = AccountManagerFactory()
    mine = MemberFactory(partner=PartnerFactory(account_manager=manager))
    make_claim(program, mine, ClaimStatus.SUBMITTED)
    make_claim(program, MemberFactory(), ClaimStatus.SUBMITTED)  # another account manager's partner
    client.force_login(manager)

    response = client.get(reverse("home"))

    step = next(step for step in response.context["next_steps"] if step.title == "My partners' claims")
    assert step.text == "1 claim of your partners waits for the program team."
    assert step.url == reverse("claim_list")


def place_order(program, member, reward):
    ledger.earn(account=ledger.member_account(program=program, member=member), points=1000, key=f"o{member.pk}")
    return rewards_services.order_place(
        member=member, program=program, items=[(reward, 1)], paid_by=PaidBy.MEMBER, checkout_key=f"next-{member.pk}"
    )


def test_a_program_manager_is_sent_to_the_redemption_orders_waiting_for_a_decision(client):
    program = ProgramFactory(order_approval_threshold=500)
    seminar = RewardFactory(program=program, points_price=600)  # above the threshold: it waits for a decision
    waiting = [place_order(program, MemberFactory(), seminar) for _ in range(2)]
    approved = place_order(program, MemberFactory(), RewardFactory(program=program, points_price=100))
    client.force_login(ProgramManagerFactory())

    steps = client.get(reverse("home")).context["next_steps"]

    assert [order.status for order in waiting] + [approved.status] == [OrderStatus.PLACED] * 2 + [OrderStatus.APPROVED]
    decide = next(step for step in steps if step.title == "Decide on 2 orders")
    assert decide.url == reverse("admin:rewards_redemptionorder_changelist") + (
        f"?status__exact=placed&program__id__exact={program.pk}"
    )
    assert client.get(decide.url).context["cl"].result_count == 2  # the list shows exactly what was counted
    assert decide.priority == steps[0].priority  # work waiting for them comes first


def test_a_program_manager_with_no_order_waiting_is_not_offered_to_decide_on_orders(client):
    program = ProgramFactory(order_approval_threshold=500)
    place_order(program, MemberFactory(), RewardFactory(program=program, points_price=100))  # approved at once
    client.force_login(ProgramManagerFactory())

    assert not any("order" in title for title in steps_of(client))


def test_a_member_is_not_offered_to_decide_on_orders(client):
    program = ProgramFactory(order_approval_threshold=500)
    member = MemberFactory(phone="+49 30 1234")
    place_order(program, member, RewardFactory(program=program, points_price=600))
    client.force_login(member.user)

    assert not any(title.startswith("Decide") for title in steps_of(client))
