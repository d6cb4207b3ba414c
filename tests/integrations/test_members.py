"""Members through the API: PUT /members/by-external-id/<id>/ invites a new person as the site does (one e-mail) or
updates a membership through the services, POST /members/<id>/deactivation/ ends one, /members/ and /members/<id>/
read what the caller sees; memberships that become active or end publish member.joined / member.left."""

import threading

import pytest
from django.db import connection
from django.dispatch import receiver
from rest_framework.test import APIClient

from loyalty.common.events import domain_event
from partners import services
from partners.constants import MemberStatus, PartnerKind, PartnerStatus
from partners.models import Invitation, Member, MemberStatusChange, User
from tests.integrations.factories import ApiClientFactory, issue_key
from tests.integrations.helpers import problem
from tests.partners.factories import (
    MemberFactory,
    OwnerFactory,
    PartnerFactory,
    ProgramManagerFactory,
    UserFactory,
    role,
)

pytestmark = pytest.mark.django_db

MEMBERS = "/api/v1/members/"
EMAIL = "sophie.turner@northwater.example"


def upsert_url(external_id: str) -> str:
    return f"{MEMBERS}by-external-id/{external_id}/"


def deactivation_url(member) -> str:
    return f"{MEMBERS}{member.pk}/deactivation/"


@pytest.fixture
def partner():
    return PartnerFactory(external_id="CRM-P-1", legal_id="DE811234567", name="Northwater Heating Ltd")


@pytest.fixture
def body(partner):
    return {"partner": "CRM-P-1", "email": EMAIL, "full_name": "Sophie Turner", "role": "sales",
            "phone": "+49 30 1234567", "language": "de"}  # fmt: skip


@pytest.fixture
def writer(machine):
    return machine(scopes=["partners:write"])[0]


@pytest.fixture
def events():
    """The domain events published while the test runs, as (type, program_id, data)."""
    seen = []

    @receiver(domain_event, weak=False)
    def record(sender, event_type, program_id, data, **kwargs):
        seen.append((event_type, program_id, data))

    yield seen
    domain_event.disconnect(record)


@pytest.fixture
def put(writer, django_capture_on_commit_callbacks):
    """PUT a membership and run what its commit would (the invitation e-mail)."""

    def put(external_id, data, http=None):
        with django_capture_on_commit_callbacks(execute=True):
            return (http or writer).put(upsert_url(external_id), data, format="json")

    return put


def ids(response) -> list[int]:
    assert response.status_code == 200, response.content
    return [row["id"] for row in response.json()["results"]]


# Create and update ---------------------------------------------------------------------------------------------------


def test_a_new_membership_is_an_invitation_sent_once(put, body, partner, mailoutbox):
    response = put("CRM-M-1", body)

    assert response.status_code == 201, response.content
    member = Member.objects.get(external_id="CRM-M-1")
    assert response["Location"] == f"/api/v1/members/{member.pk}/"
    data = response.json()
    assert data == {
        "id": member.pk, "external_id": "CRM-M-1",
        "partner": {"id": partner.pk, "external_id": "CRM-P-1", "legal_id": "DE811234567",
                    "name": "Northwater Heating Ltd"},
        "email": EMAIL, "full_name": "Sophie Turner", "role": "sales", "status": "invited",
        "phone": "+49 30 1234567", "language": "de", "joined_at": None, "left_at": None,
        "created_at": data["created_at"], "updated_at": data["updated_at"],
    }  # fmt: skip
    assert [mail.to for mail in mailoutbox] == [[EMAIL]]
    assert Invitation.objects.filter(member=member).count() == 1


def test_the_same_details_again_change_and_send_nothing(put, body, mailoutbox):
    first = put("CRM-M-1", body)

    again = put("CRM-M-1", body)

    assert again.status_code == 200
    assert again.json() == first.json()  # updated_at included
    assert len(mailoutbox) == 1
    assert Invitation.objects.count() == 1
    assert Member.objects.count() == 1


def test_the_partner_may_be_named_by_its_legal_id(put, body, partner):
    response = put("CRM-M-1", body | {"partner": "de811234567"})

    assert response.json()["partner"]["id"] == partner.pk


def test_role_phone_and_language_are_updated_through_the_services(put, body, mailoutbox):
    put("CRM-M-1", body)

    response = put("CRM-M-1", body | {"role": "owner", "phone": "", "language": "fr"})

    assert response.status_code == 200, response.content
    member = Member.objects.get()
    assert (member.role.code, member.phone, member.language) == ("owner", "", "fr")
    assert len(mailoutbox) == 1


def test_a_field_left_out_keeps_its_value(put, body):
    put("CRM-M-1", body)

    response = put("CRM-M-1", {"partner": "CRM-P-1", "email": EMAIL, "role": "sales"})

    assert (response.json()["phone"], response.json()["language"]) == ("+49 30 1234567", "de")


def test_the_crm_names_a_person_until_they_sign_up(put, body, partner):
    put("CRM-M-1", body)
    renamed = put("CRM-M-1", body | {"full_name": "Sophie M. Turner"})
    user = User.objects.get(email=EMAIL)
    user.set_password("blue-kettle-Orchard-42")
    user.save()

    signed_up = put("CRM-M-1", body | {"full_name": "Someone Else"})

    assert renamed.json()["full_name"] == "Sophie M. Turner"
    assert signed_up.json()["full_name"] == "Sophie M. Turner"


def test_a_person_already_on_the_team_is_taken_over_without_an_invitation(put, body, partner, mailoutbox):
    existing = MemberFactory(partner=partner, user__email=EMAIL, user__full_name="Sophie T.", role=role("engineer"))

    response = put("CRM-M-1", body)

    assert response.status_code == 200, response.content
    existing.refresh_from_db()
    assert (existing.external_id, existing.status, existing.role.code) == ("CRM-M-1", MemberStatus.ACTIVE, "sales")
    assert existing.user.full_name == "Sophie T."  # they have signed up: their name is theirs
    assert mailoutbox == []
    assert Member.objects.count() == 1


def test_someone_who_left_is_invited_again_under_a_new_external_id(put, body, partner, mailoutbox):
    MemberFactory(partner=partner, user__email=EMAIL, status=MemberStatus.LEFT, external_id="CRM-M-OLD")

    response = put("CRM-M-2", body)

    assert response.status_code == 201, response.content
    assert response.json()["status"] == "invited"
    assert len(mailoutbox) == 1


@pytest.mark.parametrize(
    ("change", "field"),
    [({"partner": "CRM-P-2"}, "partner"), ({"email": "someone.else@northwater.example"}, "email")],
)
def test_a_membership_keeps_its_partner_and_its_person(put, body, change, field, mailoutbox):
    PartnerFactory(external_id="CRM-P-2")
    put("CRM-M-1", body)

    response = put("CRM-M-1", body | change | {"role": "owner"})

    assert problem(response, 422, "invalid")["errors"][0]["field"] == field
    member = Member.objects.get()
    assert (member.partner.external_id, member.user.email, member.role.code) == ("CRM-P-1", EMAIL, "sales")
    assert len(mailoutbox) == 1


def test_staff_a_closed_partner_and_a_second_external_id_are_refused(put, body, partner, mailoutbox):
    ProgramManagerFactory(email="boss@manufacturer.example")
    closed = PartnerFactory(external_id="CRM-P-CLOSED", status=PartnerStatus.CLOSED)
    MemberFactory(partner=partner, user__email="rep@northwater.example", external_id="CRM-M-9")

    staff = put("CRM-M-1", body | {"email": "boss@manufacturer.example"})
    closed_partner = put("CRM-M-1", body | {"partner": closed.external_id})
    second = put("CRM-M-1", body | {"email": "rep@northwater.example"})

    assert problem(staff, 422, "staff_cannot_join")["errors"][0]["field"] == "email"
    assert problem(closed_partner, 422, "partner_closed")["errors"][0]["field"] == "partner"
    assert problem(second, 422, "already_member")["errors"][0]["field"] == "email"
    assert not Member.objects.filter(external_id="CRM-M-1").exists()
    assert not User.objects.filter(email=EMAIL).exists()
    assert mailoutbox == []


def test_a_role_change_after_the_person_left_is_refused(put, body, partner):
    MemberFactory(partner=partner, user__email=EMAIL, status=MemberStatus.LEFT, external_id="CRM-M-1")

    problem(put("CRM-M-1", body | {"role": "owner"}), 422, "left")

    assert Member.objects.get().role.code == "sales"


@pytest.mark.parametrize(
    ("change", "field", "code"),
    [
        ({"email": "not-an-address"}, "email", "invalid"),
        ({"email": "x" * 250 + "@a.example"}, "email", "max_length"),
        ({"role": "astronaut"}, "role", "does_not_exist"),
        ({"partner": "CRM-P-NONE"}, "partner", "does_not_exist"),
        ({"phone": "call me"}, "phone", "invalid"),
        ({"phone": "+49" + "1" * 30}, "phone", "invalid max_length"),
        ({"language": "xx"}, "language", "invalid_choice"),
        ({"full_name": "x" * 151}, "full_name", "max_length"),
        ({"full_name": ["Sophie"]}, "full_name", "invalid"),
        ({"colour": "red"}, "colour", "unknown_field"),
    ],
)
def test_bad_input_is_400_with_the_field_and_changes_and_sends_nothing(put, body, change, field, code, mailoutbox):
    body = problem(put("CRM-M-1", body | change), 400, "invalid")

    assert [(error["field"], error["code"]) for error in body["errors"]] == [(field, c) for c in code.split()]
    assert not Member.objects.exists()
    assert mailoutbox == []


def test_missing_fields_and_a_bad_external_id_are_400(put, body):
    missing = put("CRM-M-1", {"email": EMAIL})
    too_long = put("x" * 81, body)

    assert {error["field"] for error in problem(missing, 400, "invalid")["errors"]} == {"partner", "role"}
    assert [error["field"] for error in problem(too_long, 400, "invalid")["errors"]] == ["external_id"]
    assert not Member.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_eight_concurrent_puts_of_a_new_membership_invite_once(mailoutbox):
    secret = issue_key(ApiClientFactory(scopes=["partners:write"]))
    PartnerFactory(external_id="CRM-P-1")
    body = {"partner": "CRM-P-1", "email": EMAIL, "role": "sales"}
    answers, barrier = [], threading.Barrier(8)

    def send():
        http = APIClient()
        http.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
        barrier.wait()
        try:
            answers.append(http.put(upsert_url("CRM-M-1"), body, format="json"))
        finally:
            connection.close()

    threads = [threading.Thread(target=send) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(answer.status_code for answer in answers) == [200] * 7 + [201]
    assert Member.objects.filter(external_id="CRM-M-1").count() == 1
    assert Invitation.objects.count() == 1
    assert [mail.to for mail in mailoutbox] == [[EMAIL]]


# Who may ------------------------------------------------------------------------------------------------------------


def test_writing_needs_partners_write_and_reading_members_read(machine, put, body):
    reader, _ = machine(scopes=["members:read"])
    partners_reader, _ = machine(scopes=["partners:read"])
    member = MemberFactory()

    problem(put("CRM-M-1", body, http=reader), 403, "missing_scope")
    problem(reader.post(deactivation_url(member), {}, format="json"), 403, "missing_scope")
    problem(partners_reader.get(MEMBERS), 403, "missing_scope")
    assert ids(reader.get(MEMBERS)) == [member.pk]
    assert not Member.objects.filter(external_id="CRM-M-1").exists()
    assert Member.objects.get(pk=member.pk).status == MemberStatus.ACTIVE


def test_people_may_read_but_not_write(person_api, put, body):
    owner = OwnerFactory()
    rep = MemberFactory(partner=owner.partner)
    http = person_api(owner.user)

    problem(put("CRM-M-1", body, http=http), 403, "forbidden")
    problem(http.post(deactivation_url(rep), {}, format="json"), 403, "forbidden")

    assert Member.objects.get(pk=rep.pk).status == MemberStatus.ACTIVE


def test_a_distributors_client_manages_the_people_of_its_partners_only(machine, put, body, partner):
    distributor = PartnerFactory(kind=PartnerKind.DISTRIBUTOR)
    dealer = PartnerFactory(parent=distributor, external_id="CRM-P-DEALER")
    stranger = MemberFactory(partner=partner)
    http, _ = machine(scopes=["partners:write", "members:read"], distributor=distributor)

    mine = put("CRM-M-1", body | {"partner": "CRM-P-DEALER"}, http=http)
    others = put("CRM-M-2", body | {"partner": "CRM-P-1", "email": "x@northwater.example"}, http=http)

    assert mine.status_code == 201, mine.content
    assert Member.objects.get(external_id="CRM-M-1").partner == dealer
    assert problem(others, 400, "invalid")["errors"][0]["field"] == "partner"
    problem(http.post(deactivation_url(stranger), {}, format="json"), 404, "not_found")
    assert ids(http.get(MEMBERS)) == [Member.objects.get(external_id="CRM-M-1").pk]
    problem(http.get(f"{MEMBERS}{stranger.pk}/"), 404, "not_found")


# Deactivation -------------------------------------------------------------------------------------------------------


def test_a_membership_is_ended_with_its_reason(writer, events):
    member = MemberFactory(external_id="CRM-M-1")

    response = writer.post(deactivation_url(member), {"reason": "Left the company"}, format="json")

    assert response.status_code == 200, response.content
    assert (response.json()["status"], response.json()["external_id"]) == ("left", "CRM-M-1")
    assert response.json()["left_at"] is not None
    move = MemberStatusChange.objects.get(member=member)
    assert (move.from_status, move.to_status, move.reason) == ("active", "left", "Left the company")
    assert events == [("member.left", None, {"member_id": member.pk, "partner_id": member.partner_id, "role": "sales"})]


def test_a_deactivation_sent_again_with_its_key_is_replayed_and_ends_it_once(writer, events):
    member = MemberFactory()

    first = writer.post(deactivation_url(member), {}, format="json", HTTP_IDEMPOTENCY_KEY="end-1")
    again = writer.post(deactivation_url(member), {}, format="json", HTTP_IDEMPOTENCY_KEY="end-1")
    without_key = writer.post(deactivation_url(member), {}, format="json")

    assert (first.status_code, again.status_code) == (200, 200)
    assert again.content == first.content
    assert again["Idempotent-Replayed"] == "true"
    problem(without_key, 422, "bad_transition")
    assert MemberStatusChange.objects.filter(member=member).count() == 1
    assert [event[0] for event in events] == ["member.left"]


def test_an_invited_person_cannot_be_deactivated_and_bad_input_changes_nothing(writer):
    invited = MemberFactory(status=MemberStatus.INVITED, joined_at=None)
    active = MemberFactory()

    problem(writer.post(deactivation_url(invited), {}, format="json"), 422, "bad_transition")
    too_long = writer.post(deactivation_url(active), {"reason": "x" * 301}, format="json")
    unknown = writer.post(deactivation_url(active), {"why": "gone"}, format="json")
    missing = writer.post(f"{MEMBERS}{active.pk + 1000}/deactivation/", {}, format="json")

    assert problem(too_long, 400, "invalid")["errors"][0]["field"] == "reason"
    assert problem(unknown, 400, "invalid")["errors"][0]["field"] == "why"
    problem(missing, 404, "not_found")
    assert set(Member.objects.values_list("status", flat=True)) == {MemberStatus.INVITED, MemberStatus.ACTIVE}
    assert not MemberStatusChange.objects.exists()


# Events -------------------------------------------------------------------------------------------------------------


def test_an_invited_person_who_joins_publishes_member_joined_once(put, body, events):
    put("CRM-M-1", body)
    member = Member.objects.get()
    manager = ProgramManagerFactory()
    token = services.invitation_resend(member=member, actor=manager).token

    services.invitation_accept(token=token, user=member.user)

    assert events == [("member.joined", None, {"member_id": member.pk, "partner_id": member.partner_id,
                                               "role": "sales"})]  # fmt: skip


def test_an_approval_publishes_member_joined_and_a_refusal_before_joining_publishes_nothing(events):
    waiting, refused = MemberFactory.create_batch(2, status=MemberStatus.PENDING_APPROVAL, joined_at=None)
    manager = ProgramManagerFactory()

    services.member_approve(member=waiting, actor=manager)
    services.member_deactivate(member=refused, actor=manager)

    assert events == [
        ("member.joined", None, {"member_id": waiting.pk, "partner_id": waiting.partner_id, "role": "sales"})
    ]


def test_a_cancelled_invitation_publishes_nothing(events):
    invited = MemberFactory(status=MemberStatus.INVITED, joined_at=None)

    services.invitation_cancel(member=invited, actor=ProgramManagerFactory())

    assert events == []


# Reading ------------------------------------------------------------------------------------------------------------


def test_a_client_reads_every_membership_of_every_status_newest_first(machine):
    http, _ = machine(scopes=["members:read"])
    members = [MemberFactory(status=status) for status in MemberStatus.values]

    assert ids(http.get(MEMBERS)) == [m.pk for m in reversed(members)]


def test_the_member_list_filters(machine, partner):
    http, _ = machine(scopes=["members:read"])
    sophie = MemberFactory(partner=partner, user__full_name="Sophie Turner", user__email=EMAIL,
                           external_id="CRM-M-1", role=role("owner"))  # fmt: skip
    left = MemberFactory(partner=partner, status=MemberStatus.LEFT, user__full_name="Tom Left")
    elsewhere = MemberFactory(user__full_name="Sophie Elsewhere")

    assert ids(http.get(MEMBERS, {"partner": partner.pk})) == [left.pk, sophie.pk]
    assert ids(http.get(MEMBERS, {"role": "owner"})) == [sophie.pk]
    assert ids(http.get(MEMBERS, {"status": "left"})) == [left.pk]
    assert ids(http.get(MEMBERS, {"q": "sophie"})) == [elsewhere.pk, sophie.pk]
    assert ids(http.get(MEMBERS, {"q": "turner northwater"})) == [sophie.pk]
    assert ids(http.get(MEMBERS, {"external_id": "CRM-M-1"})) == [sophie.pk]
    assert ids(http.get(MEMBERS, {"role": "astronaut"})) == []
    for bad in ({"status": "gone"}, {"partner": "x"}, {"q": "x" * 101}):
        assert problem(http.get(MEMBERS, bad), 400, "invalid")["errors"][0]["field"] == next(iter(bad))


def test_an_owner_sees_their_team_and_a_member_only_themselves(person_api):
    owner = OwnerFactory()
    rep = MemberFactory(partner=owner.partner)
    stranger = MemberFactory()

    owner_http, rep_http = person_api(owner.user), person_api(rep.user)

    assert ids(owner_http.get(MEMBERS)) == [rep.pk, owner.pk]
    assert ids(rep_http.get(MEMBERS)) == [rep.pk]
    assert owner_http.get(f"{MEMBERS}{rep.pk}/").json()["email"] == rep.user.email
    assert rep_http.get(f"{MEMBERS}{rep.pk}/").status_code == 200
    problem(rep_http.get(f"{MEMBERS}{owner.pk}/"), 404, "not_found")
    problem(owner_http.get(f"{MEMBERS}{stranger.pk}/"), 404, "not_found")


@pytest.mark.parametrize("rows", [3, 12])
def test_the_member_list_costs_the_same_queries_for_any_number_of_rows(machine, django_assert_num_queries, rows):
    http, _ = machine(scopes=["members:read"])
    for _ in range(rows):
        MemberFactory(partner=PartnerFactory(), role=role("engineer"))
    http.get(MEMBERS)  # the key's first use is recorded once

    with django_assert_num_queries(2):  # the key with its client, the page with users, partners and roles
        response = http.get(MEMBERS)

    assert len(ids(response)) == rows


@pytest.mark.parametrize("rows", [3, 12])
def test_an_owners_member_list_costs_the_same_queries(person_api, django_assert_num_queries, rows):
    owner = OwnerFactory()
    MemberFactory.create_batch(rows - 1, partner=owner.partner)
    http = person_api(owner.user)
    http.get(MEMBERS)

    with django_assert_num_queries(4):  # the token with its user, the membership, the programs, the page
        response = http.get(MEMBERS)

    assert len(ids(response)) == rows


def test_a_person_who_has_an_account_keeps_their_name(put, body, partner):
    UserFactory(email=EMAIL, full_name="Sophie From Before")

    response = put("CRM-M-1", body)

    assert response.status_code == 201, response.content
    assert response.json()["full_name"] == "Sophie From Before"
