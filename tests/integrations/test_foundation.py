"""What every API operation gets (integrations.api): authentication by key or token, scopes, problem documents,
rate limits, idempotency, the schema and its docs page."""

import json
import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.test import override_settings
from django.utils import timezone
from rest_framework.test import APIClient

from integrations import idempotency, keys
from integrations.models import IdempotencyRecord
from partners.models import Region
from tests.integrations.factories import ApiClientFactory, issue_key
from tests.integrations.helpers import problem
from tests.partners.factories import MemberFactory, ProgramManagerFactory

pytestmark = pytest.mark.django_db

ME = "/api/v1/me/"
REGIONS = "/api/v1/test/regions/"


# Who is calling ----------------------------------------------------------------------------------------------------


def test_a_client_key_says_who_is_calling(machine):
    http, client = machine(scopes=["sales:write", "balances:read"])

    response = http.get(ME)

    assert response.status_code == 200
    assert response.json() | {"name": ""} == {
        "kind": "client", "name": "", "program": client.program.slug, "scopes": ["balances:read", "sales:write"],
        "distributor_id": None, "member_id": None, "partner_id": None,
    }  # fmt: skip
    client.refresh_from_db()
    assert client.last_used_at is not None


@pytest.mark.parametrize(
    "header",
    ["", "Bearer", "Bearer plk_nope_nope", "Bearer plk_a b", "Basic dXNlcjpwYXNz", "Bearer plx_123456789abc_secret"],
)
def test_no_key_or_a_bad_one_is_401_with_how_to_sign_in(header):
    http = APIClient()
    if header:
        http.credentials(HTTP_AUTHORIZATION=header)

    code = "authentication_failed" if header.startswith("Bearer") else "not_authenticated"
    body = problem(http.get(ME), 401, code)

    assert body["instance"] == ME


def test_a_right_prefix_with_a_wrong_secret_is_refused():
    client = ApiClientFactory()
    prefix = issue_key(client).split("_")[1]
    http = APIClient()
    http.credentials(HTTP_AUTHORIZATION=f"Bearer plk_{prefix}_{'x' * 43}")

    problem(http.get(ME), 401, "authentication_failed")


def test_revoked_keys_and_clients_and_expired_tokens_are_refused():
    client = ApiClientFactory()
    first, second = issue_key(client), issue_key(client)
    http = APIClient()

    keys.key_revoke(key=client.keys.get(prefix=first.split("_")[1]))
    http.credentials(HTTP_AUTHORIZATION=f"Bearer {first}")
    problem(http.get(ME), 401, "authentication_failed")
    http.credentials(HTTP_AUTHORIZATION=f"Bearer {second}")  # rotation: the other key still works
    assert http.get(ME).status_code == 200

    keys.client_revoke(client=client)
    problem(http.get(ME), 401, "authentication_failed")

    member = MemberFactory()
    token = keys.token_issue(user=member.user)
    token.row.__class__.objects.filter(pk=token.row.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    http.credentials(HTTP_AUTHORIZATION=f"Bearer {token.secret}")
    problem(http.get(ME), 401, "authentication_failed")


def test_a_member_gets_a_token_with_their_password_and_signs_it_out():
    member = MemberFactory()
    http = APIClient()

    response = http.post(
        "/api/v1/auth/tokens/", {"email": member.user.email, "password": "correct-horse-battery", "device": "Phone"},
        format="json",
    )  # fmt: skip

    assert response.status_code == 201
    token = response.json()["token"]
    assert token.startswith("plt_")
    http.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    me = http.get(ME).json()
    assert (me["kind"], me["member_id"], me["partner_id"]) == ("person", member.pk, member.partner_id)
    assert http.post("/api/v1/auth/tokens/revoke/").status_code == 204
    problem(http.get(ME), 401, "authentication_failed")


def test_a_wrong_password_and_staff_get_no_token():
    member, manager = MemberFactory(), ProgramManagerFactory()
    http = APIClient()

    wrong = http.post("/api/v1/auth/tokens/", {"email": member.user.email, "password": "nope"}, format="json")
    staff = http.post(
        "/api/v1/auth/tokens/", {"email": manager.email, "password": "correct-horse-battery"}, format="json"
    )

    problem(wrong, 401, "invalid_credentials")
    problem(staff, 403, "forbidden")
    assert not member.user.api_tokens.exists() and not manager.api_tokens.exists()


# Problems ----------------------------------------------------------------------------------------------------------


@pytest.mark.urls("tests.integrations.urls_for_tests")
def test_bad_json_wrong_types_and_unknown_fields_are_400_with_the_fields(machine):
    http, _ = machine()

    malformed = http.post(REGIONS, data=b'{"code": ', content_type="application/json")
    wrong = http.post(REGIONS, {"code": ["a"]}, format="json")
    unknown = http.post(REGIONS, {"code": "north", "colour": "red"}, format="json")
    not_json = http.post(REGIONS, data=b"code=north", content_type="application/x-www-form-urlencoded")

    problem(malformed, 400, "malformed")
    assert problem(wrong, 400, "invalid")["errors"] == [
        {"field": "code", "code": "invalid", "reason": "Not a valid string."}
    ]
    assert problem(unknown, 400, "invalid")["errors"] == [
        {"field": "colour", "code": "unknown_field", "reason": "Unknown field."}
    ]
    problem(not_json, 415, "unsupported_media_type")
    assert not Region.objects.filter(code="north").exists()


@pytest.mark.urls("tests.integrations.urls_for_tests")
def test_a_domain_refusal_is_422_with_its_code_and_field(machine):
    http, _ = machine()

    body = problem(http.post(REGIONS, {"code": "none"}, format="json"), 422, "bad_region")

    assert body["errors"] == [{"field": "code", "code": "bad_region", "reason": "No region may be called none."}]


@pytest.mark.urls("tests.integrations.urls_for_tests")
def test_a_client_without_the_scope_is_refused_and_changes_nothing(machine):
    http, _ = machine(scopes=["sales:write"])

    problem(http.post(REGIONS, {"code": "north"}, format="json"), 403, "missing_scope")

    assert not Region.objects.filter(code="north").exists()


@pytest.mark.urls("tests.integrations.urls_for_tests")
def test_a_person_may_not_call_a_machine_operation(person_api):
    http = person_api(MemberFactory().user)

    problem(http.post(REGIONS, {"code": "north"}, format="json"), 403, "forbidden")


@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=1024 * 1024)
@pytest.mark.urls("tests.integrations.urls_for_tests")
def test_a_body_too_large_is_413(machine):
    http, _ = machine()
    body = json.dumps({"code": "x" * (2 * 1024 * 1024)}).encode()

    problem(http.post(REGIONS, data=body, content_type="application/json"), 413, "too_large")


def test_an_unknown_api_address_is_a_problem_not_a_page():
    for path in ("/api/", "/api/v2/me/", "/api/v1/nothing/"):
        problem(APIClient().get(path), 404, "not_found")


# Rate limits -------------------------------------------------------------------------------------------------------


def test_a_client_over_its_rate_gets_429_with_retry_after_and_the_headers(machine):
    http, _ = machine(requests_per_minute=3)

    answers = [http.get(ME) for _ in range(4)]

    assert [a.status_code for a in answers[:3]] == [200, 200, 200]
    assert [a["RateLimit-Remaining"] for a in answers[:3]] == ["2", "1", "0"]
    assert answers[0]["RateLimit-Limit"] == "3"
    body = problem(answers[3], 429, "throttled")
    assert 1 <= int(answers[3]["Retry-After"]) <= 60
    assert body["detail"].startswith("Too many requests: try again in ")


def test_each_client_has_its_own_count(machine):
    first, _ = machine(requests_per_minute=1)
    second, _ = machine(requests_per_minute=1)

    assert first.get(ME).status_code == 200
    assert second.get(ME).status_code == 200
    assert first.get(ME).status_code == 429


# Idempotency -------------------------------------------------------------------------------------------------------


@pytest.mark.urls("tests.integrations.urls_for_tests")
def test_the_same_key_and_body_replay_the_first_answer(machine):
    http, _ = machine()

    first = http.post(REGIONS, {"code": "north"}, format="json", HTTP_IDEMPOTENCY_KEY="k1")
    again = http.post(REGIONS, {"code": "north"}, format="json", HTTP_IDEMPOTENCY_KEY="k1")

    assert (first.status_code, again.status_code) == (201, 201)
    assert again.content == first.content
    assert again["Idempotent-Replayed"] == "true"
    assert Region.objects.filter(code="north").count() == 1


@pytest.mark.urls("tests.integrations.urls_for_tests")
def test_the_same_key_with_another_body_is_422_and_changes_nothing(machine):
    http, _ = machine()
    http.post(REGIONS, {"code": "north"}, format="json", HTTP_IDEMPOTENCY_KEY="k1")

    problem(http.post(REGIONS, {"code": "south"}, format="json", HTTP_IDEMPOTENCY_KEY="k1"), 422,
            "idempotency_key_reused")  # fmt: skip

    assert not Region.objects.filter(code="south").exists()


@pytest.mark.urls("tests.integrations.urls_for_tests")
def test_keys_are_each_callers_own_and_refusals_are_replayed_but_bad_input_is_not(machine):
    http, _ = machine()
    other, _ = machine()

    assert http.post(REGIONS, {"code": "north"}, format="json", HTTP_IDEMPOTENCY_KEY="k").status_code == 201
    assert other.post(REGIONS, {"code": "west"}, format="json", HTTP_IDEMPOTENCY_KEY="k").status_code == 201
    refused = http.post(REGIONS, {"code": "none"}, format="json", HTTP_IDEMPOTENCY_KEY="r")
    replayed = http.post(REGIONS, {"code": "none"}, format="json", HTTP_IDEMPOTENCY_KEY="r")
    bad = http.post(REGIONS, {"code": ""}, format="json", HTTP_IDEMPOTENCY_KEY="b")

    assert (refused.status_code, replayed.status_code, replayed["Idempotent-Replayed"]) == (422, 422, "true")
    assert bad.status_code == 400
    assert not IdempotencyRecord.objects.filter(key="b").exists()  # the same key may carry the corrected body
    assert http.post(REGIONS, {"code": "east"}, format="json", HTTP_IDEMPOTENCY_KEY="b").status_code == 201


@pytest.mark.urls("tests.integrations.urls_for_tests")
def test_a_bad_key_is_400_and_an_old_record_is_forgotten(machine):
    http, _ = machine()

    problem(http.post(REGIONS, {"code": "north"}, format="json", HTTP_IDEMPOTENCY_KEY="k" * 256), 400,
            "idempotency_key_invalid")  # fmt: skip
    http.post(REGIONS, {"code": "north"}, format="json", HTTP_IDEMPOTENCY_KEY="old")
    IdempotencyRecord.objects.update(created_at=timezone.now() - timedelta(hours=25))

    assert http.post(REGIONS, {"code": "north2"}, format="json", HTTP_IDEMPOTENCY_KEY="old").status_code == 201
    assert idempotency.tidy(now=timezone.now() + timedelta(hours=25)) == 1


@pytest.mark.django_db(transaction=True)
@pytest.mark.urls("tests.integrations.urls_for_tests")
def test_twenty_concurrent_requests_with_one_key_make_one_region_and_the_same_answer():
    client = ApiClientFactory()
    secret = issue_key(client)
    answers, barrier = [], threading.Barrier(20)

    def send():
        http = APIClient()
        http.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
        barrier.wait()
        try:
            answers.append(http.post(REGIONS, {"code": "north"}, format="json", HTTP_IDEMPOTENCY_KEY="same"))
        finally:
            connection.close()

    threads = [threading.Thread(target=send) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert Region.objects.filter(code="north").count() == 1
    assert {(a.status_code, a.content) for a in answers} == {(201, answers[0].content)}


# The schema and its docs -------------------------------------------------------------------------------------------


def test_the_schema_and_the_docs_page_are_served_from_our_own_files():
    schema = APIClient().get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    docs = APIClient().get("/api/v1/docs/")

    assert schema.status_code == 200
    spec = json.loads(schema.content)
    assert spec["info"]["title"] == "Partner Loyalty API"
    assert "/api/v1/me/" in spec["paths"]
    html = docs.content.decode()
    assert docs.status_code == 200
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in html
    assert "http" not in html.split("<body>")[1].replace("http-equiv", "")  # no outside address
    assert '<style nonce="' in html


def test_a_nul_byte_in_a_parameter_is_a_problem_document_under_the_api(machine):
    http, _ = machine()

    body = problem(http.get(ME, {"q": "a\x00b"}), 400, "invalid")

    assert body["detail"] == "The address or a request parameter contains a NUL character."
    problem(http.get("/api/v1/partners/by-external-id/a%00b/"), 400, "invalid")


@pytest.mark.urls("tests.integrations.urls_for_tests")
def test_a_nul_character_in_the_body_is_refused_before_anything_reads_it(machine):
    http, _ = machine()

    body = problem(http.post(REGIONS, {"code": "no\x00rth"}, format="json"), 400, "invalid")

    assert body["errors"] == [
        {"field": "code", "code": "null_characters_not_allowed", "reason": "Contains a NUL character."}
    ]
    assert not Region.objects.exists()


@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("/api/v1/claims/", "submitted_since"),
        ("/api/v1/referrals/", "submitted_since"),
        ("/api/v1/orders/", "placed_since"),
        ("/api/v1/orders/", "updated_since"),
        ("/api/v1/partners/", "updated_since"),
    ],
)
def test_a_moment_filter_takes_any_offset_and_refuses_what_no_calendar_has(machine, path, name):
    http, _ = machine()

    far_offset = http.get(path, {name: "2859-01-26T23:50:19.7-16:02"})  # PostgreSQL refuses such an offset
    overflow = http.get(path, {name: "9999-12-31T23:59:59-10:00"})

    assert far_offset.status_code == 200, far_offset.content
    assert problem(overflow, 400, "invalid")["errors"][0]["field"] == name


def test_old_idempotent_outcomes_are_forgotten_hourly(settings, machine):
    from integrations.tasks import tidy_idempotency_records

    IdempotencyRecord.objects.create(
        owner="client:1", key="old", fingerprint="x", created_at=timezone.now() - timedelta(hours=25)
    )
    IdempotencyRecord.objects.create(owner="client:1", key="new", fingerprint="x", created_at=timezone.now())

    assert settings.CELERY_BEAT_SCHEDULE["tidy-idempotency-records"]["task"] == tidy_idempotency_records.name
    assert tidy_idempotency_records.delay().get() == 1
    assert list(IdempotencyRecord.objects.values_list("key", flat=True)) == ["new"]
