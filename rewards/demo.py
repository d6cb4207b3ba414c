"""The demo program's rewards (DESIGN.md §6): a catalogue of every kind of reward, and orders in every status.

A loyalty.demo.program extension: `plan(book)` returns steps on the points history's timeline, so each order is placed
(rewards.services.order_place) and moved along (order_transition) at its moment, between the earns around it,
and spends the points the member had then. Checkout keys are "demo:order:<n>". The demo sales rep, engineer,
foreman and owner have scripted orders (the owner's from the company account too) that must succeed; the other
orders go to the first suitable member who can afford them when they are placed, busiest first, and simply do
not happen if nobody can. No images: the pages show a placeholder.

Events (decisions #22) are rewards with a date, a place and seats (their stock), added some weeks before they start:
an AquaSoft Smart day that took place, where the program team recorded who came (rewards.services.attendance_record,
paid by the demo's "event attended" rule) and one no-show; a workshop still to come, partly booked, the demo engineer
among the bookers; and an evening for Gold partners only. One reward is negotiated for the flagship, the demo logins'
key account, with the reason a program manager approved: other partners' members do not see it.
"""

import functools
import random
import string
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta

from dateutil.relativedelta import relativedelta
from django.utils import timezone

from loyalty.common.errors import ApplicationError
from loyalty.demo.program import Book, Person, Step, company_holder
from loyalty.models import Tier
from partners import demo as partners_demo
from partners.constants import MemberStatus, PartnerKind
from partners.models import Region, Role
from rewards import selectors, services
from rewards.constants import LIVE_STATUSES, LimitPeriod, OrderStatus, PaidBy, RewardKind
from rewards.error_codes import ErrorCode
from rewards.models import CartItem, RedemptionLine, RedemptionOrder, Reward, RewardCategory, VoucherCode

TABLES = (
    ("reward categories", RewardCategory),
    ("rewards", Reward),
    ("voucher codes", VoucherCode),
    ("orders", RedemptionOrder),
    ("cart items", CartItem),
)

CATEGORIES = (  # (slug, name)
    ("tools-workwear", "Tools & workwear"),
    ("home-tech", "Home & tech"),
    ("gift-cards", "Gift cards"),
    ("experiences", "Experiences & events"),
    ("training-sessions", "Training & expert sessions"),
    ("giving-back", "Giving back"),
    ("cashback", "Cashback & credit notes"),
    ("co-marketing", "Co-marketing"),
)


@dataclass(frozen=True)
class RewardSpec:
    sku: str
    name: str
    category: str  # slug
    kind: str
    points: int
    description: str
    stock: int | None = None
    codes: int = 0  # voucher codes in the pool (a code reward)
    installed: bool = False  # delivered and set up on site (its orders need an address)
    paid_by: str = PaidBy.MEMBER
    roles: tuple[str, ...] = ()
    partner_kinds: tuple[str, ...] = ()
    regions: tuple[str, ...] = ()
    limit: tuple[int, str] | None = None  # (units, LimitPeriod) per member
    window: tuple[int, int] | None = None  # (opens, closes) in days from now
    active: bool = True
    # Added to the catalogue later than the rest (days ago; None: with the catalogue), as the events and the
    # negotiated reward are: they need the tiers and the program managers of later steps.
    added: float | None = None
    # A dated event or expert session (decisions #22): it starts `starts` = (days from now, hour, minute), local time
    # (days negative: it took place), at `place`; its seats are its stock, bookable until it starts.
    starts: tuple[int, int, int] | None = None
    place: str = ""
    min_tier: str = ""  # members-only: the name of the lowest tier whose partners may book it
    # Negotiated for named partners only (their legal ids), with the reason the first program manager approved.
    partners: tuple[str, ...] = ()
    reason: str = ""

    def open_to(self, person: Person) -> bool:
        return (
            (not self.roles or person.role in self.roles)
            and (not self.partner_kinds or person.company.kind in self.partner_kinds)
            and (not self.regions or person.company.region in self.regions)
            and (not self.partners or person.company.legal_id in self.partners)
        )


FIELD = ("engineer", "foreman")
M, V, E, S, D, C, CO = (RewardKind.MERCHANDISE, RewardKind.VOUCHER, RewardKind.EXPERIENCE, RewardKind.SESSION,
                        RewardKind.DONATION, RewardKind.CASHBACK, RewardKind.CO_MARKETING)  # fmt: skip
COMPANY = PaidBy.COMPANY
REWARDS = (
    RewardSpec("AQP-JKT", "AquaPro softshell jacket", "tools-workwear", M, 3_500,
               "Navy softshell with the AquaPro logo, sizes S to XXL: we e-mail you for your size.", stock=40,
               limit=(1, LimitPeriod.YEAR)),
    RewardSpec("AQP-MUG", "AquaPro insulated travel mug", "tools-workwear", M, 900,
               "Keeps coffee hot for a full morning on site. 450 ml, dishwasher safe.", stock=200),
    RewardSpec("AQP-FAK", "Site first-aid kit", "tools-workwear", M, 1_800,
               "Compact kit for the van, to BS 8599-2.", stock=60),
    RewardSpec("AQP-LTM", "Leatherman Wave+ multitool", "tools-workwear", M, 8_900,
               "18 tools in one, with a 25-year warranty.", stock=15),
    RewardSpec("AQP-DRL", "Makita 18 V drill driver kit", "tools-workwear", M, 14_500,
               "Two batteries, charger and case. For the people who install our systems.", stock=12, roles=FIELD),
    RewardSpec("AQP-TST", "Professional water test kit", "tools-workwear", M, 2_400,
               "Hardness, chlorine, iron and pH: the tests you need before sizing a softener.", stock=100,
               roles=FIELD),
    RewardSpec("AQP-SPK", "JBL site radio and speaker", "home-tech", M, 6_200,
               "Dust- and splash-proof, runs on your 18 V tool batteries.", stock=2),
    RewardSpec("AQP-HDP", "Noise-cancelling headphones", "home-tech", M, 24_000,
               "Over-ear, 30 hours of battery.", stock=5),
    RewardSpec("AQP-TAB", "10-inch tablet for site surveys", "home-tech", M, 39_000,
               "With a rugged case and the Clearwell sizing app installed.", stock=3, roles=("owner", "sales")),
    RewardSpec("AQP-AMZ25", "Amazon gift card €25", "gift-cards", V, 2_500,
               "A code you can use at once, shown on your order.", codes=40, limit=(4, LimitPeriod.MONTH)),
    RewardSpec("AQP-AMZ50", "Amazon gift card €50", "gift-cards", V, 5_000,
               "A code you can use at once, shown on your order.", codes=30, limit=(4, LimitPeriod.MONTH)),
    RewardSpec("AQP-IKEA25", "IKEA gift card €25", "gift-cards", V, 2_500,
               "A code for IKEA stores and ikea.com.", codes=3),
    RewardSpec("AQP-FUEL20", "Fuel card €20", "gift-cards", V, 2_000,
               "For the people on the road: valid at Shell and Aral stations.", codes=20,
               roles=(*FIELD, "logistics"), regions=("uk-ie", "de", "at-ch")),
    RewardSpec("AQP-ALG100", "Allegro gift card 100 zł", "gift-cards", V, 2_300,
               "Do wykorzystania na allegro.pl.", codes=15, regions=("pl",)),
    RewardSpec("AQP-DEC20", "Decathlon gift card €20", "gift-cards", V, 2_000,
               "Valable en magasin et sur decathlon.fr / decathlon.be.", codes=15, regions=("fr", "benelux")),
    RewardSpec("AQP-AQT", "Aquatech Amsterdam: trade-fair day pass and dinner", "experiences", E, 12_000,
               "A day at the fair with the Clearwell team, dinner included. Seats are limited.", stock=10,
               limit=(1, LimitPeriod.EVER), window=(-20, 40)),
    RewardSpec("AQP-LYON", "Factory tour in Lyon for two", "experiences", E, 35_000,
               "See where AquaSoft is made; travel and one night's hotel included.", stock=6, paid_by=COMPANY,
               partner_kinds=(PartnerKind.DISTRIBUTOR, PartnerKind.DEALER)),
    RewardSpec("AQP-KART", "Karting afternoon for your team", "experiences", E, 30_000,
               "Up to eight people, with food afterwards.", stock=4, paid_by=COMPANY),
    RewardSpec("AQP-BRK", "Business breakfast with the Clearwell management", "experiences", E, 3_000,
               "Twice a year in each region: the roadmap, and your questions.", stock=20, roles=("owner",)),
    RewardSpec("AQP-EXP", "1:1 video session with a Clearwell water-treatment engineer", "training-sessions", S,
               3_000, "60 minutes on your hardest job: sizing, commissioning or a fault.",
               limit=(2, LimitPeriod.QUARTER)),
    RewardSpec("AQP-ROC", "Certified RO installer course (2 days)", "training-sessions", S, 18_000,
               "In Lyon or Leeds, with the certificate your customers ask for.", roles=FIELD),
    RewardSpec("AQP-MST", "Sales masterclass: selling softeners to homeowners", "training-sessions", S, 7_500,
               "A day with our best trainers; bring two real quotes.", roles=("owner", "sales")),
    RewardSpec("AQP-EARLY", "Early access: AquaSoft Smart 900 launch briefing", "training-sessions", S, 1_000,
               "Meet the product before your competitors do.", window=(14, 60),
               partner_kinds=(PartnerKind.DISTRIBUTOR, PartnerKind.DEALER)),
    RewardSpec("AQP-WATERAID", "Donation: WaterAid, clean water for a school", "giving-back", D, 1_000,
               "We give €10 to WaterAid in your name and send you the receipt."),
    RewardSpec("AQP-REDCROSS", "Donation: Red Cross flood relief", "giving-back", D, 2_500,
               "We give €25 to the Red Cross flood appeal in your name."),
    RewardSpec("AQP-CB20", "Cashback €20 to your bank account", "cashback", C, 2_000,
               "Paid within ten working days to the account in your profile.", limit=(1, LimitPeriod.MONTH)),
    RewardSpec("AQP-CN250", "Credit note €250 on the next Clearwell invoice", "cashback", C, 25_000,
               "Deducted from your company's next invoice from Clearwell.", paid_by=COMPANY),
    RewardSpec("AQP-ADV", "Co-marketing: local advert, 50 % up to €250", "co-marketing", CO, 25_000,
               "Half the cost of an advert that shows only our brands; less when other brands appear.",
               paid_by=COMPANY),
    RewardSpec("AQP-VAN", "Co-marketing: branded van wrap, 50 % up to €300", "co-marketing", CO, 30_000,
               "Send us the design first; we pay half the wrap.", paid_by=COMPANY,
               partner_kinds=(PartnerKind.DISTRIBUTOR, PartnerKind.DEALER, PartnerKind.INSTALLER,
                              PartnerKind.SERVICE_COMPANY)),
    RewardSpec("AQP-DSP", "Co-marketing: AquaSoft Smart showroom display", "co-marketing", CO, 15_000,
               "A working display unit with the app demo, delivered and set up.", stock=8, paid_by=COMPANY,
               installed=True, partner_kinds=(PartnerKind.DISTRIBUTOR, PartnerKind.DEALER, PartnerKind.RESELLER)),
    RewardSpec("AQP-CAL", "AquaPro wall calendar", "tools-workwear", M, 500,
               "Last year's calendar: no longer offered.", stock=0, active=False),
)  # fmt: skip
FLAGSHIP = partners_demo.legal_id(0, 0)
# Added later: dated events (one took place, with attendance recorded; one coming, partly booked; one for Gold
# partners only) and a reward negotiated for the flagship, the key account of the demo logins.
LATER = (
    RewardSpec("AQP-EV-LEEDS", "AquaSoft Smart day, Leeds", "training-sessions", S, 900,
               "A day at the AquaPro training centre: selling and sizing the AquaSoft Smart 700, the app, "
               "commissioning and fault finding on live units. Lunch included.",
               stock=12, limit=(1, LimitPeriod.EVER), added=75, starts=(-19, 9, 30),
               place="AquaPro training centre, Unit 4, Aire Valley Trading Estate, Leeds LS10 1AB"),
    RewardSpec("AQP-EV-UVWS", "UVGuard Pro hands-on workshop, Manchester", "training-sessions", S, 1_500,
               "Three hours on sizing, installing and servicing UVGuard Pro systems, with a lamp change on a live "
               "unit.", stock=16, limit=(1, LimitPeriod.EVER), added=55, starts=(17, 13, 0),
               place="Clearwell UK, 2 Trafford Park Road, Manchester M17 1HG"),
    RewardSpec("AQP-EV-GOLD", "Gold partner evening at Aquatech Amsterdam", "experiences", E, 6_000,
               "Dinner with the Clearwell management on the fair's first evening, for Gold partners only.",
               stock=24, limit=(1, LimitPeriod.EVER), added=20, starts=(39, 19, 0), min_tier="Gold",
               place="RAI Amsterdam, Europaplein 24, 1078 GZ Amsterdam"),
    RewardSpec("AQP-NW-WEAR", "Northwater team workwear: 10 co-branded softshells", "tools-workwear", M, 12_000,
               "Northwater and AquaPro softshells for ten of your team, in their sizes: we e-mail you for them.",
               stock=6, paid_by=COMPANY, limit=(2, LimitPeriod.YEAR), added=100, partners=(FLAGSHIP,),
               reason="Key-account agreement KA-2026-03: Northwater's staff wear co-branded workwear at customers' "
               "sites. Any distributor with a key-account agreement gets the same pack with its own logo."),
)  # fmt: skip


@dataclass(frozen=True)
class OrderSpec:
    """An order placed `days_ago`, then moved along `flow`: (days after placing, status, note)."""

    days_ago: float
    items: tuple[tuple[str, int], ...]
    who: str = ""  # a demo login's role, else anyone suitable who can afford it
    company: bool = False  # paid from the company account by the partner's owner
    flow: tuple[tuple[float, str, str], ...] = ()
    by: int = 0  # which program manager moves it (0 or 1)


SHIPPED = "Handed to the carrier"
OUT_OF_STOCK = "Out of stock at our supplier until March; your points are back."
ORDERS = (
    # the demo sales rep
    OrderSpec(300, (("AQP-AMZ25", 1),), who="sales"),
    OrderSpec(210, (("AQP-JKT", 1),), who="sales", flow=((3, OrderStatus.FULFILLED, SHIPPED),
                                                         (5, OrderStatus.DELIVERED, ""))),
    OrderSpec(120, (("AQP-WATERAID", 1),), who="sales",
              flow=((4, OrderStatus.FULFILLED, "Donation made in your name; the receipt is in your e-mail."),)),
    OrderSpec(60, (("AQP-AMZ50", 1),), who="sales"),
    OrderSpec(25, (("AQP-LTM", 1),), who="sales", flow=((4, OrderStatus.CANCELLED, OUT_OF_STOCK),), by=1),
    OrderSpec(10, (("AQP-MUG", 2),), who="sales", flow=((3, OrderStatus.FULFILLED, SHIPPED),)),
    OrderSpec(3, (("AQP-FAK", 1),), who="sales"),
    # the demo engineer, foreman and owner
    OrderSpec(150, (("AQP-FUEL20", 1),), who="engineer"),
    OrderSpec(80, (("AQP-SPK", 1),), who="engineer", flow=((2, OrderStatus.FULFILLED, SHIPPED),
                                                           (4, OrderStatus.DELIVERED, ""))),
    OrderSpec(20, (("AQP-TST", 1),), who="engineer", flow=((2, OrderStatus.FULFILLED, SHIPPED),)),
    OrderSpec(200, (("AQP-FAK", 1), ("AQP-MUG", 1)), who="foreman", flow=((2, OrderStatus.FULFILLED, SHIPPED),
                                                                          (4, OrderStatus.DELIVERED, ""))),
    OrderSpec(25, (("AQP-AMZ25", 1),), who="foreman"),
    OrderSpec(90, (("AQP-BRK", 1),), who="owner",
              flow=((5, OrderStatus.FULFILLED, "Your invitation is in the post: 12 March, Manchester."),)),
    OrderSpec(95, (("AQP-CN250", 1),), who="owner", company=True,
              flow=((1, OrderStatus.APPROVED, ""),
                    (3, OrderStatus.FULFILLED, "Credit note CN-UK-2231 issued."),
                    (12, OrderStatus.DELIVERED, "Deducted from invoice 90-44718."))),
    OrderSpec(2, (("AQP-ADV", 1),), who="owner", company=True),
    # everybody else
    *(OrderSpec(days, (("AQP-AMZ25", 1),)) for days in (200, 150, 110, 75, 40, 12)),
    OrderSpec(100, (("AQP-IKEA25", 1),)),
    OrderSpec(50, (("AQP-IKEA25", 1),)),
    OrderSpec(30, (("AQP-FUEL20", 1),)),
    OrderSpec(100, (("AQP-ALG100", 1),)),
    OrderSpec(40, (("AQP-DEC20", 1),)),
    OrderSpec(150, (("AQP-SPK", 1),), who="foreman", flow=((2, OrderStatus.FULFILLED, SHIPPED),
                                                           (5, OrderStatus.DELIVERED, ""))),
    OrderSpec(90, (("AQP-REDCROSS", 1),), flow=((3, OrderStatus.FULFILLED, "Donation made in your name."),)),
    OrderSpec(40, (("AQP-CB20", 1),), flow=((6, OrderStatus.FULFILLED, "Paid to your bank account."),)),
    OrderSpec(8, (("AQP-CB20", 1),)),
    OrderSpec(10, (("AQP-EXP", 1),), flow=((2, OrderStatus.FULFILLED, "Booked: our engineer will call you."),)),
    OrderSpec(45, (("AQP-KART", 1),), company=True,
              flow=((1, OrderStatus.APPROVED, ""),
                    (9, OrderStatus.FULFILLED, "Booked for Saturday 14:00; the confirmation is in your e-mail."),
                    (30, OrderStatus.DELIVERED, "We hope the team enjoyed it!")), by=1),
    OrderSpec(12, (("AQP-LYON", 1),), who="owner", company=True,
              flow=((2, OrderStatus.REJECTED, "The spring tours are fully booked; we will tell you when autumn "
                                              "dates open. Your points are back."),)),
    OrderSpec(18, (("AQP-CN250", 1),), company=True,
              flow=((1, OrderStatus.CANCELLED, "Ordered by mistake: we want the van wrap instead."),)),
    OrderSpec(6, (("AQP-DSP", 1),), company=True),
    OrderSpec(1, (("AQP-VAN", 1),), company=True),
    # seats at the AquaSoft Smart day that took place (the foreman came; one of the others did not) ...
    OrderSpec(60, (("AQP-EV-LEEDS", 1),), who="foreman"),
    *(OrderSpec(days, (("AQP-EV-LEEDS", 1),)) for days in (57, 50, 44, 37, 29)),
    # ... and at the coming workshop (the engineer booked early: his points expiring soon stay for the demo)
    OrderSpec(48, (("AQP-EV-UVWS", 1),), who="engineer"),
    *(OrderSpec(days, (("AQP-EV-UVWS", 1),)) for days in (31, 24, 17, 5)),
    # the negotiated workwear, by the flagship's owner from the company account
    OrderSpec(45, (("AQP-NW-WEAR", 1),), who="owner", company=True),
)  # fmt: skip
PAST_EVENT = "AQP-EV-LEEDS"  # its attendance is recorded the evening it took place
CARTS = {"sales": (("AQP-AMZ50", 1), ("AQP-MST", 1)), "engineer": (("AQP-DRL", 1),)}

ADDRESSES = {  # per region: street (with a number), postcode, city, country
    "uk-ie": ("Unit {n}, Kingsway Business Park", "M19 1BA", "Manchester", "United Kingdom"),
    "de": ("Industriestraße {n}", "50829", "Köln", "Germany"),
    "at-ch": ("Gewerbepark {n}", "4020", "Linz", "Austria"),
    "fr": ("{n} rue de l'Industrie", "69007", "Lyon", "France"),
    "benelux": ("Industrieweg {n}", "2030", "Antwerpen", "Belgium"),
    "pl": ("ul. Przemysłowa {n}", "61-001", "Poznań", "Poland"),
}
CARRIERS = (("DPD", "1550{:010d}"), ("UPS", "1Z9A{:010d}"), ("DHL", "JJD00{:010d}"), ("Royal Mail", "RM{:09d}GB"))


def plan(book: Book) -> list[Step]:
    """The catalogue (first), the orders and their moves, and two demo logins' carts (last)."""
    return _Plan(book).steps()


def _over_limit(*, reward: Reward, member, quantity: int) -> bool:
    left = selectors.limit_left(reward=reward, member=member)
    return left is not None and left < quantity


class _Plan:
    def __init__(self, book: Book):
        self.book = book
        self.rng = random.Random(f"{partners_demo.SEED}:rewards")
        self.specs = {spec.sku: spec for spec in (*REWARDS, *LATER)}
        self.rewards: dict[str, Reward] = {}  # by SKU, once the catalogue step ran
        self.orders: dict[str, RedemptionOrder] = {}  # by checkout key
        self.taken: set[str] = set()  # people who placed an order
        self.logins = book.demo_logins()
        demo_keys = {p.key for p in self.logins.values()}
        active = [
            p
            for p in book.people
            if p.status == MemberStatus.ACTIVE and p.company.active and p.key not in demo_keys and p.joined_at
        ]
        self.rng.shuffle(active)
        busiest = ("champion", "regular", "occasional", "silent")  # Book.levels; the busiest have the most points
        self.shoppers = sorted(active, key=lambda p: busiest.index(book.levels.get(p.key, "silent")))
        flagship = partners_demo.legal_id(0, 0)
        owners = [p for p in active if p.role == "owner" and p.company.legal_id != flagship]
        self.rng.shuffle(owners)
        # distributors first: their quarterly bonuses fill the company accounts
        self.owners = sorted(owners, key=lambda p: p.company.kind != PartnerKind.DISTRIBUTOR)

    def steps(self) -> list[Step]:
        book = self.book
        catalogue_at = book.now - relativedelta(months=26)
        codes = sum(spec.codes for spec in REWARDS)
        steps = [
            Step(catalogue_at, self._catalogue, Counter({"reward categories": len(CATEGORIES), "rewards": len(REWARDS),
                                                         "voucher codes": codes})),
        ]  # fmt: skip
        for number, spec in enumerate(ORDERS, start=1):
            key = f"demo:order:{number}"
            placed = book.now - timedelta(days=spec.days_ago, hours=self.rng.uniform(-4, 4))
            steps.append(
                Step(placed, functools.partial(self._place, spec, key), Counter({"orders": 1, "points entries": 1}))
            )
            for days, status, note in spec.flow:
                at = placed + timedelta(days=days, hours=self.rng.uniform(0, 3))
                refund = int(status in (OrderStatus.REJECTED, OrderStatus.CANCELLED))
                steps.append(Step(at, functools.partial(self._move, key, status, note, spec.by),
                                  Counter({"points entries": refund})))  # fmt: skip
        for spec in LATER:
            steps.append(Step(book.now - timedelta(days=spec.added), functools.partial(self._add_reward, spec),
                              Counter({"rewards": 1})))  # fmt: skip
        attended = sum(spec.items[0][0] == PAST_EVENT for spec in ORDERS) - 1  # one no-show
        attendance_at = self._event_start(self.specs[PAST_EVENT]) + timedelta(hours=8)
        attendance = functools.partial(self._attendance, PAST_EVENT)
        steps.append(Step(attendance_at, attendance, Counter({"points entries": attended})))
        cart_at = book.now - timedelta(hours=2)
        for role, items in CARTS.items():
            for sku, quantity in items if role in self.logins else ():
                steps.append(Step(cart_at, functools.partial(self._cart, role, sku, quantity),
                                  Counter({"cart items": 1})))  # fmt: skip
        return steps

    # the steps

    def _catalogue(self) -> None:
        RewardCategory.objects.bulk_create(
            [RewardCategory(slug=slug, name=name, sort_order=i * 10) for i, (slug, name) in enumerate(CATEGORIES, 1)],
            ignore_conflicts=True,
        )
        categories = {c.slug: c for c in RewardCategory.objects.filter(slug__in=[slug for slug, _ in CATEGORIES])}
        roles = {r.code: r for r in Role.objects.all()}
        regions = {r.code: r for r in Region.objects.all()}
        now = self.book.now
        rewards = []
        for spec in REWARDS:
            reward = Reward(
                program=self.book.program,
                category=categories[spec.category],
                name=spec.name,
                sku=spec.sku,
                kind=spec.kind,
                description=spec.description,
                points_price=spec.points,
                stock=spec.stock,
                uses_codes=spec.codes > 0,
                installed_on_site=spec.installed,
                paid_by=spec.paid_by,
                allowed_partner_kinds=list(spec.partner_kinds),
                limit_per_member=spec.limit[0] if spec.limit else None,
                limit_period=spec.limit[1] if spec.limit else LimitPeriod.MONTH,
                available_from=now + timedelta(days=spec.window[0]) if spec.window else None,
                available_until=now + timedelta(days=spec.window[1]) if spec.window else None,
                is_active=spec.active,
            )
            # the foreign keys were just read and the database checks the constraints: validate without queries
            reward.full_clean(exclude=["program", "category"], validate_unique=False, validate_constraints=False)
            rewards.append(reward)
        Reward.objects.bulk_create(rewards)
        self.rewards = {reward.sku: reward for reward in rewards}
        Reward.allowed_roles.through.objects.bulk_create(
            [
                Reward.allowed_roles.through(reward_id=self.rewards[spec.sku].pk, role_id=roles[code].pk)
                for spec in REWARDS
                for code in spec.roles
            ]
        )
        Reward.allowed_regions.through.objects.bulk_create(
            [
                Reward.allowed_regions.through(reward_id=self.rewards[spec.sku].pk, region_id=regions[code].pk)
                for spec in REWARDS
                for code in spec.regions
            ]
        )
        for spec in REWARDS:
            if spec.codes:
                services.codes_add(reward=self.rewards[spec.sku], codes=self._codes(spec))

    def _event_start(self, spec: RewardSpec) -> datetime:
        days, hour, minute = spec.starts
        day = timezone.localtime(self.book.now + timedelta(days=days)).date()
        return timezone.make_aware(datetime(day.year, day.month, day.day, hour, minute))

    def _add_reward(self, spec: RewardSpec) -> None:
        """A reward added after the catalogue: a dated event (bookable until it starts; members-only by tier), or
        one negotiated for named partners, approved now by the first program manager (as saving it in the back
        office stamps it)."""
        starts = self._event_start(spec) if spec.starts is not None else None
        reward = Reward(
            program=self.book.program,
            category=RewardCategory.objects.get(slug=spec.category),
            name=spec.name,
            sku=spec.sku,
            kind=spec.kind,
            description=spec.description,
            points_price=spec.points,
            stock=spec.stock,
            paid_by=spec.paid_by,
            limit_per_member=spec.limit[0] if spec.limit else None,
            limit_period=spec.limit[1] if spec.limit else LimitPeriod.MONTH,
            event_starts_at=starts,
            event_place=spec.place,
            available_until=starts,
            min_tier=Tier.objects.get(program=self.book.program, name=spec.min_tier) if spec.min_tier else None,
        )
        if spec.partners:
            reward.negotiated_reason = spec.reason
            reward.negotiated_approved_by = self.book.staff[partners_demo.PROGRAM_MANAGERS[0][1]]
            reward.negotiated_approved_at = timezone.now()
        reward.full_clean()
        reward.save()
        reward.allowed_roles.set(Role.objects.filter(code__in=spec.roles))
        reward.allowed_partners.set([self.book.channel.partners[legal_id] for legal_id in spec.partners])
        self.rewards[spec.sku] = reward

    def _attendance(self, sku: str) -> None:
        """The program team records who came to the event (paid by the "event attended" rule): everybody but the
        last of those who are not demo logins, who did not show up."""
        manager = self.book.staff[partners_demo.PROGRAM_MANAGERS[0][1]]
        logins = {person.email for person in self.logins.values()}
        lines = list(
            RedemptionLine.objects.filter(reward=self.rewards[sku], order__status__in=LIVE_STATUSES)
            .select_related("order__member__user")
            .order_by("pk")
        )
        absent = next((line for line in reversed(lines) if line.order.member.user.email not in logins), None)
        for line in lines:
            services.attendance_record(line=line, actor=manager, attended=line is not absent)

    def _codes(self, spec: RewardSpec) -> list[str]:
        rng = random.Random(f"{partners_demo.SEED}:codes:{spec.sku}")
        alphabet = string.ascii_uppercase + string.digits
        prefix = spec.sku.removeprefix("AQP-")
        return [
            f"{prefix}-" + "-".join("".join(rng.choices(alphabet, k=4)) for _ in range(3)) for _ in range(spec.codes)
        ]

    def _candidates(self, spec: OrderSpec) -> list[Person]:
        if spec.who:
            return [self.logins[spec.who]] if spec.who in self.logins else []
        pool = self.owners if spec.company else self.shoppers
        rewards = [self.specs[sku] for sku, _ in spec.items]
        suitable = [p for p in pool if all(r.open_to(p) for r in rewards)]
        return sorted(suitable, key=lambda p: p.key in self.taken)  # preferably someone who has not ordered yet

    def _place(self, spec: OrderSpec, key: str) -> None:
        """Place the order for the first candidate the services would let order it now, and who can afford it."""
        book = self.book
        items = [(self.rewards[sku], quantity) for sku, quantity in spec.items]
        total = sum(reward.points_price * quantity for reward, quantity in items)
        candidates = self._candidates(spec)
        holders = {p.key: company_holder(p.company.legal_id) if spec.company else p.holder for p in candidates}
        balances = book.balances(set(holders.values()))
        for person in candidates:
            member = book.member(person)
            if balances.get(holders[person.key], 0) < total or any(
                services.reward_problem(reward=reward, member=member) is not None
                or _over_limit(reward=reward, member=member, quantity=quantity)
                for reward, quantity in items
            ):
                continue
            self.orders[key] = services.order_place(
                member=member,
                program=book.program,
                items=items,
                paid_by=PaidBy.COMPANY if spec.company else PaidBy.MEMBER,
                checkout_key=key,
                address=self._address(person) if any(reward.needs_address for reward, _ in items) else None,
            )
            self.taken.add(person.key)
            return
        if spec.who in self.logins:
            raise ApplicationError(
                f"Demo order {key}: the demo {spec.who} cannot place it now.", code=ErrorCode.DEMO_DATA
            )
        # nobody suitable could afford it: it did not happen (and neither do its moves)

    def _address(self, person: Person) -> dict:
        street, postcode, city, country = ADDRESSES[person.company.region]
        return {
            "name": f"{person.name}, {person.company.name}",
            "street": street.format(n=self.rng.randint(2, 60)),
            "postcode": postcode,
            "city": city,
            "country": country,
        }

    def _move(self, key: str, status: str, note: str, by: int) -> None:
        order = self.orders.get(key)
        if order is None:
            return
        _, email = partners_demo.PROGRAM_MANAGERS[by]
        actor = self.book.staff[email]
        if status == OrderStatus.CANCELLED and order.status == OrderStatus.PLACED:
            actor = order.member.user  # the member withdraws what is still waiting for approval
        shipment = {}
        if status == OrderStatus.FULFILLED and order.needs_shipping:
            carrier, pattern = self.rng.choice(CARRIERS)
            shipment = {"carrier": carrier, "tracking_number": pattern.format(self.rng.randrange(10**9))}
        self.orders[key] = services.order_transition(order=order, to=status, actor=actor, note=note, **shipment)

    def _cart(self, role: str, sku: str, quantity: int) -> None:
        services.cart_set(member=self.book.member(self.logins[role]), reward=self.rewards[sku], quantity=quantity)
