"""Factories of prize draws (tests/loyalty/test_draws_*.py) and small helpers to give a member points."""

from datetime import timedelta

import factory
from django.utils import timezone
from factory.django import DjangoModelFactory

from loyalty.constants import DrawStatus, EntrySourceKind
from loyalty.models import DrawEntry, PrizeDraw
from loyalty.services import draws as services
from loyalty.services import ledger
from tests.loyalty.factories import ProgramFactory
from tests.partners.factories import MemberFactory


class PrizeDrawFactory(DjangoModelFactory):
    """A draft draw, open since an hour ago, closing in a week; open it with `opened(...)`."""

    class Meta:
        model = PrizeDraw

    program = factory.SubFactory(ProgramFactory)
    name = factory.Sequence(lambda n: f"Summer draw {n}")
    prizes = "A weekend in Vienna\nA coffee machine\nA water bottle"
    opens_at = factory.LazyFunction(lambda: timezone.now() - timedelta(hours=1))
    closes_at = factory.LazyFunction(lambda: timezone.now() + timedelta(days=7))
    entry_price_points = 100
    max_entries_per_member = 10
    status = DrawStatus.DRAFT


class DrawEntryFactory(DjangoModelFactory):
    """Entries written as the services would (for building entry lists fast); use the services to test entering."""

    class Meta:
        model = DrawEntry

    draw = factory.SubFactory(PrizeDrawFactory)
    member = factory.SubFactory(MemberFactory)
    source = EntrySourceKind.BOUGHT
    count = 1
    key = factory.Sequence(lambda n: f"test-entry:{n}")


def opened(**fields) -> PrizeDraw:
    """A draw opened through the service (its seed drawn, its hash published)."""
    return services.draw_open(draw=PrizeDrawFactory(**fields))


def give_points(member, program, points: int, key: str = "") -> None:
    ledger.earn(
        account=ledger.member_account(program=program, member=member),
        points=points,
        key=key or f"test-gift:{member.pk}:{program.pk}:{points}",
    )


def balance(member, program) -> int:
    return ledger.member_account(program=program, member=member).available
