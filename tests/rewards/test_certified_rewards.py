"""Rewards reserved for certified members (Reward.requires_certification): everyone sees them in the catalogue,
marked "For members certified on …"; only a member holding a certificate for that line valid today can put them in
the cart, redeem them or check them out; everyone else is told why and nothing changes."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from loyalty.common.errors import ApplicationError
from loyalty.models import Course
from loyalty.services import ledger
from rewards import selectors, services
from rewards.admin_forms import RewardAdminForm
from rewards.constants import OrderStatus, PaidBy
from rewards.error_codes import ErrorCode
from rewards.models import CartItem, RedemptionOrder, Reward
from tests.helpers import messages_of
from tests.loyalty.factories import CertificateFactory, CourseFactory, ProductLineFactory, ProgramFactory
from tests.partners.factories import MemberFactory, role
from tests.rewards.factories import RewardFactory

pytestmark = pytest.mark.django_db

TODAY = timezone.localdate()
REFUSED = (
    "Expert session is reserved for members certified on Softeners: you can redeem it once you hold a valid "
    "certificate (pass the Softeners course on the Learn page)."
)


@pytest.fixture
def program():
    return ProgramFactory(currency_name="AquaPoints", order_approval_threshold=5000)


@pytest.fixture
def softeners():
    return ProductLineFactory(code="softeners", name="Softeners")


@pytest.fixture
def session(program, softeners):
    return RewardFactory(program=program, name="Expert session", points_price=400, requires_certification=softeners)


def installer(program, points=1000):
    member = MemberFactory(role=role("engineer"))
    ledger.earn(account=ledger.member_account(program=program, member=member), points=points, key=f"seed{member.pk}")
    return member


def certify(program, member, line, *, issued_on=TODAY - timedelta(days=30), expires_on=TODAY + timedelta(days=300)):
    return CertificateFactory(
        member=member, course__program=program, course__product_line=line, issued_on=issued_on, expires_on=expires_on
    )


def balance(program, member) -> int:
    return ledger.member_account(program=program, member=member).available


# The catalogue --------------------------------------------------------------------------------------------------


def test_the_catalogue_shows_a_certified_only_reward_to_everyone_marked_for_certified_members(client, program, session):
    member = installer(program)
    client.force_login(member.user)
    body = client.get(reverse("catalogue")).content.decode()
    assert "Expert session" in body
    assert "For members certified on Softeners" in body
    assert "(you are not certified yet)" in body


def test_the_reward_page_tells_an_uncertified_member_why_and_offers_no_cart_nor_redeem(client, program, session):
    member = installer(program)
    client.force_login(member.user)
    body = client.get(reverse("reward_detail", args=[session.pk])).content.decode()
    assert "For members certified on Softeners." in body
    assert "This reward is for members certified on Softeners." in body
    assert reverse("cart_update", args=[session.pk]) not in body
    assert reverse("redeem_now", args=[session.pk]) not in body


def test_the_reward_page_offers_the_cart_and_redeem_now_to_a_certified_member(client, program, softeners, session):
    member = installer(program)
    certify(program, member, softeners)
    client.force_login(member.user)
    body = client.get(reverse("reward_detail", args=[session.pk])).content.decode()
    assert "This reward is for members certified on Softeners." not in body
    assert reverse("cart_update", args=[session.pk]) in body
    assert reverse("redeem_now", args=[session.pk]) in body


def test_only_what_i_can_afford_leaves_out_what_i_may_not_redeem(program, softeners, session):
    uncertified, certified = installer(program), installer(program)
    certify(program, certified, softeners)
    plain = RewardFactory(program=program, name="Mug", points_price=100)
    for member, expected in ((uncertified, [plain.pk]), (certified, [plain.pk, session.pk])):
        rewards = selectors.catalogue(member=member, program=program, max_points=1000)
        assert list(rewards.values_list("pk", flat=True)) == expected
        assert sorted(selectors.catalogue(member=member, program=program).values_list("pk", flat=True)) == sorted(
            [plain.pk, session.pk]
        )


@pytest.mark.parametrize("count", [2, 30])
def test_the_catalogue_query_count_does_not_grow_with_certified_only_rewards(
    client, program, softeners, django_assert_max_num_queries, count
):
    filters = ProductLineFactory(code="filters", name="Filters")
    member = installer(program)
    certify(program, member, filters)
    for n in range(count):
        RewardFactory(program=program, requires_certification=softeners if n % 2 else filters)
    client.force_login(member.user)
    with django_assert_max_num_queries(14):  # as the catalogue without certified-only rewards
        response = client.get(reverse("catalogue"))
    assert response.status_code == 200
    assert response.content.decode().count("(you are not certified yet)") == min(count, 24) // 2


# Refusals -------------------------------------------------------------------------------------------------------


def test_an_uncertified_member_cannot_add_it_to_the_cart_and_the_cart_is_unchanged(client, program, session):
    member = installer(program)
    client.force_login(member.user)
    response = client.post(reverse("cart_update", args=[session.pk]), {"quantity": 1})
    assert response.status_code == 302
    assert messages_of(response) == [REFUSED]
    assert CartItem.objects.filter(member=member).count() == 0
    with pytest.raises(ApplicationError) as refused:
        services.cart_set(member=member, reward=session, quantity=1)
    assert (refused.value.code, refused.value.message) == (ErrorCode.RESTRICTED, REFUSED)
    assert CartItem.objects.filter(member=member).count() == 0


def test_an_uncertified_member_cannot_redeem_it_and_nothing_is_spent(client, program, session):
    member = installer(program)
    client.force_login(member.user)
    response = client.post(reverse("redeem_now", args=[session.pk]), {"quantity": 1, "checkout_key": "tap-12345"})
    assert messages_of(response) == [REFUSED]
    assert (RedemptionOrder.objects.count(), balance(program, member)) == (0, 1000)


def test_a_certificate_that_expired_yesterday_no_longer_lets_a_member_check_out(program, softeners, session):
    member = installer(program)
    certify(program, member, softeners, issued_on=TODAY - timedelta(days=365), expires_on=TODAY)
    CartItem.objects.create(member=member, reward=session, quantity=1)  # put in the cart while it was valid
    with pytest.raises(ApplicationError) as refused:
        services.order_place(
            member=member, program=program, items=[(session, 1)], paid_by=PaidBy.MEMBER, checkout_key="expired-1"
        )
    assert (refused.value.code, refused.value.message) == (ErrorCode.RESTRICTED, REFUSED)
    assert (RedemptionOrder.objects.count(), balance(program, member)) == (0, 1000)
    assert list(CartItem.objects.filter(member=member).values_list("reward_id", "quantity")) == [(session.pk, 1)]


def test_a_certificate_for_another_line_does_not_count(program, session):
    member = installer(program)
    certify(program, member, ProductLineFactory(code="filters", name="Filters"))
    assert services.reward_problem(reward=session, member=member) == REFUSED


# A certified member ---------------------------------------------------------------------------------------------


def test_a_certified_member_adds_it_to_the_cart_and_checks_out(client, program, softeners, session):
    member = installer(program)
    certify(program, member, softeners)
    client.force_login(member.user)
    response = client.post(reverse("cart_update", args=[session.pk]), {"quantity": 2})
    assert messages_of(response) == ["Expert session × 2 is in your cart."]
    assert list(CartItem.objects.filter(member=member).values_list("reward_id", "quantity")) == [(session.pk, 2)]
    response = client.post(
        reverse("checkout", args=[PaidBy.MEMBER]), {"lines": f"{session.pk}:2", "checkout_key": "a" * 32}
    )
    order = RedemptionOrder.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("order_detail", args=[order.pk])
    assert (order.status, order.total_points, balance(program, member)) == (OrderStatus.APPROVED, 800, 200)
    assert CartItem.objects.filter(member=member).count() == 0


def test_a_certificate_issued_today_lets_a_member_redeem_at_once(program, softeners, session):
    member = installer(program)
    certify(program, member, softeners, issued_on=TODAY)
    order = services.order_place(
        member=member, program=program, items=[(session, 1)], paid_by=PaidBy.MEMBER, checkout_key="today-1"
    )
    assert (order.total_points, balance(program, member)) == (400, 600)


# The back office ------------------------------------------------------------------------------------------------


def test_the_reward_form_reserves_a_reward_for_certified_members(pm_client, program, softeners, session):
    url = reverse("admin:rewards_reward_change", args=[session.pk])
    body = pm_client.get(url).content.decode()
    assert "Certified members only" in body
    assert "Reserved for members holding a valid certificate for this product line. Empty: everyone." in body
    assert Reward.objects.get(pk=session.pk).requires_certification == softeners


def test_only_lines_a_course_of_the_program_certifies_can_be_required(program, softeners, session):
    filtration = ProductLineFactory(code="filtration", name="Filtration")
    CourseFactory(program=program, product_line=filtration, certification_months=None)  # teaches, certifies nothing
    CourseFactory(program=program, product_line=softeners, certification_months=12)
    assert list(RewardAdminForm().fields["requires_certification"].queryset) == [softeners]

    form = RewardAdminForm(instance=session)
    data = {**form.initial, "requires_certification": filtration.pk, "allowed_roles": [], "allowed_regions": []}
    refused = RewardAdminForm(data, instance=session)

    assert not refused.is_valid()
    assert "requires_certification" in refused.errors
    Course.objects.filter(product_line=filtration).update(certification_months=24)
    assert RewardAdminForm(data, instance=session).is_valid(), RewardAdminForm(data, instance=session).errors
