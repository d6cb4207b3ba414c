"""The demo program's referrals, equipment returns, co-marketing funds and prize draws (issue #13): a
loyalty.demo.program extension, like sales, learning and rewards.

Everything here is written AFTER the rest of the demo: every step is at the end of the replay ("now"), after the
other extensions' steps at that moment, and this module draws from its own random.Random, so the history, the
orders and the standings the other parts make are the same with it or without it. Inside its steps the rows get the
moments they would have had (a referral submitted five weeks ago, a draw drawn last month) through a nested demo
clock; every ledger posting (a conversion, a confirmed return, a reimbursement, an entry bought) happens at the end,
after the last entry of the history, so that statements still read in date order.

Every record goes through its service, as a member or a program manager would make it:
- the rules that pay them (sales.ACTIVITY_RULES: a converted referral 500 points, a returned unit 100 points up to
  10,000 a month, one point per euro of co-marketing reimbursed);
- referrals of the demo logins and of members of other partners in every status: submitted, qualified, converted
  (paid by the rule), rejected with a reason, and one duplicate of a prospect another partner referred first;
- return types (softener resin tanks with serial numbers, filter cartridges, RO membranes and UV lamps without),
  two collection points (the program team's recycling centre, and the flagship's returns desk, whose staff confirm
  the returns brought there), returns waiting, confirmed (one of them limited by the monthly cap) and rejected;
- co-marketing: the program reimburses 40 % (Silver 50 %, Gold 60 %), divided by 1 + the other brands an advert
  names; funds by tier for Silver and Gold partners and one set by hand; requests requested, pre-approved,
  declined, claimed with proof (a small PNG advert and a PDF invoice), claim rejected, withdrawn and reimbursed
  (with no other brand and with two);
- prize draws: one drawn last month (free entries of the region that requires them and entries earned by activity;
  winners from the revealed seed, which its verification page re-derives) and one open, where the demo logins hold
  entries bought with points and the free entry their region offers.
"""

import random
import struct
import zlib
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from django.core.files.base import ContentFile
from django.db.models import Max, QuerySet
from django.utils import timezone

from loyalty.constants import ReferralStatus
from loyalty.demo import sales
from loyalty.demo.program import PROGRAM_SLUG, Book, DemoClock, Person, Step
from loyalty.models import (
    CollectionPoint,
    DrawEntry,
    EquipmentReturn,
    IncentiveRule,
    MarketingFund,
    MarketingRequest,
    PointsEntry,
    PrizeDraw,
    Referral,
    ReturnType,
    Tier,
)
from loyalty.services import comarketing, draws, referrals, returns
from loyalty.services.comarketing import Period
from partners import demo as partners_demo
from partners.constants import MemberStatus, PartnerKind
from partners.models import Region, Role

TABLES = (
    ("referrals", Referral),
    ("return types", ReturnType),
    ("collection points", CollectionPoint),
    ("equipment returns", EquipmentReturn),
    ("co-marketing funds", MarketingFund),
    ("co-marketing requests", MarketingRequest),
    ("prize draws", PrizeDraw),
    ("draw entries", DrawEntry),
)

# Referrals ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReferralSpec:
    """A referral by a demo login (`role`) or by a member of another partner (role ""), `days` ago; then `qualify`
    days ago, and `end`: "convert" (today, with `deal` euros if known), "reject" (`days_end` ago, with `reason`) or
    nothing. `same_as`: the key of an earlier referral of the same prospect (same e-mail)."""

    key: str
    role: str
    company: str
    company_id: str
    contact: str
    email: str
    need: str
    days: float
    qualify: float | None = None
    end: str = ""
    deal: str | None = None
    reason: str = ""
    days_end: float = 0
    same_as: str = ""


CONVERT, REJECT = "convert", "reject"
RS = ReferralSpec
REFERRALS = (
    RS("o1", "", "Lakeside Craft Brewery", "GB 318 4470 25", "Hannah Moss", "hannah.moss@lakeside-brewery.example",
       "Softened and filtered process water for a new brewhouse, about 4 m³ a day.", 44, 30),
    RS("s1", "sales", "Brookfield Hotels Group", "GB 274 1187 66", "Daniel Reeve", "d.reeve@brookfield-hotels.example",
       "Water softening for three hotels in Yorkshire: kitchens, laundries and 240 rooms.", 52, 45, CONVERT, "48500"),
    RS("s2", "sales", "Harbourside Dental Clinic", "GB 509 3321 08", "Dr Amira Shah",
       "amira.shah@harbourside-dental.example", "Pure water for the sterilisers and the dental chairs.", 16, 9),
    RS("e1", "engineer", "St Mary's Primary School", "", "Peter Lowe", "bursar@stmarys-primary.example",
       "Drinking water fountains with filters in the new sports hall.", 6),
    RS("e2", "engineer", "Meadow Farm Dairy", "GB 733 9046 12", "Claire Barton", "claire@meadowfarm-dairy.example",
       "UV disinfection of the borehole water for the milking parlour.", 27, None, REJECT, reason=(
           "Meadow Farm Dairy already buys through its cooperative's contract with AquaPro, so a referral cannot be "
           "paid for it. Thank you for bringing it to us."), days_end=22),
    RS("f1", "foreman", "Riverside Leisure Centre", "GB 146 2278 90", "Tom Quinn", "t.quinn@riverside-leisure.example",
       "Softeners and legionella checks for the pool showers.", 38, 26, CONVERT),
    RS("f2", "foreman", "Lakeside Brewery Ltd", "", "Hannah Moss", "hannah.moss@lakeside-brewery.example",
       "Their new brewhouse needs softened water.", 11, same_as="o1"),
    RS("w1", "owner", "Kingsbridge Property Management", "GB 862 5519 37", "Lucy Fenwick",
       "lucy.fenwick@kingsbridge-pm.example", "Filters and softeners for 60 rented flats, serviced every year.",
       20, 12),
    RS("o2", "", "Ashcombe Care Homes", "GB 455 6730 81", "Mark Ellis", "m.ellis@ashcombe-care.example",
       "Legionella-safe hot water in four care homes.", 63, 50, CONVERT, "22000"),
    RS("o3", "", "Greenway Garden Centre", "", "Ruth Palmer", "ruth@greenway-garden.example",
       "Rainwater filtration for the plant houses.", 35, None, REJECT, reason=(
           "Greenway Garden Centre wants rainwater harvesting, which AquaPro does not make."), days_end=31),
    RS("o4", "", "Northfield Sports Club", "GB 690 1274 53", "Aaron Webb", "aaron.webb@northfield-sports.example",
       "A softener for the clubhouse showers.", 9),
    RS("o5", "", "Bayview Veterinary Practice", "GB 921 8805 46", "Dr Nina Holt", "nina.holt@bayview-vets.example",
       "Reverse osmosis water for the laboratory and the kennels.", 24, 14),
)  # fmt: skip

# Returns --------------------------------------------------------------------------------------------------------

RETURN_TYPES = (  # (key, name, product line, serial numbers required, most units in one return)
    ("resin", "Used softener resin tank", "softeners", True, 20),
    ("cartridges", "Filter cartridges", "filtration", False, 500),
    ("membranes", "RO membranes", "reverse-osmosis", False, 100),
    ("lamps", "UV lamps", "uv-disinfection", False, 100),
)
CENTRE = ("AquaPro recycling centre, Leeds", "Unit 4, Aire Valley Trading Estate, Leeds LS10 1AB")
DESK = "returns desk"  # the flagship's collection point: "<flagship name> returns desk"


@dataclass(frozen=True)
class ReturnSpec:
    """A return of `units` of a type, `days` ago (`this_month`: on a day of the current month, so the monthly cap
    counts them together), at the centre or the desk; then "confirm" (today, by a program manager or, at the desk,
    by the flagship's owner), "reject" (with `reason`) or nothing. `role`: a demo login, or "" for another partner's
    member."""

    key: str
    role: str
    kind: str
    units: int
    days: int
    point: str = "centre"
    end: str = ""
    reason: str = ""
    this_month: bool = False


CONFIRM = "confirm"
RETURNS = (
    ReturnSpec("e1", "engineer", "cartridges", 70, 12, end=CONFIRM, this_month=True),
    ReturnSpec("e2", "engineer", "cartridges", 45, 3, end=CONFIRM, this_month=True),  # over the monthly cap
    ReturnSpec("e3", "engineer", "resin", 2, 40, end=CONFIRM),
    ReturnSpec("f1", "foreman", "resin", 3, 4, point="desk"),  # the flagship's colleagues confirm it
    ReturnSpec("f2", "foreman", "lamps", 5, 25, end=REJECT, reason=(
        "The lamps were not in the returns cage at the recycling centre. Bring them in and register them again.")),
    ReturnSpec("f3", "foreman", "membranes", 4, 30, end=CONFIRM),
    ReturnSpec("s1", "sales", "cartridges", 24, 8),
    ReturnSpec("w1", "owner", "membranes", 6, 15, point="desk", end=CONFIRM),
    ReturnSpec("x1", "", "resin", 1, 2, point="desk"),
    ReturnSpec("x2", "", "cartridges", 36, 5, point="desk"),
    ReturnSpec("x3", "", "lamps", 8, 9, point="desk", end=CONFIRM),
    ReturnSpec("x4", "", "cartridges", 120, 20, end=CONFIRM),
    ReturnSpec("x5", "", "resin", 2, 14, end=REJECT, reason="Serial numbers do not match the tanks we received."),
    ReturnSpec("x6", "", "membranes", 10, 6),
)  # fmt: skip

# Co-marketing ---------------------------------------------------------------------------------------------------

PROGRAM_MDF_PERCENT = Decimal("40")
TIER_MDF = {"Silver": (Decimal("50"), Decimal("5000")), "Gold": (Decimal("60"), Decimal("10000"))}
BY_HAND = (Decimal("2000"), "Launch support for the new showroom, agreed with Martin Keller")


@dataclass(frozen=True)
class MdfSpec:
    """A request of the flagship (by `role`) or of another partner's owner (role ""): submitted `days` ago for an
    activity `planned` days from then, costing `cost`; then the moves (days ago, action, detail)."""

    key: str
    role: str
    title: str
    description: str
    days: int
    planned: int
    cost: str
    moves: tuple[tuple[float, str, object], ...] = ()


PRE_APPROVE, DECLINE, CLAIM, REJECT_CLAIM, REIMBURSE, WITHDRAW = (
    "pre-approve", "decline", "claim", "reject-claim", "reimburse", "withdraw"
)  # fmt: skip
NOW = 0  # "days ago" of the moves made today (the reimbursements: they post points)
MDF = (
    MdfSpec("w1", "owner", "Spring home show stand, Harrogate",
            "A 3 × 3 m stand with an AquaSoft Smart 700 running, leaflets and a hardness-test offer.", 70, 21, "2600",
            ((68, PRE_APPROVE, "1500"), (40, CLAIM, ("2400", 0)), (NOW, REIMBURSE, None))),
    MdfSpec("s1", "sales", "Local radio advert: AquaSoft Smart",
            "Two weeks of 30-second spots on Dales Radio, shared with the kitchen and bathroom shops we supply.", 55,
            14, "2000", ((53, PRE_APPROVE, "1000"), (30, CLAIM, ("1800", 2)), (NOW, REIMBURSE, None))),
    MdfSpec("w2", "owner", "Trade magazine half page",
            "Half a page in Installer Today's water treatment issue, AquaPro products only.", 36, 12, "1400",
            ((34, PRE_APPROVE, "700"), (5, CLAIM, ("1380", 0)))),
    MdfSpec("s2", "sales", "Installer open day",
            "An afternoon at our Leeds branch: UVGuard Pro demonstrations and a barbecue for 40 installers.", 9, 30,
            "900", ((7, PRE_APPROVE, "450"),)),
    MdfSpec("w3", "owner", "Branded van wraps",
            "AquaPro livery on two of our service vans.", 2, 25, "3200"),
    MdfSpec("s3", "sales", "Search adverts for softeners",
            "A month of paid search adverts for 'water softener Leeds'.", 20, 10, "1200",
            ((18, DECLINE, "Paid search adverts are not co-marketing under the program's policy: ask us about the "
                           "trade-show fund instead."),)),
    MdfSpec("x1", "", "Showroom window display",
            "A window display of the PureFlow range for the summer.", 48, 14, "800",
            ((46, PRE_APPROVE, "400"), (25, CLAIM, ("760", 1)), (20, REJECT_CLAIM,
             "The invoice is the printer's quote, not its invoice: send the invoice with the amount paid."))),
    MdfSpec("x2", "", "Regional newspaper advert",
            "A quarter page in the regional newspaper's home and garden supplement.", 30, 10, "600",
            ((28, PRE_APPROVE, "300"), (15, WITHDRAW, None))),
    MdfSpec("x3", "", "Plumbers' breakfast",
            "A breakfast briefing on UVGuard Pro for 25 local plumbers.", 60, 12, "500",
            ((58, PRE_APPROVE, "500"), (40, CLAIM, ("480", 0)), (NOW, REIMBURSE, None))),
)  # fmt: skip

# Prize draws ----------------------------------------------------------------------------------------------------

PAST_DRAW = {
    "name": "Showroom draw: an AquaSoft Smart 700 for your showroom",
    "description": "Every 500 AquaPoints the rules paid you in the draw's weeks is an entry; in regions whose law "
    "asks for it, one free entry with the same odds. Three winners.",
    "prizes": "An AquaSoft Smart 700 softener for your showroom\nA UVGuard Pro 25 UV steriliser\n"
    "An AquaPro service case, fully equipped",
    "entry_price_points": 250,
    "max_entries_per_member": 10,
    "points_per_activity_entry": 500,
}
OPEN_DRAW = {
    "name": "Factory draw: a visit to the AquaPro factory",
    "description": "Two days at the AquaPro factory and lab for two, travel and hotel included, and two more prizes. "
    "Buy entries with points, or earn them: every 500 AquaPoints the rules pay you while the draw is open is an "
    "entry at the close.",
    "prizes": "Two days at the AquaPro factory and lab for two\nAn AquaPro service case, fully equipped\n"
    "A 5,000 AquaPoints voucher",
    "entry_price_points": 200,
    "max_entries_per_member": 10,
    "points_per_activity_entry": 500,
}
PAST_OPENS, PAST_CLOSES = 62, 33  # days ago
OPEN_OPENS, OPEN_CLOSES = 12, 19  # days ago, days ahead
BOUGHT = {"sales": 3, "engineer": 2, "owner": 1}  # the demo logins' bought entries in the open draw
FREE_OTHERS = 12  # members of the free-entry region who took their free entry, in each draw


def marker() -> QuerySet:
    """Rows that exist once this part is seeded (loyalty.demo.program checks them with the program, in one query)."""
    return ReturnType.objects.filter(program__slug=PROGRAM_SLUG)


def plan(book: Book) -> list[Step]:
    return _Activities(book).plan()


def advert_png(rgb: tuple[int, int, int] = (0, 94, 184), width: int = 48, height: int = 24) -> bytes:
    """A tiny valid PNG (one colour), standing for a photo of the advert."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    rows = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


@contextmanager
def _clock(at: datetime):
    """Within the replay's clock, another moment (a nested demo clock: rows made inside get `at`)."""
    with DemoClock(at).running():
        yield


class _Activities:
    def __init__(self, book: Book):
        self.book = book
        self.now = book.now
        self.rng = random.Random(f"{partners_demo.SEED}:activities")
        self.flagship = partners_demo.legal_id(0, 0)
        self.logins = book.demo_logins()
        self.others = self._others()
        self.program = None
        self.types: dict[str, ReturnType] = {}
        self.points: dict[str, CollectionPoint] = {}
        self.referrals: dict[str, Referral] = {}

    def plan(self) -> list[Step]:
        """Every step at the end of the replay; the counts (by TABLES label) are a dry run's estimate."""
        referred = [spec for spec in REFERRALS if self._who(spec.role) is not None]
        returned = [spec for spec in RETURNS if self._who(spec.role) is not None]
        requesters = {spec.key: self._requester(spec) for spec in MDF}
        asked = [spec for spec in MDF if requesters[spec.key] is not None]
        partners = {person.company.legal_id for person in requesters.values() if person is not None}
        plan = (
            (self._setup, {"incentive rules": len(sales.ACTIVITY_RULES), "return types": len(RETURN_TYPES),
                           "collection points": 2}),
            (self._referrals, {"referrals": len(referred),
                               "points entries": sum(spec.end == CONVERT for spec in referred)}),
            (self._returns, {"equipment returns": len(returned),
                             "points entries": sum(spec.end == CONFIRM for spec in returned)}),
            (self._co_marketing, {"co-marketing funds": len(partners), "co-marketing requests": len(asked),
                                  "points entries": sum(m[1] == REIMBURSE for spec in asked for m in spec.moves)}),
            (self._draws, {"prize draws": 2, "draw entries": 2 * FREE_OTHERS + len(self.logins) + len(BOUGHT),
                           "points entries": len(BOUGHT)}),
        )  # fmt: skip
        return [Step(self.now, run, Counter(counts)) for run, counts in plan]

    # Who ------------------------------------------------------------------------------------------------------

    def _others(self) -> list[Person]:
        """Active members of other active partners (owners first, then the rest), in a fixed shuffled order."""
        people = sorted(
            (p for p in self.book.people
             if p.company.legal_id != self.flagship and p.company.active and p.status == MemberStatus.ACTIVE),
            key=lambda p: p.key,
        )  # fmt: skip
        self.rng.shuffle(people)
        return people

    def _other(self, n: int, *, owner: bool = False, kinds: tuple[str, ...] = ()) -> Person | None:
        found = [p for p in self.others if (not owner or p.role == "owner") and (not kinds or p.company.kind in kinds)]
        return found[n % len(found)] if found else None

    def _who(self, role: str, n: int = 0) -> Person | None:
        return self.logins.get(role) if role else self._other(n)

    def _member(self, person: Person):
        return self.book.member(person)

    def _manager(self, n: int = 0):
        return self.book.staff[partners_demo.PROGRAM_MANAGERS[n % 2][1]]

    def _ago(self, days: float, hour: float | None = None) -> datetime:
        """`days` ago, at a working hour of that day when `hour` is given; never later than a minute ago."""
        at = self.now - timedelta(days=days)
        if hour is not None:
            local = timezone.localtime(at)
            at = local.replace(hour=int(hour), minute=int(hour % 1 * 60), second=0, microsecond=0)
        return min(at, self.now - timedelta(minutes=1))

    def _today_moment(self) -> datetime:
        """When today's postings happen: after every entry the history wrote (the sell-out import's entries take the
        database's time), so statements read in date order."""
        last = PointsEntry.objects.filter(account__program=self.program).aggregate(last=Max("created_at"))["last"]
        return max(self.now, last or self.now)

    # Setting up -----------------------------------------------------------------------------------------------

    def _setup(self) -> None:
        program = self.program = self.book.program
        lines = sales.product_lines()
        roles = {role.code: role for role in Role.objects.all()}
        effective = self.now - timedelta(days=120)
        for spec in sales.ACTIVITY_RULES:
            if not IncentiveRule.objects.filter(program=program, event=spec.event).exists():
                sales.create_rule(spec, program=program, lines=lines, products={}, roles=roles,
                                  actor=self._manager(), effective=effective)  # fmt: skip
        program.mdf_percent, program.mdf_share_by_brands = PROGRAM_MDF_PERCENT, True
        program.save(update_fields=["mdf_percent", "mdf_share_by_brands", "updated_at"])
        for name, (percent, amount) in TIER_MDF.items():
            Tier.objects.filter(program=program, name=name).update(mdf_percent=percent, mdf_fund_amount=amount)
        self.types = {
            key: ReturnType.objects.create(program=program, name=name, product_line=lines.get(line),
                                           requires_serials=serials, max_quantity=most)
            for key, name, line, serials, most in RETURN_TYPES
        }  # fmt: skip
        flagship = self.book.channel.partners[self.flagship]
        self.points = {
            "centre": CollectionPoint.objects.create(program=program, name=CENTRE[0], address=CENTRE[1]),
            "desk": CollectionPoint.objects.create(
                program=program,
                name=f"{flagship.name} {DESK}",
                address="12 Canal Wharf, Leeds LS11 5PS",
                partner=flagship,
            ),
        }
        # The flagship's region asks for a free way into prize draws (the UK's "no purchase necessary").
        if not Region.objects.filter(free_draw_entry=True).exists():
            Region.objects.filter(pk=flagship.region_id).update(free_draw_entry=True)

    # Referrals ------------------------------------------------------------------------------------------------

    def _referrals(self) -> None:
        program = self.program
        today = []
        for n, spec in enumerate(REFERRALS):
            person = self._who(spec.role, n)
            if person is None:
                continue
            with _clock(self._ago(spec.days, hour=9 + n % 8)):
                referral = referrals.referral_submit(
                    member=self._member(person), program=program, company_name=spec.company,
                    company_id=spec.company_id, contact_name=spec.contact, contact_email=spec.email, need=spec.need,
                )  # fmt: skip
            self.referrals[spec.key] = referral
            if spec.qualify is not None:
                with _clock(self._ago(spec.qualify, hour=11)):
                    referral = referrals.referral_transition(
                        referral=referral, to=ReferralStatus.QUALIFIED, actor=self._manager(n)
                    )
            if spec.end == REJECT:
                with _clock(self._ago(spec.days_end, hour=14)):
                    referrals.referral_transition(
                        referral=referral, to=ReferralStatus.REJECTED, actor=self._manager(n), reason=spec.reason
                    )
            elif spec.end == CONVERT:
                today.append((n, referral, spec))
        with _clock(self._today_moment()):
            for n, referral, spec in today:
                referrals.referral_transition(
                    referral=referral, to=ReferralStatus.CONVERTED, actor=self._manager(n),
                    deal_amount=Decimal(spec.deal) if spec.deal else None,
                )  # fmt: skip

    # Returns --------------------------------------------------------------------------------------------------

    def _returned_on(self, spec: ReturnSpec) -> date:
        today = timezone.localdate(self.now)
        day = today - timedelta(days=spec.days)
        return max(day, today.replace(day=1)) if spec.this_month else day

    def _returns(self) -> None:
        program = self.program
        desk_owner = self.book.owner_of(self.flagship)
        confirm = []
        for n, spec in enumerate(RETURNS):
            person = self._who(spec.role, 3 * n + 1)
            if person is None:
                continue
            day = self._returned_on(spec)
            start = timezone.make_aware(datetime.combine(day, time(0, 5)))
            at = max(start, min(timezone.make_aware(datetime.combine(day, time(16, 30))), self._ago(0.05)))
            serials = [self._serial() for _ in range(spec.units)] if self.types[spec.kind].requires_serials else []
            with _clock(at):
                registered = returns.return_register(
                    member=self._member(person), program=program, return_type=self.types[spec.kind],
                    collection_point=self.points[spec.point], quantity=spec.units, returned_on=day, serials=serials,
                )  # fmt: skip
            if spec.end == REJECT:
                with _clock(min(at + timedelta(days=2), self._ago(0.02))):
                    returns.return_reject(return_id=registered.pk, actor=self._manager(n), reason=spec.reason)
            elif spec.end == CONFIRM:
                by_desk = spec.point == "desk" and desk_owner is not None and desk_owner.key != person.key
                actor = self._member(desk_owner).user if by_desk else self._manager(n)
                confirm.append((registered.pk, actor))
        with _clock(self._today_moment()):
            for return_id, actor in confirm:
                returns.return_confirm(return_id=return_id, actor=actor)

    def _serial(self) -> str:
        return f"AQS-RT{self.rng.randrange(10**7, 10**8)}"

    # Co-marketing ---------------------------------------------------------------------------------------------

    def _period(self) -> Period:
        """Twelve whole months: from the first day of the month five months ago."""
        today = timezone.localdate(self.now)
        index = today.year * 12 + today.month - 1 - 5
        start = date(index // 12, index % 12 + 1, 1)
        end_index = index + 12
        return Period(start, date(end_index // 12, end_index % 12 + 1, 1) - timedelta(days=1))

    def _requester(self, spec: MdfSpec) -> Person | None:
        if spec.role:
            return self.logins.get(spec.role)
        return self._other(
            {"x1": 0, "x2": 1, "x3": 2}.get(spec.key, 0), owner=True, kinds=(PartnerKind.DEALER, PartnerKind.INSTALLER)
        )

    def _co_marketing(self) -> None:
        program, period = self.program, self._period()
        started = timezone.make_aware(datetime.combine(period.start, time(8)))
        requesters = {spec.key: self._requester(spec) for spec in MDF}
        with _clock(min(started, self._ago(70, hour=8))):
            comarketing.funds_by_tier(program=program, period=period)
            flagship = self.book.channel.partners[self.flagship]
            for person in requesters.values():  # a fund for every partner asking, by hand where its tier has none
                if person is None:
                    continue
                partner = self.book.channel.partners[person.company.legal_id]
                if (
                    partner.pk != flagship.pk
                    and not MarketingFund.objects.filter(
                        program=program, partner=partner, period_start=period.start
                    ).exists()
                ):
                    amount, note = BY_HAND
                    comarketing.fund_set(program=program, partner=partner, period=period, amount=amount, note=note)
            if not MarketingFund.objects.filter(program=program, partner=flagship).exists():
                comarketing.fund_set(program=program, partner=flagship, period=period, amount=TIER_MDF["Silver"][1])
        today = []
        for n, spec in enumerate(MDF):
            person = requesters[spec.key]
            if person is None:
                continue
            member = self._member(person)
            submitted = self._ago(spec.days, hour=10 + n % 6)
            with _clock(submitted):
                request = comarketing.request_submit(
                    member=member, program=program, title=spec.title, description=spec.description,
                    planned_on=timezone.localdate(submitted) + timedelta(days=spec.planned),
                    planned_cost=Decimal(spec.cost),
                )  # fmt: skip
            for days, action, detail in spec.moves:
                if days == NOW:
                    today.append((n, request, action))
                    continue
                with _clock(self._ago(days, hour=15)):
                    request = self._mdf_move(n, request, member, action, detail)
        with _clock(self._today_moment()):
            for n, request, action in today:
                self._mdf_move(n, request, None, action, None)

    def _mdf_move(self, n: int, request: MarketingRequest, member, action: str, detail) -> MarketingRequest:
        manager = self._manager(n)
        if action == PRE_APPROVE:
            return comarketing.request_pre_approve(request=request, actor=manager, amount=Decimal(detail))
        if action == DECLINE:
            return comarketing.request_decline(request=request, actor=manager, reason=detail)
        if action == REJECT_CLAIM:
            return comarketing.request_reject_claim(request=request, actor=manager, reason=detail)
        if action == WITHDRAW:
            return comarketing.request_withdraw(request=request, member=member)
        if action == REIMBURSE:
            return comarketing.request_reimburse(request=request, actor=manager)
        cost, brands = detail
        slug = f"{request.pk}"
        proofs = [
            ("advert", ContentFile(advert_png(self._colour()), name=f"advert-{slug}.png")),
            ("invoice", ContentFile(sales.invoice_pdf(f"MKT-{request.pk:05d}"), name=f"invoice-{slug}.pdf")),
        ]
        return comarketing.request_claim(
            request=request, member=member, actual_cost=Decimal(cost), other_brands=brands, proofs=proofs
        )

    def _colour(self) -> tuple[int, int, int]:
        return (self.rng.randrange(256), self.rng.randrange(256), self.rng.randrange(256))

    # Prize draws ----------------------------------------------------------------------------------------------

    def _draws(self) -> None:
        free_region = set(Region.objects.filter(free_draw_entry=True).values_list("pk", flat=True))
        partners = self.book.channel.partners
        free_people = [p for p in self.others if partners[p.company.legal_id].region_id in free_region]
        logins = [self.logins[role] for role in ("owner", "sales", "engineer", "foreman") if role in self.logins]
        free_logins = [p for p in logins if partners[p.company.legal_id].region_id in free_region]

        # Drawn last month: free entries and entries earned by activity; the seed revealed.
        opens, closes = self._ago(PAST_OPENS, hour=9), self._ago(PAST_CLOSES, hour=18)
        past = self._draw(PAST_DRAW, opens=opens, closes=closes)
        self._free_entries(past, [*free_logins, *free_people[:FREE_OTHERS]], opens, closes)
        with _clock(closes + timedelta(minutes=1)):
            draws.draw_close(draw=past)
        with _clock(closes + timedelta(hours=15)):
            draws.draw_run(draw=past)

        # Open now: the demo logins' bought entries (today: they spend points) and free entries.
        opens = self._ago(OPEN_OPENS, hour=9)
        current = self._draw(OPEN_DRAW, opens=opens, closes=self.now + timedelta(days=OPEN_CLOSES))
        self._free_entries(current, [*free_logins, *free_people[FREE_OTHERS : 2 * FREE_OTHERS]], opens, self.now)
        with _clock(self._today_moment()):
            for role, count in BOUGHT.items():
                if role in self.logins:
                    draws.entries_buy(member=self._member(self.logins[role]), draw=current, count=count,
                                      token=f"demo-{role}-{current.pk}")  # fmt: skip

    def _draw(self, fields: dict, *, opens: datetime, closes: datetime) -> PrizeDraw:
        with _clock(opens - timedelta(days=3)):
            draw = PrizeDraw(program=self.program, opens_at=opens, closes_at=closes, **fields)
            draw.full_clean()
            draw.save()
        with _clock(opens):
            return draws.draw_open(draw=draw)

    def _free_entries(self, draw: PrizeDraw, people: list[Person], opens: datetime, until: datetime) -> None:
        for person in people:
            at = opens + (until - opens) * self.rng.uniform(0.05, 0.9)
            with _clock(min(at, self._ago(0.01))):
                draws.free_entry_take(member=self._member(person), draw=draw)
