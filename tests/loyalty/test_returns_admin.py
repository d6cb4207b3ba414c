"""The back office of equipment returns: the queue (waiting first, oldest first) and its query count, search by a
serial number's variant, confirming in bulk (points post, the cap said, each refusal reported while the others go
ahead), rejecting with a reason (serials released), the return's page, and nothing edited by hand."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from loyalty.constants import EntrySource, ReturnStatus
from loyalty.models import EquipmentReturn, PointsEntry
from loyalty.services import returns as services
from tests.helpers import messages_of, visible
from tests.loyalty.factories import ProgramFactory
from tests.loyalty.factories_returns import (
    CollectionPointFactory,
    EquipmentReturnFactory,
    ReturnTypeFactory,
    returns_rule,
)
from tests.partners.factories import MemberFactory

pytestmark = pytest.mark.django_db
CHANGELIST = reverse("admin:loyalty_equipmentreturn_changelist")
CHANGELIST_QUERIES = 14


@pytest.fixture
def program():
    return ProgramFactory(starts_on=timezone.localdate() - timedelta(days=400))


@pytest.fixture
def cartridge(program):
    return ReturnTypeFactory(program=program, name="Toner cartridge", requires_serials=False)


@pytest.fixture
def depot(program):
    return CollectionPointFactory(program=program, name="Central depot")


def register(member, program, return_type, point, quantity=1, **fields):
    return services.return_register(
        member=member,
        program=program,
        return_type=return_type,
        collection_point=point,
        quantity=quantity,
        returned_on=timezone.localdate(),
        **fields,
    )


def shown(response) -> list[int]:
    return [row.pk for row in response.context["cl"].result_list]


def test_the_queue_lists_waiting_returns_first_oldest_first(pm_client, program, cartridge, depot, program_manager):
    first = register(MemberFactory(), program, cartridge, depot, 2)
    decided = register(MemberFactory(), program, cartridge, depot, 3)
    services.return_reject(return_id=decided.pk, actor=program_manager, reason="Nothing arrived.")
    last = register(MemberFactory(), program, cartridge, depot, 4)

    response = pm_client.get(CHANGELIST)

    assert shown(response) == [first.pk, last.pk, decided.pk]
    assert "Toner cartridge" in visible(response) and "Central depot" in visible(response)


def test_the_search_finds_a_return_by_a_variant_of_its_serial(pm_client, program, depot):
    scanner = ReturnTypeFactory(program=program, requires_serials=True)
    wanted = register(MemberFactory(), program, scanner, depot, 1, serials=["AB-123"])
    register(MemberFactory(), program, scanner, depot, 1, serials=["AB-124"])

    response = pm_client.get(CHANGELIST, {"q": "ab 12 3"})

    assert shown(response) == [wanted.pk]


def test_the_queue_costs_the_same_queries_for_3_and_30_returns(pm_client, program, cartridge, depot):
    def queries_for(count: int) -> int:
        while EquipmentReturn.objects.count() < count:
            EquipmentReturnFactory(program=program, return_type=cartridge, collection_point=depot)
        with CaptureQueriesContext(connection) as queries:
            assert pm_client.get(CHANGELIST).status_code == 200
        return len(queries)

    few = queries_for(3)
    assert few == queries_for(30)
    assert few <= CHANGELIST_QUERIES


def test_bulk_confirm_pays_says_the_cap_and_reports_each_refusal(pm_client, program, cartridge, depot):
    returns_rule(program, points=100, cap=10_000)
    member = MemberFactory()
    one = register(member, program, cartridge, depot, 80)
    two = register(member, program, cartridge, depot, 40)
    done = register(MemberFactory(), program, cartridge, depot, 1)
    pm_client.post(CHANGELIST, {"action": "confirm", "_selected_action": [done.pk]})

    response = pm_client.post(
        CHANGELIST, {"action": "confirm", "_selected_action": [one.pk, two.pk, done.pk]}, follow=True
    )

    assert messages_of(response)[-3:] == [
        f"Return {done.pk} is confirmed already; it cannot be decided again.",
        f"Confirmed (points posted) 2 returns: Return {one.pk}, Return {two.pk}.",
        f"Return {two.pk} paid 2,000 of 4,000 points: the member's cap held back the rest (the member is told).",
    ]
    entries = PointsEntry.objects.filter(source_type=EntrySource.RETURN, account__member=member).order_by("pk")
    assert [e.available_delta for e in entries] == [8_000, 2_000]


def test_reject_asks_for_a_reason_then_rejects_and_releases_the_serials(pm_client, program, depot, program_manager):
    scanner = ReturnTypeFactory(program=program, requires_serials=True)
    made = register(MemberFactory(), program, scanner, depot, 1, serials=["SN-1"])
    selected = {"action": "reject", "_selected_action": [made.pk]}

    page = pm_client.post(CHANGELIST, selected)
    assert page.status_code == 200 and "Reject returns" in visible(page)
    made.refresh_from_db()
    assert made.status == ReturnStatus.REGISTERED

    response = pm_client.post(CHANGELIST, {**selected, "apply": "1", "reason": "Empty box."}, follow=True)

    assert messages_of(response)[-1] == f"Rejected 1 return: Return {made.pk}."
    made.refresh_from_db()
    assert (made.status, made.reason, made.decided_by) == (ReturnStatus.REJECTED, "Empty box.", program_manager)
    assert list(made.serials.values_list("is_released", flat=True)) == [True]


def test_a_return_page_shows_serials_and_history_and_cannot_be_changed(pm_client, program, depot):
    scanner = ReturnTypeFactory(program=program, requires_serials=True)
    made = register(MemberFactory(), program, scanner, depot, 2, serials=["SN-1", "SN-2"])
    url = reverse("admin:loyalty_equipmentreturn_change", args=[made.pk])

    with CaptureQueriesContext(connection) as queries:
        page = pm_client.get(url)

    assert page.status_code == 200 and "SN1" in visible(page) and "Waiting for confirmation" in visible(page)
    assert len(queries) <= 20
    assert pm_client.post(url, {"quantity": "200"}).status_code == 403
    made.refresh_from_db()
    assert made.quantity == 2


def test_return_types_and_collection_points_are_set_up_in_the_back_office(pm_client, program):
    for model in ("returntype", "collectionpoint"):
        assert pm_client.get(reverse(f"admin:loyalty_{model}_add")).status_code == 200
