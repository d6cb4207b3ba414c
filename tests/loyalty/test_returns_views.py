"""The member site's return pages: my returns (the team's for an owner) with status, points and the cap note;
registering a return (refusals next to their field, nothing written); the collectors' returns to confirm (only
their points' returns), confirming and rejecting; who may see what; the pages' query counts."""

from datetime import timedelta

import pytest
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
from tests.partners.factories import MemberFactory, OwnerFactory, PartnerFactory, ProgramManagerFactory, UserFactory

pytestmark = pytest.mark.django_db
LIST, NEW, TO_CONFIRM = reverse("return_list"), reverse("return_new"), reverse("return_to_confirm")


@pytest.fixture
def program():
    return ProgramFactory(starts_on=timezone.localdate() - timedelta(days=400))


@pytest.fixture
def cartridge(program):
    return ReturnTypeFactory(program=program, name="Toner cartridge")


@pytest.fixture
def collector():
    return PartnerFactory(name="Green Depot")


@pytest.fixture
def depot(program, collector):
    return CollectionPointFactory(program=program, name="Green Depot yard", partner=collector)


@pytest.fixture
def member():
    return MemberFactory(user__full_name="Rita Reseller", partner__name="Paper & Co")


@pytest.fixture
def signed_in(client, member):
    client.force_login(member.user)
    return client


def register(member, program, return_type, point, quantity=1, **fields):
    return services.return_register(
        member=member,
        program=program,
        return_type=return_type,
        collection_point=point,
        quantity=quantity,
        returned_on=fields.pop("returned_on", timezone.localdate()),
        **fields,
    )


# My returns ----------------------------------------------------------------------------------------------------


def test_my_returns_show_status_points_and_the_cap_note(signed_in, program, member, cartridge, depot):
    returns_rule(program, points=100, cap=10_000)
    pm = ProgramManagerFactory()
    for quantity in (80, 40):
        services.return_confirm(return_id=register(member, program, cartridge, depot, quantity).pk, actor=pm)
    register(member, program, cartridge, depot, 3)
    register(MemberFactory(), program, cartridge, depot, 7)  # someone else's

    response = signed_in.get(LIST)

    rows = list(response.context["page"])
    assert [(r.quantity, r.status, r.points) for r in rows] == [
        (3, ReturnStatus.REGISTERED, 0),
        (40, ReturnStatus.CONFIRMED, 2_000),
        (80, ReturnStatus.CONFIRMED, 8_000),
    ]
    text = visible(response)
    assert "40 × Toner cartridge" in text and "2,000" in text
    assert "Paid up to your monthly cap: 2,000 of 4,000 points." in text


def test_an_owner_sees_the_teams_returns(client, program, member, cartridge, depot):
    register(member, program, cartridge, depot, 2)
    register(MemberFactory(), program, cartridge, depot, 5)
    owner = OwnerFactory(partner=member.partner)
    client.force_login(owner.user)

    response = client.get(LIST)

    assert [r.member for r in response.context["page"]] == [member]
    assert "Rita Reseller" in visible(response)


def test_no_returns_yet_says_how_to_start(signed_in, program):
    response = signed_in.get(LIST)

    assert "No returns yet" in visible(response)
    assert NEW in response.content.decode()


def test_my_returns_cost_a_fixed_number_of_queries(
    signed_in, program, member, cartridge, depot, django_assert_max_num_queries
):
    for _ in range(3):
        EquipmentReturnFactory(program=program, member=member, return_type=cartridge, collection_point=depot)
    signed_in.get(LIST)
    with django_assert_max_num_queries(12) as few:
        signed_in.get(LIST)
    for _ in range(12):
        EquipmentReturnFactory(program=program, member=member, collection_point=depot)

    with django_assert_max_num_queries(len(few.captured_queries)):
        response = signed_in.get(LIST)

    assert len(response.context["page"]) == 15


# Registering ---------------------------------------------------------------------------------------------------


def test_registering_a_return_saves_it_and_goes_to_my_returns(signed_in, program, member, cartridge, depot):
    day = timezone.localdate() - timedelta(days=2)
    data = {
        "return_type": cartridge.pk,
        "quantity": "3",
        "returned_on": day.isoformat(),
        "collection_point": depot.pk,
        "serials": "A-1\n\nb 2\nC3\n",
    }

    response = signed_in.post(NEW, data)

    assert response.status_code == 302 and response.url == LIST
    made = EquipmentReturn.objects.get()
    assert (made.member, made.quantity, made.returned_on, made.collection_point) == (member, 3, day, depot)
    assert sorted(made.serials.values_list("serial", flat=True)) == ["A1", "B2", "C3"]
    assert messages_of(response) == [
        f"Return {made.pk} is registered: 3 × Toner cartridge. You earn its points once it is confirmed."
    ]


def test_a_serial_registered_before_is_shown_next_to_the_serials_and_nothing_is_written(
    signed_in, program, cartridge, depot
):
    register(MemberFactory(), program, cartridge, depot, 1, serials=["AB123"])
    data = {
        "return_type": cartridge.pk,
        "quantity": "1",
        "returned_on": timezone.localdate().isoformat(),
        "collection_point": depot.pk,
        "serials": "ab-12 3",
    }

    response = signed_in.post(NEW, data)

    assert response.status_code == 200
    assert response.context["form"].errors["serials"] == [
        "This serial number was registered in another return already: ab-12 3."
    ]
    assert EquipmentReturn.objects.count() == 1


def test_the_form_without_return_types_says_there_is_nothing_to_return(signed_in, program):
    response = signed_in.get(NEW)

    assert "Nothing to return yet" in visible(response)


@pytest.mark.parametrize("who", ["program manager", "user without membership", "anonymous"])
def test_registering_is_for_partner_members_only(client, program, who):
    if who == "program manager":
        client.force_login(ProgramManagerFactory())
    elif who == "user without membership":
        client.force_login(UserFactory())

    response = client.get(NEW)

    assert response.status_code == (302 if who == "anonymous" else 404)


# Returns to confirm --------------------------------------------------------------------------------------------


def test_a_collector_sees_only_the_returns_waiting_at_their_points(
    client, program, member, cartridge, depot, collector
):
    here = register(member, program, cartridge, depot, 4, serials=["S1", "S2", "S3", "S4"])
    elsewhere = CollectionPointFactory(program=program, partner=PartnerFactory())
    register(member, program, cartridge, elsewhere, 2)
    register(member, program, cartridge, CollectionPointFactory(program=program), 1)  # the program team's
    decided = register(member, program, cartridge, depot, 1)
    services.return_reject(return_id=decided.pk, actor=ProgramManagerFactory(), reason="Empty box")
    clerk = MemberFactory(partner=collector)
    client.force_login(clerk.user)

    response = client.get(TO_CONFIRM)

    assert [r.pk for r in response.context["page"]] == [here.pk]
    text = visible(response)
    assert "4 × Toner cartridge" in text and "Rita Reseller, Paper &amp; Co" in text and "4 serial numbers" in text


def test_confirming_pays_the_member_and_says_how_much(client, program, member, cartridge, depot, collector):
    returns_rule(program, points=100)
    made = register(member, program, cartridge, depot, 4)
    client.force_login(MemberFactory(partner=collector).user)

    response = client.post(reverse("return_confirm", args=[made.pk]))

    assert response.status_code == 302 and response.url == TO_CONFIRM
    assert messages_of(response) == [f"Return {made.pk} confirmed: 400 points paid to Rita Reseller."]
    entries = PointsEntry.objects.filter(source_type=EntrySource.RETURN, account__member=member)
    assert [e.available_delta + e.pending_delta for e in entries] == [400]


def test_rejecting_needs_a_reason_and_releases_the_return(client, program, member, cartridge, depot, collector):
    made = register(member, program, cartridge, depot, 4)
    client.force_login(MemberFactory(partner=collector).user)

    refused = client.post(reverse("return_reject", args=[made.pk]), {"reason": ""})
    made.refresh_from_db()
    assert made.status == ReturnStatus.REGISTERED
    assert messages_of(refused) == ["Say why the return is rejected: the member reads it."]

    response = client.post(reverse("return_reject", args=[made.pk]), {"reason": "Only 2 arrived."})

    made.refresh_from_db()
    assert (made.status, made.reason) == (ReturnStatus.REJECTED, "Only 2 arrived.")
    assert messages_of(response)[-1] == f"Return {made.pk} rejected; its serial numbers are free again."


def test_a_return_at_another_partners_point_cannot_be_decided_and_stays(client, program, member, cartridge, depot):
    returns_rule(program, points=100)
    made = register(member, program, cartridge, depot, 4)
    client.force_login(OwnerFactory().user)

    for url in (reverse("return_confirm", args=[made.pk]), reverse("return_reject", args=[made.pk])):
        assert client.post(url, {"reason": "No"}).status_code == 404

    made.refresh_from_db()
    assert made.status == ReturnStatus.REGISTERED
    assert not PointsEntry.objects.filter(source_type=EntrySource.RETURN).exists()
    assert "You run no collection point" in visible(client.get(TO_CONFIRM))


def test_deciding_needs_a_post(client, program, member, cartridge, depot, collector):
    made = register(member, program, cartridge, depot, 1)
    client.force_login(MemberFactory(partner=collector).user)

    assert client.get(reverse("return_confirm", args=[made.pk])).status_code == 405


def test_returns_to_confirm_cost_a_fixed_number_of_queries(
    client, program, member, cartridge, depot, collector, django_assert_max_num_queries
):
    register(member, program, cartridge, depot, 1, serials=["X1"])
    client.force_login(MemberFactory(partner=collector).user)
    client.get(TO_CONFIRM)
    with django_assert_max_num_queries(14) as few:
        client.get(TO_CONFIRM)
    for number in range(8):
        register(MemberFactory(), program, cartridge, depot, 2, serials=[f"Y{number}a", f"Y{number}b"])

    with django_assert_max_num_queries(len(few.captured_queries)):
        response = client.get(TO_CONFIRM)

    assert len(response.context["page"]) == 9
