"""The other apps' events notify the right member, once, in their language and channel."""

from datetime import date
from decimal import Decimal
from importlib import import_module

import pytest
from django.apps import apps
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile

from bench.sellout import HEADER, MAPPING
from communications import sms
from communications.constants import Channel, Kind
from communications.models import Delivery, MessageTemplate
from loyalty.common.errors import ApplicationError
from loyalty.constants import RejectionReason
from loyalty.models import PartnerTier, SalesSource
from loyalty.services import claims, ledger
from loyalty.services.sellout.run import import_run, import_start
from loyalty.services.tiers import tier_evaluate
from partners import services as partner_services
from partners.constants import Channel as MemberChannel
from partners.constants import MemberStatus
from rewards import services as rewards
from rewards.constants import OrderStatus, PaidBy
from tests.loyalty.factories import ProductFactory, ProgramFactory, RuleFactory, TierFactory
from tests.partners.factories import MemberFactory, OwnerFactory, PartnerFactory, ProgramManagerFactory, role
from tests.rewards.factories import ADDRESS, MerchandiseFactory

pytestmark = pytest.mark.usefixtures("messages_out")
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 64


def told(kind):
    return list(Delivery.objects.filter(kind=kind).order_by("member_id", "channel").values_list("member_id", "channel"))


def submitted_claim(member, program, amount="900.00"):
    return claims.claim_submit(
        member=member,
        program=program,
        invoice_number="INV-42",
        invoice_date=date.today(),
        document=SimpleUploadedFile("invoice.jpg", JPEG, content_type="image/jpeg"),
        lines=[(ProductFactory(), Decimal("3"), Decimal(amount))],
        colleagues=[],
    )


def test_an_approved_claim_tells_the_claimant_its_points_once(django_capture_on_commit_callbacks):
    program = ProgramFactory(claim_auto_approve_below=Decimal("500.00"))
    RuleFactory(program=program, name="Softeners")
    member, manager = MemberFactory(language="de"), ProgramManagerFactory()
    claim = submitted_claim(member, program)

    with django_capture_on_commit_callbacks(execute=True):
        claims.claim_approve(claim=claim, actor=manager)
    with pytest.raises(ApplicationError):  # a double click: the second approval is refused and tells nobody
        claims.claim_approve(claim=claim, actor=manager)

    assert told(Kind.CLAIM_APPROVED) == [(member.pk, Channel.EMAIL), (member.pk, Channel.INBOX)]
    assert [m.subject for m in mail.outbox] == ["Meldung INV-42 genehmigt: 30 Punkte"]
    inbox = Delivery.objects.get(kind=Kind.CLAIM_APPROVED, channel=Channel.INBOX)
    assert "Softeners v1: 3 units × 10 pts = 30" in inbox.body
    assert inbox.link == f"https://loyalty.example.com/claims/{claim.pk}/"


def test_the_claimant_is_told_their_own_share_not_the_whole_claim(django_capture_on_commit_callbacks):
    """A walk found "You earned 2,695 points" for a claim whose rep share was 1,470 (the rest went to a colleague
    and the company)."""
    program = ProgramFactory(claim_auto_approve_below=Decimal("500.00"))
    RuleFactory(
        program=program, name="Split", shares=[{"role": "sales", "percent": 60}, {"role": "engineer", "percent": 30}]
    )
    owner = OwnerFactory()
    rep = MemberFactory(partner=owner.partner, role=role("sales"), language="en")
    engineer = MemberFactory(partner=owner.partner, role=role("engineer"))
    claim = claims.claim_submit(
        member=rep,
        program=program,
        invoice_number="INV-7",
        invoice_date=date.today(),
        document=SimpleUploadedFile("invoice.jpg", JPEG, content_type="image/jpeg"),
        lines=[(ProductFactory(), Decimal("10"), Decimal("1000.00"))],
        colleagues=[engineer],
    )

    with django_capture_on_commit_callbacks(execute=True):
        claims.claim_approve(claim=claim, actor=ProgramManagerFactory())

    inbox = Delivery.objects.get(kind=Kind.CLAIM_APPROVED, channel=Channel.INBOX, member=rep)
    assert "60" in inbox.subject and "100" not in inbox.subject  # 10 units × 10 pts: the rep's 60 %
    assert "Sales rep share 60% = 60" in inbox.body
    assert "Engineer" not in inbox.body and "company share" not in inbox.body


def test_a_rejected_claim_tells_the_reason_and_the_deadline_by_sms(django_capture_on_commit_callbacks, settings):
    program = ProgramFactory(claim_window_days=60, claim_auto_approve_below=Decimal("500.00"))
    member = MemberFactory(preferred_channel=MemberChannel.SMS, phone="+49 151 1111111")
    claim = submitted_claim(member, program)

    with django_capture_on_commit_callbacks(execute=True):
        claims.claim_reject(
            claim=claim, actor=ProgramManagerFactory(), reason=RejectionReason.OTHER, text="Wrong invoice"
        )

    assert told(Kind.CLAIM_REJECTED) == [(member.pk, Channel.INBOX), (member.pk, Channel.SMS)]
    inbox = Delivery.objects.get(kind=Kind.CLAIM_REJECTED, channel=Channel.INBOX)
    assert "rejected: Other: Wrong invoice" in inbox.body
    assert "send it again by" in inbox.body
    sms_row = Delivery.objects.get(kind=Kind.CLAIM_REJECTED, channel=Channel.SMS)
    assert sms_row.status in ("sent", "queued")  # queued when the test runs in the quiet hours
    assert len(sms.outbox) == (1 if sms_row.status == "sent" else 0)


def test_an_approved_member_is_welcomed_once():
    owner = OwnerFactory()
    member = MemberFactory(partner=owner.partner, status=MemberStatus.PENDING_APPROVAL)

    partner_services.member_approve(member=member, actor=owner.user)

    assert told(Kind.MEMBER_APPROVED) == [(member.pk, Channel.EMAIL), (member.pk, Channel.INBOX)]


def funded_order(member):
    program = ProgramFactory(order_approval_threshold=5000)
    account = ledger.member_account(program=program, member=member)
    ledger.earn(account=account, points=1000, key=f"seed-{member.pk}")
    reward = MerchandiseFactory(program=program, points_price=150)
    return rewards.order_place(
        member=member, program=program, items=[(reward, 1)], paid_by=PaidBy.MEMBER, checkout_key="c1", address=ADDRESS
    )


def test_a_shipped_order_tells_the_tracking_number(django_capture_on_commit_callbacks):
    member = MemberFactory()
    order = funded_order(member)

    with django_capture_on_commit_callbacks(execute=True):
        rewards.order_transition(
            order=order, to=OrderStatus.FULFILLED, actor=ProgramManagerFactory(), carrier="DHL", tracking_number="JD1"
        )

    assert told(Kind.ORDER_SHIPPED) == [(member.pk, Channel.EMAIL), (member.pk, Channel.INBOX)]
    assert mail.outbox[-1].subject == f"Order {order.pk} shipped"
    assert "Tracking: DHL JD1" in mail.outbox[-1].body


def test_a_cancelled_order_tells_the_refund():
    member = MemberFactory()
    order = funded_order(member)

    rewards.order_transition(order=order, to=OrderStatus.CANCELLED, actor=ProgramManagerFactory(), note="Sold out")

    inbox = Delivery.objects.get(kind=Kind.ORDER_CANCELLED, channel=Channel.INBOX)
    assert inbox.body == f"Your order {order.pk} was cancelled: Sold out\n150 points are back in your account."


def test_a_tier_upgrade_tells_every_active_member_of_the_partner_once():
    program = ProgramFactory()
    bronze = TierFactory(program=program, name="Bronze", rank=0, threshold=Decimal("0"))
    TierFactory(program=program, name="Gold", rank=1, threshold=Decimal("-1"))  # everyone qualifies
    partner = PartnerFactory()
    rep, owner = MemberFactory(partner=partner), OwnerFactory(partner=partner)
    MemberFactory(partner=partner, status=MemberStatus.LEFT)
    PartnerTier.objects.create(
        program=program, partner=partner, tier=bronze, since=date(2026, 1, 1), held_until=date(2026, 3, 31)
    )

    tier_evaluate(program=program, partner=partner)
    tier_evaluate(program=program, partner=partner)

    assert sorted(told(Kind.TIER_UP)) == sorted(
        [(rep.pk, Channel.EMAIL), (rep.pk, Channel.INBOX), (owner.pk, Channel.EMAIL), (owner.pk, Channel.INBOX)]
    )
    assert Delivery.objects.filter(channel=Channel.INBOX).first().subject == f"{partner.name} reached Gold"


def test_a_sales_import_sends_one_digest_per_member_and_a_rerun_sends_nothing_more():
    program = ProgramFactory()
    RuleFactory(program=program, name="Softeners", value=Decimal(10))
    ProductFactory(sku="AQ-1")
    source = SalesSource.objects.create(program=program, name="Feed", code="dist", column_mapping=MAPPING)
    anna, ben = MemberFactory(), MemberFactory()
    day = date.today().isoformat()

    def line(ext, member, qty):
        return ";".join([ext, member.partner.legal_id, f"M{member.pk}", "AQ-1", qty, "100.00", "INV-1", day, ""])

    rows = [line("L1", anna, "1"), line("L2", anna, "2"), line("L3", anna, "3"), line("L4", ben, "1")]
    data = "\n".join([HEADER, *rows]).encode()
    sales_import = import_start(
        source=source, uploaded_file=SimpleUploadedFile("s.csv", data), user=ProgramManagerFactory()
    )

    import_run(sales_import.pk)
    import_run(sales_import.pk)  # a retried task

    assert told(Kind.POINTS_IMPORTED) == sorted(
        [(anna.pk, Channel.EMAIL), (anna.pk, Channel.INBOX), (ben.pk, Channel.EMAIL), (ben.pk, Channel.INBOX)]
    )
    inbox = Delivery.objects.get(kind=Kind.POINTS_IMPORTED, member=anna, channel=Channel.INBOX)
    assert inbox.subject == "You earned 60 points"
    assert inbox.body == "Your distributor reported 3 sale lines: 60 points for you."


def test_colleagues_named_on_a_claim_are_told_once_that_they_share_its_points(django_capture_on_commit_callbacks):
    program = ProgramFactory(claim_auto_approve_below=Decimal("500.00"))
    claimant = MemberFactory(user__full_name="Carla Claimant")
    named = MemberFactory(partner=claimant.partner, language="de")
    other = MemberFactory(partner=claimant.partner)

    with django_capture_on_commit_callbacks(execute=True):
        claim = claims.claim_submit(
            member=claimant,
            program=program,
            invoice_number="INV-77",
            invoice_date=date.today(),
            document=SimpleUploadedFile("invoice.jpg", JPEG, content_type="image/jpeg"),
            lines=[(ProductFactory(), Decimal("3"), Decimal("900.00"))],
            colleagues=[named],
        )

    assert told(Kind.CLAIM_COLLEAGUE) == [(named.pk, Channel.EMAIL), (named.pk, Channel.INBOX)]
    assert other.pk not in {m for m, _channel in told(Kind.CLAIM_COLLEAGUE)}
    assert [m.subject for m in mail.outbox] == ["Carla Claimant hat Sie in Meldung INV-77 genannt"]
    inbox = Delivery.objects.get(kind=Kind.CLAIM_COLLEAGUE, channel=Channel.INBOX)
    assert "Sie erhalten einen Anteil an ihren Punkten, sobald sie genehmigt ist" in inbox.body
    assert "bestätigen" not in inbox.body
    assert inbox.link == f"https://loyalty.example.com/claims/{claim.pk}/"


def test_a_claim_naming_no_colleague_tells_no_colleague():
    program = ProgramFactory(claim_auto_approve_below=Decimal("500.00"))

    submitted_claim(MemberFactory(), program)

    assert told(Kind.CLAIM_COLLEAGUE) == []


def test_the_migration_puts_the_true_colleague_text_only_where_the_old_default_is_still_stored():
    migration = import_module("communications.migrations.0006_nudges_and_true_colleague_texts")
    old_inbox = "Please confirm your part of the sale on invoice {{ invoice_number }}."
    edited = "Your colleague {{ colleague }} counts on you for {{ invoice_number }}."
    templates = MessageTemplate.objects.filter(kind=Kind.CLAIM_COLLEAGUE, role__isnull=True)
    templates.filter(channel=Channel.INBOX, language="en").update(body=old_inbox)
    templates.filter(channel=Channel.INBOX, language="de").update(body=edited)

    migration.update_default_texts(apps, None)

    assert templates.get(channel=Channel.INBOX, language="en").body == (
        "{{ colleague }} named you on claim {{ invoice_number }}; you share its points once it is approved. "
        "Open it to see your share."
    )
    assert templates.get(channel=Channel.INBOX, language="de").body == edited
