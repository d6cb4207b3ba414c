"""The member site's referral pages: the referrals a viewer may see with status, reason and duplicate note;
"Refer a company" with its refusals; and the pages' pinned query counts."""

import pytest
from django.urls import reverse
from django.utils import timezone

from loyalty.constants import ReferralStatus
from loyalty.models import Referral
from tests.helpers import messages_of, visible
from tests.loyalty.factories import ProgramFactory
from tests.loyalty.factories_referrals import ReferralFactory
from tests.partners.factories import MemberFactory, OwnerFactory, PartnerFactory, UserFactory

pytestmark = pytest.mark.django_db
LIST, NEW = reverse("referral_list"), reverse("referral_new")


@pytest.fixture
def program():
    return ProgramFactory()


@pytest.fixture
def member():
    return MemberFactory(user__full_name="Olga Sales", partner__name="Blue Water Ltd")


@pytest.fixture
def signed_in(client, member):
    client.force_login(member.user)
    return client


FORM = {
    "company_name": "Hotel Seeblick AG",
    "company_id": "CHE-123",
    "contact_name": "Anna Berger",
    "contact_email": "anna@seeblick.example",
    "contact_phone": "+41 44 000 00 00",
    "need": "Softeners for 3 hotels",
}


def test_the_list_shows_the_members_referrals_with_status_and_the_rejection_reason(signed_in, program, member):
    ReferralFactory(program=program, member=member, company_name="Alpha AG")
    ReferralFactory(
        program=program,
        member=member,
        company_name="Beta AG",
        status=ReferralStatus.REJECTED,
        reason="Already a customer of our distributor.",
    )
    ReferralFactory(program=program, member=member, company_name="Gamma AG", status=ReferralStatus.CONVERTED)
    ReferralFactory(program=program, company_name="Someone else's")  # another partner's

    response = signed_in.get(LIST)

    assert response.status_code == 200
    text = visible(response)
    assert "My referrals" in text
    assert "Alpha AG Submitted" in text
    assert "Beta AG Rejected" in text
    assert "Why it was rejected: Already a customer of our distributor." in text
    assert "Gamma AG Converted" in text and "They became a customer. Thank you!" in text
    assert "Someone else's" not in text


def test_a_duplicate_shows_when_the_prospect_was_first_referred_but_not_by_whom(signed_in, program, member):
    first = ReferralFactory(program=program, member__partner__name="Rival Dealer Ltd")
    ReferralFactory(program=program, member=member, company_name="Hotel Seeblick AG", duplicate_of=first)

    text = visible(signed_in.get(LIST))

    day = timezone.localtime(first.created_at).strftime("%-d %b %Y")
    assert f"This company was already referred on {day}; the program team decides which referral counts." in text
    assert "Rival Dealer Ltd" not in text


def test_an_owner_sees_the_teams_referrals_with_who_referred(client, program, member):
    owner = OwnerFactory(partner=member.partner)
    ReferralFactory(program=program, member=member, company_name="Alpha AG")
    ReferralFactory(program=program, company_name="Other partner's")
    client.force_login(owner.user)

    text = visible(client.get(LIST))

    assert "Alpha AG" in text and "by Olga Sales" in text
    assert "Other partner's" not in text


def test_a_colleague_does_not_see_another_members_referrals(client, program, member):
    ReferralFactory(program=program, member=member, company_name="Alpha AG")
    client.force_login(MemberFactory(partner=member.partner).user)

    text = visible(client.get(LIST))

    assert "Alpha AG" not in text
    assert "No referrals yet" in text


def test_the_empty_list_invites_to_refer(signed_in, program):
    text = visible(signed_in.get(LIST))

    assert "No referrals yet Know a company that needs our products?" in text
    assert NEW in signed_in.get(LIST).content.decode()


def test_the_status_filter_narrows_the_list(signed_in, program, member):
    ReferralFactory(program=program, member=member, company_name="Alpha AG")
    ReferralFactory(program=program, member=member, company_name="Beta AG", status=ReferralStatus.QUALIFIED)

    text = visible(signed_in.get(LIST, {"status": ReferralStatus.QUALIFIED}))

    assert "Beta AG" in text and "Alpha AG" not in text


def test_referring_a_company_stores_it_and_says_thank_you(signed_in, program, member):
    response = signed_in.post(NEW, FORM)

    assert response.status_code == 302 and response.url == LIST
    referral = Referral.objects.get()
    assert (referral.member, referral.company_name, referral.contact_email) == (
        member,
        "Hotel Seeblick AG",
        "anna@seeblick.example",
    )
    assert messages_of(response) == [
        "Thank you: Hotel Seeblick AG is referred. The program team contacts them; the decision will show here."
    ]


def test_referring_a_company_referred_before_says_when_without_saying_by_whom(signed_in, program, member):
    first = ReferralFactory(program=program, company_id="che-123", member__partner__name="Rival Dealer Ltd")

    response = signed_in.post(NEW, FORM)

    day = timezone.localtime(first.created_at).strftime("%-d %b %Y")
    [message] = messages_of(response)
    assert message.startswith(f"Hotel Seeblick AG was already referred on {day}.")
    assert "Rival Dealer Ltd" not in message
    assert Referral.objects.get(member=member).duplicate_of == first


def test_referring_a_partner_is_refused_above_the_form_and_nothing_is_stored(signed_in, program):
    PartnerFactory(legal_id="CHE-123")

    response = signed_in.post(NEW, FORM)

    assert response.status_code == 200
    text = visible(response)
    assert "Hotel Seeblick AG is already a partner of the program, so it cannot be referred." in text
    assert 'value="Anna Berger"' in response.content.decode()  # what was typed is kept
    assert Referral.objects.count() == 0


def test_a_missing_field_or_bad_email_is_shown_and_nothing_is_stored(signed_in, program):
    response = signed_in.post(NEW, {**FORM, "company_name": "", "contact_email": "anna"})

    assert response.status_code == 200
    text = visible(response)
    assert "This field is required." in text
    assert "Enter a valid email address." in text
    assert Referral.objects.count() == 0


def test_a_member_waiting_for_approval_is_told_and_cannot_refer(client, program):
    waiting = MemberFactory(status="pending_approval")
    client.force_login(waiting.user)

    response = client.post(NEW, FORM)

    assert "You can refer companies as soon as your manager approves it." in visible(response)
    assert Referral.objects.count() == 0


def test_people_outside_a_partner_cannot_refer(client, program):
    client.force_login(UserFactory())

    assert client.get(NEW).status_code == 404
    assert client.post(NEW, FORM).status_code == 404
    assert Referral.objects.count() == 0


def test_the_form_page_has_the_fields(signed_in, program):
    text = visible(signed_in.get(NEW))

    for label in ("Company", "Contact person", "Contact e-mail", "Contact phone", "What they need"):
        assert label in text


def test_the_list_costs_the_same_queries_however_many_referrals(signed_in, program, member, django_assert_num_queries):
    first = ReferralFactory(program=program, member=member)
    ReferralFactory(program=program, member=member, duplicate_of=first)
    signed_in.get(LIST)  # the session and the caches warm up
    with django_assert_num_queries(7) as few:
        signed_in.get(LIST)
    for _ in range(15):
        ReferralFactory(program=program, member=member, duplicate_of=first)
    OwnerFactory(partner=member.partner)

    with django_assert_num_queries(len(few.captured_queries)):
        response = signed_in.get(LIST)

    assert response.status_code == 200
    assert visible(response).count("already referred on") == 16


def test_the_form_page_query_count_is_pinned(signed_in, program, django_assert_max_num_queries):
    with django_assert_max_num_queries(6):
        assert signed_in.get(NEW).status_code == 200


def test_an_htmx_request_gets_the_list_alone(signed_in, program, member):
    ReferralFactory(program=program, member=member, company_name="Alpha AG")

    response = signed_in.get(LIST, {"status": ReferralStatus.SUBMITTED}, HTTP_HX_REQUEST="true")

    html = response.content.decode()
    assert html.lstrip().startswith('<div id="referral-table">')
    assert "Alpha AG" in html and "<html" not in html
