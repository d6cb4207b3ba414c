"""The back office's referral queue: waiting referrals first, duplicates with their original, the actions that
qualify, convert (asking the deal amount) and reject (asking the reason) through the service, and pinned query
counts."""

from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from loyalty.constants import EntrySource, ReferralStatus
from loyalty.models import PointsEntry, Referral
from loyalty.services.referrals import referral_transition
from tests.helpers import messages_of, visible
from tests.loyalty.factories import ProgramFactory
from tests.loyalty.factories_referrals import ReferralFactory, referral_rule
from tests.partners.factories import UserFactory

pytestmark = pytest.mark.django_db
CHANGELIST = reverse("admin:loyalty_referral_changelist")
CHANGELIST_QUERIES = 7
CHANGE_PAGE_QUERIES = 14


@pytest.fixture
def program():
    return ProgramFactory()


def change_url(referral) -> str:
    return reverse("admin:loyalty_referral_change", args=[referral.pk])


def shown(response) -> list[int]:
    return [row.pk for row in response.context["cl"].result_list]


def test_the_queue_lists_waiting_referrals_first_oldest_first_with_duplicates_linked(pm_client, program):
    converted = ReferralFactory(program=program, status=ReferralStatus.CONVERTED)
    first = ReferralFactory(program=program)
    qualified = ReferralFactory(program=program, status=ReferralStatus.QUALIFIED)
    duplicate = ReferralFactory(program=program, duplicate_of=first)

    response = pm_client.get(CHANGELIST)

    assert shown(response) == [first.pk, duplicate.pk, qualified.pk, converted.pk]
    assert f'<a href="{change_url(first)}">Referral {first.pk}</a>' in response.content.decode()


def test_the_duplicate_filter_lists_duplicates_or_first_referrals(pm_client, program):
    first = ReferralFactory(program=program)
    duplicate = ReferralFactory(program=program, duplicate_of=first)

    assert shown(pm_client.get(CHANGELIST, {"duplicate": "yes"})) == [duplicate.pk]
    assert shown(pm_client.get(CHANGELIST, {"duplicate": "no"})) == [first.pk]


def test_the_queue_costs_the_same_queries_for_3_and_30_referrals(pm_client, program):
    def queries_for(count: int) -> int:
        first = Referral.objects.first()
        while Referral.objects.count() < count:
            ReferralFactory(program=program, duplicate_of=first)
        with CaptureQueriesContext(connection) as queries:
            assert pm_client.get(CHANGELIST).status_code == 200
        return len(queries)

    few = queries_for(3)
    assert few == queries_for(30)
    assert few <= CHANGELIST_QUERIES


def test_qualify_then_convert_with_a_deal_amount_pays_the_referrer(pm_client, program, program_manager):
    referral_rule(program, points=500)
    referral = ReferralFactory(program=program)
    pm_client.post(CHANGELIST, {"action": "qualify", "_selected_action": [referral.pk]})
    selected = {"action": "convert", "_selected_action": [referral.pk]}

    page = pm_client.post(CHANGELIST, selected)
    assert "Convert referrals" in visible(page) and f"Referral {referral.pk} — " in visible(page)
    response = pm_client.post(CHANGELIST, {**selected, "apply": "1", "deal_amount": "12500.00"}, follow=True)

    assert messages_of(response) == [f"Converted 1 referral: Referral {referral.pk}."]
    referral.refresh_from_db()
    assert (referral.status, referral.deal_amount, referral.decided_by) == (
        ReferralStatus.CONVERTED,
        Decimal("12500.00"),
        program_manager,
    )
    entry = PointsEntry.objects.get(source_type=EntrySource.REFERRAL)
    assert (entry.account.member_id, entry.available_delta) == (referral.member_id, 500)


def test_bulk_actions_report_each_refusal_while_the_others_go_ahead(pm_client, program):
    waiting = ReferralFactory(program=program)
    done = ReferralFactory(program=program, status=ReferralStatus.CONVERTED)

    response = pm_client.post(CHANGELIST, {"action": "qualify", "_selected_action": [waiting.pk, done.pk]}, follow=True)

    assert messages_of(response) == [
        f"Referral {done.pk} is converted; it cannot be qualified now.",
        f"Qualified 1 referral: Referral {waiting.pk}.",
    ]
    done.refresh_from_db()
    assert done.status == ReferralStatus.CONVERTED


def test_reject_asks_for_the_reason_the_referrer_reads(pm_client, program):
    referral = ReferralFactory(program=program)
    selected = {"action": "reject", "_selected_action": [referral.pk]}

    again = pm_client.post(CHANGELIST, {**selected, "apply": "1", "reason": ""})
    assert "This field is required." in visible(again)
    referral.refresh_from_db()
    assert referral.status == ReferralStatus.SUBMITTED

    response = pm_client.post(CHANGELIST, {**selected, "apply": "1", "reason": "Already our customer."}, follow=True)

    assert messages_of(response) == [f"Rejected 1 referral: Referral {referral.pk}."]
    referral.refresh_from_db()
    assert (referral.status, referral.reason) == (ReferralStatus.REJECTED, "Already our customer.")


def test_the_referral_page_shows_the_original_every_referral_of_the_prospect_and_the_points(
    pm_client, program, program_manager
):
    referral_rule(program, points=500)
    first = ReferralFactory(program=program, company_id="CHE-1", member__partner__name="Rival Dealer Ltd")
    duplicate = ReferralFactory(program=program, company_id="che-1", duplicate_of=first)
    third = ReferralFactory(program=program, contact_email=duplicate.contact_email, duplicate_of=first)
    for to in (ReferralStatus.QUALIFIED, ReferralStatus.CONVERTED):
        referral_transition(referral=first, to=to, actor=program_manager)

    with CaptureQueriesContext(connection) as queries:
        response = pm_client.get(change_url(duplicate))

    assert response.status_code == 200
    text = visible(response)
    assert f"Referral {first.pk} : {first.company_name} by Rival Dealer Ltd" in text
    assert f"Referral {first.pk} by Rival Dealer Ltd" in text and f"Referral {third.pk} by" in text
    assert "None: points post when the referral is converted" in text
    assert len(queries) <= CHANGE_PAGE_QUERIES
    assert "+500 to" in visible(pm_client.get(change_url(first)))


def test_referrals_are_never_added_changed_or_deleted_and_only_program_managers_see_them(client, pm_client, program):
    referral = ReferralFactory(program=program, company_name="Alpha AG")

    assert pm_client.get(reverse("admin:loyalty_referral_add")).status_code == 403
    assert pm_client.post(change_url(referral), {"company_name": "HACKED"}).status_code == 403
    assert pm_client.get(reverse("admin:loyalty_referral_delete", args=[referral.pk])).status_code == 403
    actions = [value for value, _label in pm_client.get(CHANGELIST).context["action_form"].fields["action"].choices]
    assert actions == ["", "qualify", "convert", "reject"]
    client.force_login(UserFactory(is_staff=True))
    assert client.get(CHANGELIST).status_code == 403
    referral.refresh_from_db()
    assert referral.company_name == "Alpha AG"
