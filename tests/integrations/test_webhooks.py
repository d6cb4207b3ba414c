"""The webhooks' outbox (integrations.webhooks): which domain events become webhook events and deliveries, for whom,
at what cost when nobody listens; and the services that publish those events."""

import base64
import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.core.cache import cache
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from integrations import webhooks
from integrations.constants import DeliveryStatus
from integrations.models import WebhookDelivery, WebhookEvent
from loyalty.common.events import domain_event, publish
from loyalty.constants import ClaimStatus, RejectionReason, TierMetric, TierPeriod
from loyalty.services import claims, ledger
from loyalty.services.ledger_bulk import ImportLedger
from loyalty.services.tiers import tier_evaluate
from rewards import services as rewards
from rewards.constants import OrderStatus, PaidBy
from tests.integrations.factories import ApiClientFactory, WebhookSubscriptionFactory
from tests.loyalty.factories import MemberAccountFactory, ProductFactory, ProgramFactory, RuleFactory, TierFactory
from tests.loyalty.test_claims_services import submit
from tests.loyalty.test_tiers import sale
from tests.partners.factories import MemberFactory, PartnerFactory, ProgramManagerFactory
from tests.rewards.factories import ADDRESS, MerchandiseFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def published():
    """Every domain event published during the test, as (type, program id, data)."""
    seen = []

    def listen(sender, *, event_type, program_id, data, **kwargs):
        seen.append((event_type, program_id, data))

    domain_event.connect(listen, dispatch_uid="tests.published")
    yield seen
    domain_event.disconnect(dispatch_uid="tests.published")


def subscribe(program, types=("points.earned",), **fields):
    return WebhookSubscriptionFactory(client=ApiClientFactory(program=program), event_types=list(types), **fields)


# The outbox --------------------------------------------------------------------------------------------------------


def test_an_event_becomes_one_webhook_event_and_a_delivery_per_subscription_that_wants_it_after_commit(
    django_capture_on_commit_callbacks,
):
    program = ProgramFactory()
    first, second = subscribe(program), subscribe(program, types=("points.earned", "claim.decided"))
    subscribe(program, types=("claim.decided",))  # another type
    subscribe(ProgramFactory())  # another program
    subscribe(program, is_active=False)  # disabled
    revoked = subscribe(program)
    revoked.client.revoked_at = revoked.created_at
    revoked.client.save()

    with django_capture_on_commit_callbacks() as callbacks:
        publish("points.earned", program_id=program.pk, data={"account_id": 7, "points": 40, "partner_id": 3})

    event = WebhookEvent.objects.get()
    assert re.fullmatch(r"msg_[0-9A-HJKMNP-TV-Z]{26}", event.public_id)
    assert (event.program_id, event.type, event.payload) == (
        program.pk, "points.earned", {"account_id": 7, "points": 40, "partner_id": 3},
    )  # fmt: skip
    deliveries = WebhookDelivery.objects.order_by("subscription_id")
    assert [(d.subscription_id, d.status, d.attempts, d.next_attempt_at) for d in deliveries] == [
        (first.pk, DeliveryStatus.PENDING, 0, event.created_at),
        (second.pk, DeliveryStatus.PENDING, 0, event.created_at),
    ]
    assert len(callbacks) == 2  # one sending task per delivery, queued for after the commit


def test_an_event_of_no_program_goes_to_the_subscriptions_of_every_program():
    one, other = (
        subscribe(ProgramFactory(), types=("member.joined",)),
        subscribe(ProgramFactory(), types=("member.joined",)),
    )
    subscribe(ProgramFactory(), types=("member.left",))

    publish("member.joined", program_id=None, data={"member_id": 1, "partner_id": 2, "role": "sales"})

    event = WebhookEvent.objects.get()
    assert event.program_id is None
    assert set(event.deliveries.values_list("subscription_id", flat=True)) == {one.pk, other.pk}


def test_event_ids_are_unique_and_later_ones_sort_after_earlier_ones():
    ids = [webhooks.new_event_id() for _ in range(50)]

    assert len(set(ids)) == 50
    assert webhooks.new_event_id(timezone.now() - timedelta(seconds=2)) < min(ids)
    assert webhooks.new_event_id(datetime(2030, 1, 1, tzinfo=UTC)) > max(ids)


def test_a_secret_is_whsec_and_32_bytes_of_base64():
    secret = webhooks.new_secret()

    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"))) == 32


def test_nothing_is_written_when_no_subscription_wants_the_event():
    subscribe(ProgramFactory())

    publish("points.earned", program_id=ProgramFactory().pk, data={"points": 1})
    publish("claim.decided", program_id=None, data={"claim_id": 1})

    assert not WebhookEvent.objects.exists() and not WebhookDelivery.objects.exists()


def test_a_rolled_back_change_leaves_no_webhook_event():
    program = ProgramFactory()
    subscribe(program)

    with pytest.raises(RuntimeError), transaction.atomic():
        publish("points.earned", program_id=program.pk, data={"points": 1})
        raise RuntimeError("the service failed after publishing")

    assert not WebhookEvent.objects.exists() and not WebhookDelivery.objects.exists()


# What it costs ----------------------------------------------------------------------------------------------------


def _earn_queries(account, key: str) -> list[str]:
    with CaptureQueriesContext(connection) as queries:
        ledger.earn(account=account, points=10, key=key)
    return [query["sql"] for query in queries.captured_queries]


def test_an_earn_with_no_subscriptions_costs_no_query_more_than_without_the_receiver():
    account = MemberAccountFactory()
    ApiClientFactory(program=account.program)  # a client, but no webhook
    ledger.earn(account=account, points=1, key="warm-up")  # the pairs are read once (one query), then cached

    with_receiver = _earn_queries(account, "with")
    domain_event.disconnect(dispatch_uid="integrations.webhooks")
    try:
        without_receiver = _earn_queries(account, "without")
    finally:
        domain_event.connect(webhooks.on_domain_event, dispatch_uid="integrations.webhooks")

    assert len(with_receiver) == len(without_receiver)
    assert not [sql for sql in with_receiver if "integrations_" in sql]


def test_an_event_someone_wants_costs_one_statement_however_many_subscriptions(django_assert_num_queries):
    program = ProgramFactory()
    member = MemberFactory()
    for _ in range(3):
        subscribe(program)
    webhooks.is_subscribed(program.pk, "points.earned")  # the pairs read and cached

    with django_assert_num_queries(1):
        publish("points.earned", program_id=program.pk, data={"member_id": member.pk, "partner_id": None})

    event = WebhookEvent.objects.get()
    assert (event.payload, event.deliveries.count()) == ({"member_id": member.pk, "partner_id": member.partner_id}, 3)


def test_the_subscribed_pairs_are_read_once_and_forgotten_when_a_subscription_changes():
    program = ProgramFactory()
    with CaptureQueriesContext(connection) as first:
        publish("points.earned", program_id=program.pk, data={"points": 1})
    with CaptureQueriesContext(connection) as second:
        publish("points.earned", program_id=program.pk, data={"points": 2})
    assert (len(first), len(second)) == (1, 0)

    subscription = subscribe(program)
    publish("points.earned", program_id=program.pk, data={"points": 3})
    assert WebhookEvent.objects.get().payload == {"points": 3}

    subscription.is_active = False
    subscription.save()
    publish("points.earned", program_id=program.pk, data={"points": 4})
    assert WebhookEvent.objects.count() == 1


def test_the_subscribed_pairs_are_forgotten_again_once_the_change_commits(django_capture_on_commit_callbacks):
    """Another process that read the pairs between the change and its commit cached them without the change: the
    commit makes them stale again."""
    program = ProgramFactory()
    with django_capture_on_commit_callbacks(execute=True):
        subscribe(program)
        version = cache.get(webhooks.VERSION_KEY)
        cache.set(webhooks.SUBSCRIBED_KEY, (version, frozenset(), frozenset()))  # what it read before the commit
        assert not webhooks.is_subscribed(program.pk, "points.earned")

    assert webhooks.is_subscribed(program.pk, "points.earned")


# What the services publish ----------------------------------------------------------------------------------------


def test_an_earn_publishes_points_earned_once_and_the_webhook_names_the_members_partner(published):
    account = MemberAccountFactory()
    subscribe(account.program)

    entry = ledger.earn(account=account, points=25, key="welcome", source_type="manual", source_id="w-1")
    ledger.earn(account=account, points=25, key="welcome", source_type="manual", source_id="w-1")  # a replay

    assert published == [
        ("points.earned", account.program_id, {
            "account_id": account.pk, "member_id": account.member_id, "partner_id": None, "points": 25,
            "entry_id": entry.pk, "source_type": "manual", "source_id": "w-1",
        }),
    ]  # fmt: skip
    assert WebhookEvent.objects.get().payload["partner_id"] == account.member.partner_id


def test_an_imports_postings_publish_points_earned_per_entry(published):
    program = ProgramFactory()
    member, partner = MemberFactory(), PartnerFactory()

    with connection.cursor() as cursor:
        posting = ImportLedger(program, sales_import_id=77, label="feed.csv", budget_rule_ids=[])
        posting.begin(cursor)
        posting.add(("m", member.pk), 30)
        posting.add(("p", partner.pk), 12)
        posting.finish(cursor)

    rows = {
        (data["member_id"], data["partner_id"], data["points"], data["source_type"], data["source_id"])
        for _type, _program, data in published
    }
    assert [event_type for event_type, _program, _data in published] == ["points.earned"] * 2
    assert rows == {(member.pk, None, 30, "sales_import", "77"), (None, partner.pk, 12, "sales_import", "77")}


def test_deciding_a_claim_publishes_claim_decided(published):
    program = ProgramFactory(claim_window_days=60, claim_auto_approve_below=Decimal("0"))
    RuleFactory(program=program, value=Decimal(10))
    manager = ProgramManagerFactory()
    member = MemberFactory()
    approved = submit(member, program, number="INV-1", lines=[(ProductFactory(), Decimal("3"), Decimal("900"))])
    rejected = submit(member, program, number="INV-2")
    published.clear()

    claims.claim_approve(claim=approved, actor=manager)
    claims.claim_reject(claim=rejected, actor=manager, reason=RejectionReason.values[0])

    decided = [(t, p, d) for t, p, d in published if t == "claim.decided"]
    assert decided == [
        ("claim.decided", program.pk, {"claim_id": approved.pk, "member_id": member.pk,
                                       "partner_id": member.partner_id, "status": ClaimStatus.APPROVED,
                                       "reason": "", "points": 30}),
        ("claim.decided", program.pk, {"claim_id": rejected.pk, "member_id": member.pk,
                                       "partner_id": member.partner_id, "status": ClaimStatus.REJECTED,
                                       "points": 0, "reason": RejectionReason.values[0]}),
    ]  # fmt: skip


def test_every_order_status_move_publishes_order_status_changed(published):
    program = ProgramFactory(order_approval_threshold=0)
    member = MemberFactory()
    ledger.earn(account=ledger.member_account(program=program, member=member), points=1000, key="seed")
    mug = MerchandiseFactory(program=program, points_price=100, stock=5)
    published.clear()

    order = rewards.order_place(
        member=member, program=program, items=[(mug, 1)], paid_by=PaidBy.MEMBER, checkout_key="c-1", address=ADDRESS
    )
    manager = ProgramManagerFactory()
    rewards.order_transition(order=order, to=OrderStatus.APPROVED, actor=manager)
    rewards.order_transition(
        order=order, to=OrderStatus.FULFILLED, actor=manager, carrier="DHL", tracking_number="JD0001"
    )

    moves = [(d["from_status"], d["to_status"], d["tracking"]) for t, p, d in published if t == "order.status_changed"]
    no_tracking = {"carrier": "", "number": ""}
    assert moves == [
        (None, OrderStatus.PLACED, no_tracking),
        (OrderStatus.PLACED, OrderStatus.APPROVED, no_tracking),
        (OrderStatus.APPROVED, OrderStatus.FULFILLED, {"carrier": "DHL", "number": "JD0001"}),
    ]
    assert {(p, d["order_id"], d["member_id"], d["partner_id"]) for t, p, d in published if t.startswith("order")} == {
        (program.pk, order.pk, member.pk, member.partner_id)
    }


def test_a_tier_move_publishes_tier_changed(published):
    program = ProgramFactory(tier_metric=TierMetric.SALES_AMOUNT, tier_window_days=365, tier_period=TierPeriod.QUARTER)
    TierFactory(program=program, name="Bronze", rank=0, threshold=Decimal("0"))
    TierFactory(program=program, name="Silver", rank=1, threshold=Decimal("5000"))
    partner = PartnerFactory()
    today = date(2026, 5, 15)

    tier_evaluate(program=program, partner=partner, today=today)
    sale(program, partner, Decimal("6000"), day=today)
    tier_evaluate(program=program, partner=partner, today=today)
    tier_evaluate(program=program, partner=partner, today=today)  # no move: nothing published

    assert [(p, d) for t, p, d in published if t == "tier.changed"] == [
        (program.pk, {"partner_id": partner.pk, "from_tier": None, "to_tier": "Bronze", "move": "first"}),
        (program.pk, {"partner_id": partner.pk, "from_tier": "Bronze", "to_tier": "Silver", "move": "up"}),
    ]
