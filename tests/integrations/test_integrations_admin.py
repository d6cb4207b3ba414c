"""The integrations' back office: machine clients (a key shown once on creation, rotation, revoking a key or the
client), webhook subscriptions (their secret, enabling again) and the delivery log (attempts, redelivery); only
program managers get in, and every list costs the same queries at 3 rows as at 12."""

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from integrations import delivery, keys, webhooks
from integrations.constants import DeliveryStatus
from integrations.models import ApiClient, ApiKey, WebhookAttempt, WebhookDelivery, WebhookSubscription
from partners.constants import PartnerKind
from tests.helpers import messages_of, visible
from tests.integrations.factories import ApiClientFactory, WebhookSubscriptionFactory, issue_key
from tests.loyalty.factories import ProgramFactory
from tests.partners.factories import AccountManagerFactory, OwnerFactory, PartnerFactory

pytestmark = pytest.mark.django_db

CLIENTS = reverse("admin:integrations_apiclient_changelist")
SUBSCRIPTIONS = reverse("admin:integrations_webhooksubscription_changelist")
DELIVERIES = reverse("admin:integrations_webhookdelivery_changelist")

# The queries each page makes; the same at 3 rows as at 12.
QUERIES = {"clients": 7, "subscriptions": 7, "deliveries": 6, "client page": 8, "delivery page": 5}


def change_url(obj) -> str:
    return reverse(f"admin:integrations_{obj._meta.model_name}_change", args=[obj.pk])


def act(client, url: str, action: str, objects, **extra):
    return client.post(url, {"action": action, ACTION_CHECKBOX_NAME: [obj.pk for obj in objects], **extra})


def secrets_in(messages: list[str]) -> list[str]:
    return [word for message in messages for word in message.split() if word.startswith("plk_")]


def deliveries(count: int, **fields) -> list[WebhookDelivery]:
    """`count` deliveries, each of its own event to one subscription per client (of its own program)."""
    made = []
    for _ in range(count):
        subscription = WebhookSubscriptionFactory()
        event = webhooks.event_record(event_type="points.earned", program_id=subscription.client.program_id, data={})
        made.append(event.deliveries.get())
    if fields:
        WebhookDelivery.objects.filter(pk__in=[d.pk for d in made]).update(**fields)
    return made


# Who gets in -------------------------------------------------------------------------------------------------------


def signed_in(user) -> Client:
    http = Client()
    http.force_login(user)
    return http


@pytest.mark.parametrize("url", [CLIENTS, SUBSCRIPTIONS, DELIVERIES])
def test_only_program_managers_open_the_integrations_pages(pm_client, url):
    account_manager = signed_in(AccountManagerFactory(is_staff=True))  # staff by mistake: still no way in
    partner_staff = signed_in(OwnerFactory().user)

    assert pm_client.get(url).status_code == 200
    assert account_manager.get(url).status_code == 403
    assert "/login/" in partner_staff.get(url)["Location"]
    assert "/login/" in Client().get(url)["Location"]


def test_the_admin_index_shows_integrations_to_program_managers_only(pm_client):
    account_manager = signed_in(AccountManagerFactory(is_staff=True))

    assert "Webhook deliveries" in visible(pm_client.get(reverse("admin:index")))
    assert "Webhook deliveries" not in visible(account_manager.get(reverse("admin:index")))


# Machine clients ----------------------------------------------------------------------------------------------------


def test_registering_a_client_shows_its_key_once_and_keeps_only_its_hash(pm_client, program_manager):
    program = ProgramFactory()
    distributor = PartnerFactory(kind=PartnerKind.DISTRIBUTOR)
    add = reverse("admin:integrations_apiclient_add")
    page = pm_client.get(add)
    assert 'type="checkbox" name="scopes" value="sales:write"' in page.content.decode()

    response = pm_client.post(
        add,
        {"name": "Demo ERP", "program": program.pk, "scopes": ["sales:write", "balances:read"],
         "distributor": distributor.pk, "sales_source": "", "requests_per_minute": ""},
        follow=True,
    )  # fmt: skip

    client = ApiClient.objects.get(name="Demo ERP")
    assert (client.program, sorted(client.scopes), client.distributor, client.created_by) == (
        program, ["balances:read", "sales:write"], distributor, program_manager,
    )  # fmt: skip
    [secret] = secrets_in(messages_of(response) or [str(m) for m in response.context["messages"]])
    key = client.keys.get()
    assert keys.find(secret) == key
    assert secret not in key.secret_hash and len(key.secret_hash) == 64
    assert secret not in pm_client.get(change_url(client)).content.decode()  # never shown again
    assert key.prefix in visible(pm_client.get(change_url(client)))


def test_a_distributor_client_must_name_a_distributor(pm_client):
    dealer = PartnerFactory(kind=PartnerKind.DEALER)

    response = pm_client.post(
        reverse("admin:integrations_apiclient_add"),
        {"name": "Feed", "program": ProgramFactory().pk, "scopes": ["sales:write"], "distributor": dealer.pk},
    )

    assert response.status_code == 200
    assert f"{dealer.name} is not a distributor." in visible(response)
    assert not ApiClient.objects.exists()


def test_issuing_a_new_key_shows_it_once_and_the_old_key_still_works(pm_client):
    client = ApiClientFactory()
    old = issue_key(client)

    response = act(pm_client, CLIENTS, "issue_key", [client])

    [new] = secrets_in(messages_of(response))
    assert keys.find(new).client == client
    assert keys.find(old) is not None
    assert client.keys.count() == 2


def test_a_key_is_revoked_from_the_clients_page_and_the_other_keeps_working(pm_client):
    client = ApiClientFactory()
    first, second = issue_key(client), issue_key(client)
    first_key = ApiKey.objects.get(prefix=first.split("_")[1])
    revoke = reverse("admin:integrations_apiclient_revoke_key", args=[client.pk])
    page = pm_client.get(change_url(client)).content.decode()
    assert f'formaction="{revoke}"' in page and f'name="key" value="{first_key.pk}"' in page

    response = pm_client.post(revoke, {"key": first_key.pk})

    assert response.status_code == 302
    assert messages_of(response) == [f"Key {first_key.prefix} is revoked."]
    assert (keys.find(first), keys.find(second).client) == (None, client)


@pytest.mark.parametrize("key", ["", "abc", "other client's"])
def test_revoking_a_key_the_client_does_not_have_changes_nothing(pm_client, key):
    client, other = ApiClientFactory(), ApiClientFactory()
    mine, theirs = issue_key(client), issue_key(other)
    if key == "other client's":
        key = ApiKey.objects.get(client=other).pk

    response = pm_client.post(reverse("admin:integrations_apiclient_revoke_key", args=[client.pk]), {"key": key})

    assert messages_of(response) == ["No such key of this client."]
    assert keys.find(mine) is not None and keys.find(theirs) is not None


def test_revoking_a_key_needs_a_post_and_a_program_manager(pm_client):
    am_staff_client = signed_in(AccountManagerFactory(is_staff=True))
    client = ApiClientFactory()
    issue_key(client)
    revoke = reverse("admin:integrations_apiclient_revoke_key", args=[client.pk])
    key = client.keys.get().pk

    assert pm_client.get(revoke).status_code == 405
    assert am_staff_client.post(revoke, {"key": key}).status_code == 403
    assert client.keys.get().revoked_at is None


def test_revoking_a_client_asks_first_then_stops_its_keys_and_webhooks(pm_client):
    client = ApiClientFactory(name="Old ERP")
    secret = issue_key(client)
    subscription = WebhookSubscriptionFactory(client=client)

    asked = act(pm_client, CLIENTS, "revoke_client", [client])
    assert asked.status_code == 200 and "This cannot be undone" in visible(asked)
    assert keys.find(secret) is not None

    done = act(pm_client, CLIENTS, "revoke_client", [client], apply="Revoke")

    assert messages_of(done) == ["Revoked 1 client: Old ERP."]
    assert keys.find(secret) is None
    subscription.refresh_from_db()
    assert (subscription.is_active, subscription.disabled_reason) == (False, "client revoked")


def test_the_clients_list_costs_the_same_queries_for_3_and_12_clients(pm_client, django_assert_num_queries):
    for count in (3, 12):
        for client in ApiClientFactory.create_batch(count - ApiClient.objects.count()):
            issue_key(client)
        with django_assert_num_queries(QUERIES["clients"]):
            response = pm_client.get(CLIENTS)
        assert len(response.context["cl"].result_list) == count


def test_a_clients_page_costs_the_same_queries_for_3_and_12_keys(pm_client, django_assert_num_queries):
    client = ApiClientFactory()
    for count in (3, 12):
        while client.keys.count() < count:
            issue_key(client)
        with django_assert_num_queries(QUERIES["client page"]):
            assert pm_client.get(change_url(client)).status_code == 200


# Webhook subscriptions -----------------------------------------------------------------------------------------------


def test_a_new_subscription_gets_its_secret_which_its_page_shows(pm_client):
    client = ApiClientFactory()

    response = pm_client.post(
        reverse("admin:integrations_webhooksubscription_add"),
        {"client": client.pk, "url": "https://erp.example/hooks", "event_types": ["points.earned", "claim.decided"]},
    )

    assert response.status_code == 302
    subscription = WebhookSubscription.objects.get()
    assert subscription.secret.startswith("whsec_") and subscription.event_types == ["points.earned", "claim.decided"]
    assert subscription.secret in visible(pm_client.get(change_url(subscription)))


@pytest.mark.parametrize(
    ("url", "revoked", "error"),
    [
        ("ftp://erp.example/hooks", False, "Webhooks go to http or https addresses only."),
        ("https://erp.example/hooks", True, "This client is revoked."),
    ],
)
def test_a_subscription_needs_a_web_address_and_a_client_not_revoked(pm_client, url, revoked, error):
    client = ApiClientFactory(revoked_at=timezone.now() if revoked else None)

    response = pm_client.post(
        reverse("admin:integrations_webhooksubscription_add"),
        {"client": client.pk, "url": url, "event_types": ["points.earned"]},
    )

    assert response.status_code == 200 and error in visible(response)
    assert not WebhookSubscription.objects.exists()


def test_enable_again_turns_a_disabled_subscription_back_on(pm_client):
    subscription = WebhookSubscriptionFactory()
    delivery.subscription_disable(subscription_id=subscription.pk, reason="5 deliveries in a row failed")

    response = act(pm_client, SUBSCRIPTIONS, "enable", [subscription])

    assert messages_of(response) == [f"Enabled again: 1 subscription (#{subscription.pk})."]
    subscription.refresh_from_db()
    assert (subscription.is_active, subscription.disabled_reason, subscription.failures_in_a_row) == (True, "", 0)


def test_the_subscriptions_list_costs_the_same_queries_for_3_and_12(pm_client, django_assert_num_queries):
    for count in (3, 12):
        WebhookSubscriptionFactory.create_batch(count - WebhookSubscription.objects.count())
        with django_assert_num_queries(QUERIES["subscriptions"]):
            response = pm_client.get(SUBSCRIPTIONS)
        assert len(response.context["cl"].result_list) == count


# Deliveries ---------------------------------------------------------------------------------------------------------


def test_the_delivery_log_costs_the_same_queries_for_3_and_12_and_filters_by_status_and_type(
    pm_client, django_assert_num_queries
):
    for count in (3, 12):
        deliveries(count - WebhookDelivery.objects.count())
        with django_assert_num_queries(QUERIES["deliveries"]):
            response = pm_client.get(DELIVERIES)
        assert len(response.context["cl"].result_list) == count

    failed = WebhookDelivery.objects.order_by("pk").first()
    WebhookDelivery.objects.filter(pk=failed.pk).update(status=DeliveryStatus.FAILED)
    by_status = pm_client.get(DELIVERIES, {"status__exact": "failed"})
    assert [row.pk for row in by_status.context["cl"].result_list] == [failed.pk]
    by_type = pm_client.get(DELIVERIES, {"event__type__exact": "claim.decided"})
    assert list(by_type.context["cl"].result_list) == []


def test_a_deliverys_page_shows_its_attempts_and_answers_at_a_fixed_cost(pm_client, django_assert_num_queries):
    [pending] = deliveries(1)
    pm_client.get(change_url(pending))  # the first page reads the content types, cached from then on
    for count in (3, 12):
        for n in range(count - pending.attempt_log.count()):
            WebhookAttempt.objects.create(
                delivery=pending, at=timezone.now(), response_status=500, response_body=f"busy {n}", milliseconds=12
            )
        with django_assert_num_queries(QUERIES["delivery page"]):
            response = pm_client.get(change_url(pending))
        page = visible(response)
        assert pending.event.public_id in page and "busy 0" in page


def test_redeliver_makes_a_new_attempt_now_with_the_same_webhook_id(
    pm_client, monkeypatch, django_capture_on_commit_callbacks
):
    sent = []

    def post(url, body, headers):
        sent.append(headers["webhook-id"])
        return delivery.Answer(200, "ok")

    monkeypatch.setattr(delivery, "post", post)
    done, disabled = deliveries(2, status=DeliveryStatus.SUCCEEDED, attempts=1, next_attempt_at=None)
    WebhookSubscription.objects.filter(pk=disabled.subscription_id).update(is_active=False)

    with django_capture_on_commit_callbacks(execute=True):
        response = act(pm_client, DELIVERIES, "redeliver", [done, disabled])

    assert sent == [done.event.public_id]
    done.refresh_from_db()
    assert (done.status, done.attempts) == (DeliveryStatus.SUCCEEDED, 2)
    assert messages_of(response) == [
        f"Delivery {disabled.pk}: the subscription is disabled; enable it again first.",
        f"Redelivering 1 delivery (#{done.pk}): the attempt shows in its log once it is made.",
    ]


def test_nobody_adds_or_changes_a_delivery_by_hand(pm_client):
    [pending] = deliveries(1)

    assert pm_client.get(reverse("admin:integrations_webhookdelivery_add")).status_code == 403
    response = pm_client.post(change_url(pending), {"status": "succeeded"})
    assert response.status_code == 403
    pending.refresh_from_db()
    assert pending.status == DeliveryStatus.PENDING
