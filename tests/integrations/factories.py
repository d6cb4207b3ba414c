import factory
from factory.django import DjangoModelFactory

from integrations import keys
from integrations.constants import Scope
from integrations.models import ApiClient, WebhookSubscription
from tests.loyalty.factories import ProgramFactory
from tests.partners.factories import ProgramManagerFactory


class ApiClientFactory(DjangoModelFactory):
    """A machine client with every scope unless told; its key from `issue_key`."""

    class Meta:
        model = ApiClient

    name = factory.Sequence(lambda n: f"ERP {n}")
    program = factory.SubFactory(ProgramFactory)
    scopes = factory.LazyFunction(lambda: list(Scope.values))
    created_by = factory.SubFactory(ProgramManagerFactory)


def issue_key(client: ApiClient) -> str:
    """A new key of `client`: the whole secret, to send as a Bearer token."""
    return keys.key_issue(client=client, by=client.created_by).secret


class WebhookSubscriptionFactory(DjangoModelFactory):
    class Meta:
        model = WebhookSubscription

    client = factory.SubFactory(ApiClientFactory)
    url = factory.Sequence(lambda n: f"https://receiver{n}.example/hooks")
    event_types = factory.LazyFunction(lambda: ["points.earned"])
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
