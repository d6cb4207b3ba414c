import factory
from django.utils import timezone
from factory.django import DjangoModelFactory

from communications.constants import Channel, DeliveryStatus, Kind, SuppressionReason, topic_of
from communications.models import Delivery, MessageTemplate, Preference, Suppression, Tip
from tests.partners.factories import MemberFactory


class MessageTemplateFactory(DjangoModelFactory):
    class Meta:
        model = MessageTemplate
        django_get_or_create = ("kind", "channel", "language", "role")

    kind = Kind.CLAIM_APPROVED
    channel = Channel.EMAIL
    language = "en"
    role = None
    subject = "Claim {{ invoice_number }}"
    body = "{{ points }} points"


class DeliveryFactory(DjangoModelFactory):
    class Meta:
        model = Delivery

    kind = Kind.CLAIM_APPROVED
    channel = Channel.EMAIL
    topic = factory.LazyAttribute(lambda o: topic_of(o.kind))
    member = factory.SubFactory(MemberFactory)
    source_key = factory.Sequence(lambda n: f"test:{n}")
    idempotency_key = factory.LazyAttribute(lambda o: f"{o.kind}:{o.source_key}:{o.member.pk}:{o.channel}")
    address = factory.LazyAttribute(lambda o: o.member.user.email if o.channel == Channel.EMAIL else o.member.phone)
    subject = "Subject"
    body = "Body"
    status = DeliveryStatus.QUEUED
    queued_at = factory.LazyFunction(timezone.now)


class PreferenceFactory(DjangoModelFactory):
    class Meta:
        model = Preference

    member = factory.SubFactory(MemberFactory)
    topic = factory.LazyFunction(lambda: topic_of(Kind.CAMPAIGN))
    channel = Channel.EMAIL
    opted_in = True


class SuppressionFactory(DjangoModelFactory):
    class Meta:
        model = Suppression

    address = factory.Sequence(lambda n: f"bounced{n}@example.com")
    reason = SuppressionReason.BOUNCED


class TipFactory(DjangoModelFactory):
    class Meta:
        model = Tip

    text = factory.Sequence(lambda n: f"Tip {n}")
    link_path = ""
    role = None
    product_line = ""
    language = ""
    active = True
