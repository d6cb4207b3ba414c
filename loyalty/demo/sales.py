"""The demo program's sales side (DESIGN.md §6): catalogue, tiers, incentive rules, sell-out and claims.

A loyalty.demo.program extension, like rewards.demo: `plan(book)` returns steps on the points history's timeline, run
through the services under the demo clock.

- ~40 water-treatment products in 5 lines (the UV line launched this year), a few inactive, big units with an
  unusual quantity; 3 tiers on sales over 365 days.
- Role-based rules published through services.rules (the softener rule got a second version four months ago),
  and one draft for the simulation page; ×1.5 on softener sales for members certified on softeners; the rules that
  pay what a survey offers for answering it and a seat at an event attended; and, negotiated for the flagship only
  (decisions #22), its key-account bonus, published a hundred days ago with the reason the program team approved.
  The rules for training and challenges (LEARNING_RULES) are published by loyalty.demo.learning, which needs them
  earlier.
- Claims of the demo logins in every state, through services.claims, each with a small generated PDF: approved
  automatically and by a program manager, rejected with a reason, corrected and resubmitted, withdrawn,
  waiting with flags, one confirmed by the sell-out import.
- A year of sell-out of block 0's partners from the "Northwater ERP" source (saved column mapping, partner
  aliases), uploaded today as one CSV file through services.sellout: a few returns and a few bad lines, so the
  import list shows a finished import with errors. Then services.tiers evaluates every partner: Northwater
  Distribution is Silver, a little short of Gold.

The import runs last, at "now": the ledger entries it writes in bulk take the database's transaction time, not
the demo clock, so nothing may be posted after them. It names no demo login (their statements read in date
order); the demo logins' rule explanations come from their claims.
"""

import csv
import functools
import io
import random
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.core.files.base import ContentFile
from django.db.models import QuerySet
from django.utils import timezone

from loyalty.constants import CapPeriod, ClaimStatus, Formula, RejectionReason, RuleEvent
from loyalty.demo.program import Book, Company, Person, Step
from loyalty.models import (
    IncentiveRule,
    PartnerAlias,
    PartnerTier,
    Product,
    ProductLine,
    SaleLine,
    SalesClaim,
    SalesImport,
    SalesSource,
    Tier,
)
from loyalty.services import claims, rules, tiers
from loyalty.services.sellout import mapping
from loyalty.services.sellout import run as imports
from partners import demo as partners_demo
from partners.constants import MemberStatus, PartnerKind
from partners.models import Role

TABLES = (
    ("product lines", ProductLine),
    ("products", Product),
    ("tiers", Tier),
    ("partner tiers", PartnerTier),
    ("incentive rules", IncentiveRule),
    ("sales sources", SalesSource),
    ("sales imports", SalesImport),
    ("sale lines", SaleLine),
    ("sales claims", SalesClaim),
)

LINES = (  # (code, name)
    ("softeners", "Water softeners"),
    ("reverse-osmosis", "Reverse osmosis"),
    ("filtration", "Filtration"),
    ("uv-disinfection", "UV disinfection"),
    ("spare-parts", "Spare parts & service kits"),
)
NEW_LINE = "uv-disinfection"  # launched this year (in the campaign year, see _campaign_year)


@dataclass(frozen=True)
class ProductSpec:
    sku: str
    name: str
    line: str
    price: int  # net euros a unit, for the demo's amounts
    launched: int  # years before the program's history ends (0: the new line's launch date)
    unusual: int | None = None
    active: bool = True


P = ProductSpec
PRODUCTS = (
    P("AQS-300", "AquaSoft 300 softener", "softeners", 690, 6, unusual=10),
    P("AQS-500", "AquaSoft 500 twin softener", "softeners", 1_450, 5, unusual=6),
    P("AQS-700", "AquaSoft Smart 700 softener", "softeners", 2_150, 2, unusual=5),
    P("AQS-900C", "AquaSoft 900 commercial softener", "softeners", 5_800, 3, unusual=3),
    P("AQS-200", "AquaSoft 200 compact softener", "softeners", 520, 9, active=False),
    P("AQS-SALT25", "AquaSoft salt tablets 25 kg", "softeners", 14, 8, unusual=400),
    P("AQS-BYP", "AquaSoft bypass valve kit", "softeners", 85, 6),
    P("AQS-RES25", "AquaSoft resin refill 25 l", "softeners", 160, 7),
    P("PFR-5", "PureFlow RO-5 under-sink system", "reverse-osmosis", 420, 5, unusual=20),
    P("PFR-7P", "PureFlow RO-7 Plus with mineraliser", "reverse-osmosis", 640, 2, unusual=15),
    P("PFR-400", "PureFlow RO-400 whole-house system", "reverse-osmosis", 4_900, 4, unusual=4),
    P("PFR-1000C", "PureFlow RO-1000 commercial system", "reverse-osmosis", 11_500, 3, unusual=2),
    P("PFR-3", "PureFlow RO-3 under-sink system", "reverse-osmosis", 360, 10, active=False),
    P("PFR-MEM75", "PureFlow membrane 75 GPD", "reverse-osmosis", 65, 5),
    P("PFR-MEM400", "PureFlow membrane pack 400 GPD", "reverse-osmosis", 240, 4),
    P("PFR-TANK12", "PureFlow 12 l storage tank", "reverse-osmosis", 90, 5),
    P("CLF-SED5", "ClearLine sediment cartridge 6-pack", "filtration", 28, 8, unusual=200),
    P("CLF-CB10", "ClearLine carbon block filter 10 in", "filtration", 19, 8, unusual=300),
    P("CLF-BB20", "ClearLine BigBlue 20 in housing", "filtration", 120, 7),
    P("CLF-BB10", "ClearLine BigBlue 10 in housing", "filtration", 85, 7),
    P("CLF-SPIN", "ClearLine spin-down prefilter", "filtration", 95, 3),
    P("CLF-IRON", "ClearLine iron and manganese filter", "filtration", 1_650, 2, unusual=5),
    P("CLF-AKF", "ClearLine AquaKleen backwash filter", "filtration", 980, 4, unusual=8),
    P("CLF-TWIN", "ClearLine twin cartridge housing", "filtration", 60, 11, active=False),
    P("UVP-12", "UVGuard Pro 12 UV steriliser", "uv-disinfection", 540, 0, unusual=20),
    P("UVP-25", "UVGuard Pro 25 UV steriliser", "uv-disinfection", 790, 0, unusual=10),
    P("UVP-50", "UVGuard Pro 50 whole-house UV system", "uv-disinfection", 1_450, 0, unusual=5),
    P("UVP-LAMP12", "UVGuard Pro replacement lamp 12", "uv-disinfection", 45, 0),
    P("UVP-LAMP25", "UVGuard Pro replacement lamp 25", "uv-disinfection", 65, 0),
    P("UVP-SENS", "UVGuard Pro UV intensity sensor", "uv-disinfection", 210, 0),
    P("SPK-INST-SOFT", "Softener installation kit", "spare-parts", 95, 6),
    P("SPK-INST-RO", "RO installation kit", "spare-parts", 60, 5),
    P("SPK-INST-UV", "UV installation kit", "spare-parts", 70, 0),
    P("SPK-SVC-SOFT", "Softener annual service kit", "spare-parts", 48, 6),
    P("SPK-SVC-RO", "RO annual service kit", "spare-parts", 55, 5),
    P("SPK-SVC-UV", "UV annual service kit", "spare-parts", 58, 0),
    P("SPK-VALVE", "Control valve 5600SXT", "spare-parts", 380, 8),
    P("SPK-PCB", "Softener control board", "spare-parts", 230, 4),
    P("SPK-HOSE", "Hose and fittings set", "spare-parts", 25, 8),
    P("SPK-TEST", "Water hardness test kit", "spare-parts", 12, 6),
)
MARKER_SKU = PRODUCTS[0].sku  # the sales part is there when this product is
PRODUCT = {p.sku: p for p in PRODUCTS}
INSTALLATION_KITS = ("SPK-INST-SOFT", "SPK-INST-RO", "SPK-INST-UV")
UV_SYSTEMS = ("UVP-12", "UVP-25", "UVP-50")

TIERS = (  # (rank, name, threshold in euros, multiplier, service level)
    (0, "Bronze", 0, "1.00", "Partner portal, online training and next-day technical support."),
    (1, "Silver", 40_000, "1.10", "Priority support line, a free product training a year, 50 % co-marketing."),
    (2, "Gold", 120_000, "1.25", "Personal account manager, same-day spare parts, early access to new lines."),
)
FLAGSHIP_METRIC = Decimal("108450.00")  # Northwater's sales over the window: Silver, 11,550 € short of Gold


@dataclass(frozen=True)
class RuleSpec:
    code: str
    name: str
    description: str
    formula: str
    value: str
    roles: tuple[str, ...] = ()
    lines: tuple[str, ...] = ()
    products: tuple[str, ...] = ()
    partner_kinds: tuple[str, ...] = ()
    shares: tuple[tuple[str, int], ...] = ()
    window: str = ""  # "march": the campaign month; "launch": from the new line's launch
    cap: int | None = None
    budget: int | None = None
    priority: int = 100
    publish: bool = True
    event: str = RuleEvent.SALE_LINE
    tier_multiplier: bool = True
    certificate: str = ""  # the line a member must be certified on (IncentiveRule.requires_certification)
    partners: tuple[str, ...] = ()  # negotiated for these partners only (legal ids), with the reason
    reason: str = ""


RULES = (
    RuleSpec("softener-units", "AquaSoft softeners for sales reps",
             "Sell an AquaSoft softener or consumable: points for every unit.", Formula.PER_UNIT, "40",
             roles=("sales",), lines=("softeners",)),
    RuleSpec("ro-systems", "PureFlow RO systems, shared",
             "Points on every euro of reverse osmosis: 60 % to the sales rep, 30 % to the engineer, the rest to "
             "your company.", Formula.PER_AMOUNT, "0.5", lines=("reverse-osmosis",),
             shares=(("sales", 60), ("engineer", 30))),
    RuleSpec("installation-kits", "Installation kits for engineers and foremen",
             "Register the installation kit you fitted.", Formula.FIXED, "150", roles=("engineer", "foreman"),
             products=INSTALLATION_KITS),
    RuleSpec("uv-march-double", "UVGuard Pro month: double points in March",
             "All points on the new UV line count double for invoices dated in March.", Formula.MULTIPLIER, "2",
             lines=(NEW_LINE,), window="march", priority=50),
    RuleSpec("distributor-bonus", "Distributor bonus 10 %", "Distributors get 10 % on top of every sale's points.",
             Formula.PERCENT_BONUS, "10", partner_kinds=(PartnerKind.DISTRIBUTOR,), priority=40),
    RuleSpec("filtration-capped", "ClearLine cartridges and filters",
             "5 points a unit, at most 400 points a month for each member.", Formula.PER_UNIT, "5",
             lines=("filtration",), cap=400),
    RuleSpec("uv-launch", "UVGuard Pro launch bonus",
             "250 points for each UVGuard Pro system, while the launch budget lasts.", Formula.FIXED, "250",
             products=UV_SYSTEMS, window="launch", budget=20_000, priority=90),
    RuleSpec("service-kits", "Service kits for service companies (draft)",
             "Proposal: 30 points for every annual service kit a service company fits.", Formula.PER_UNIT, "30",
             products=("SPK-SVC-SOFT", "SPK-SVC-RO", "SPK-SVC-UV"),
             partner_kinds=(PartnerKind.SERVICE_COMPANY,), publish=False),
    RuleSpec("certified-softeners", "Certified on softeners: ×1.5",
             "Members certified on water softeners (pass the Water softening course) earn half as much again on "
             "softener sales.", Formula.MULTIPLIER, "1.5", lines=("softeners",), certificate="softeners",
             priority=60),
    # Surveys offer points for answering (Survey.points_for_answer); this rule pays them (decisions #17).
    RuleSpec("survey-answers", "Survey points", "Answer a program survey: the points it offers, once per survey.",
             Formula.PER_UNIT, "1", event=RuleEvent.SURVEY_ANSWERED, tier_multiplier=False),
    # Coming to an event or expert session booked in the rewards catalogue, once the program team has recorded it
    # (decisions #22; rewards.demo has one that took place).
    RuleSpec("event-attended", "Event attended", "Come to an event or expert session you booked: 250 points.",
             Formula.FIXED, "250", event=RuleEvent.EVENT_ATTENDED, tier_multiplier=False),
)  # fmt: skip
# Negotiated conditions (decisions #22): the flagship's key-account agreement, published KEY_ACCOUNT_DAYS ago by the
# second program manager, who approved it then.
KEY_ACCOUNT_RULE = RuleSpec(
    "northwater-key-account", "Northwater key account: 5 % on top",
    "Northwater's key-account agreement: 5 % on top of every sale's points.", Formula.PERCENT_BONUS, "5",
    priority=40, partners=(partners_demo.legal_id(0, 0),),
    reason="Key-account agreement KA-2026-03: Northwater stocks the full AquaPro range in four branches and trains "
    "ten installers a year. Any distributor making the same commitments gets the same bonus.",
)  # fmt: skip
KEY_ACCOUNT_DAYS = 100
RULE_V2 = ("softener-units", "50", 120)  # (code, new value, days ago it took effect)
# Learning and competing (issue #12): published by loyalty.demo.learning when its courses are set up, before the
# first module anyone passed. A pass pays a fixed amount by role; a completed challenge pays the points it offers.
LEARNING_RULES = (
    RuleSpec("training-field", "Training passed: engineers and foremen",
             "Pass a module's quiz: 400 points, once per module.", Formula.FIXED, "400",
             roles=("engineer", "foreman"), event=RuleEvent.TRAINING_PASSED, tier_multiplier=False),
    RuleSpec("training-office", "Training passed",
             "Pass a module's quiz: 300 points, once per module.", Formula.FIXED, "300",
             roles=("owner", "sales", "purchasing", "logistics"), event=RuleEvent.TRAINING_PASSED,
             tier_multiplier=False),
    RuleSpec("challenge-completed", "Challenge completed",
             "Reach every goal of a challenge: the points it offers.", Formula.PER_UNIT, "1",
             event=RuleEvent.CHALLENGE_COMPLETED, tier_multiplier=False),
)  # fmt: skip
# Referrals, returns and co-marketing (issue #13): published by loyalty.demo.activities when it sets them up, before
# the first return anyone made. Co-marketing pays the company account one point per euro reimbursed.
ACTIVITY_RULES = (
    RuleSpec("referral-converted", "Referral converted",
             "Refer a company that becomes an AquaPro customer: 500 points once it converts.", Formula.FIXED, "500",
             event=RuleEvent.REFERRAL_CONVERTED, tier_multiplier=False),
    RuleSpec("equipment-returned", "Used equipment returned",
             "Return used resin tanks, filter cartridges, membranes or UV lamps for recycling: 100 points a unit, "
             "at most 10,000 points a month.", Formula.PER_UNIT, "100", event=RuleEvent.EQUIPMENT_RETURNED,
             cap=10_000, tier_multiplier=False),
    RuleSpec("co-marketing-approved", "Co-marketing reimbursed",
             "A co-marketing claim approved: 100 points per euro reimbursed (a point is worth one cent), into the "
             "company account.", Formula.PER_UNIT, "100", event=RuleEvent.CO_MARKETING_APPROVED, tier_multiplier=False),
)  # fmt: skip

# The sell-out source, its files' headings (our field -> heading) and the partners' customer codes.
SOURCE_NAME, SOURCE_CODE = "Northwater ERP", "northwater-erp"
MAPPING = {
    "external_id": "Line ID",
    "partner": "Customer No",
    "member": "Sales rep e-mail",
    "sku": "Article No",
    "quantity": "Qty",
    "amount": "Net amount EUR",
    "invoice_number": "Invoice No",
    "invoice_date": "Invoice date",
    "returns_external_id": "Credit for line",
}
LINES_PER_PARTNER = {
    PartnerKind.DISTRIBUTOR: (10, 14),
    PartnerKind.DEALER: (5, 8),
    PartnerKind.INSTALLER: (3, 5),
    PartnerKind.SERVICE_COMPANY: (3, 5),
    PartnerKind.RESELLER: (4, 6),
}
YEARLY_SALES = {  # euros, per partner kind
    PartnerKind.DISTRIBUTOR: (60_000, 160_000),
    PartnerKind.DEALER: (15_000, 70_000),
    PartnerKind.INSTALLER: (4_000, 30_000),
    PartnerKind.SERVICE_COMPANY: (3_000, 20_000),
    PartnerKind.RESELLER: (8_000, 45_000),
}


@dataclass(frozen=True)
class ClaimSpec:
    """A demo login's claim. `lines` are (sku, quantity); `days` ago it was submitted (or `on`, a day of the
    campaign month), the invoice `invoiced` days before; then what happened: (days after, action, detail)."""

    key: str
    role: str
    lines: tuple[tuple[str, int], ...]
    days: float = 0
    invoiced: int = 5
    on: str = ""  # "march": submitted in the campaign month
    moves: tuple[tuple[float, str, object], ...] = ()
    colleagues: tuple[str, ...] = ()  # roles of demo colleagues sharing it
    same_invoice_as: str = ""  # another partner's member claims this claim's invoice too


APPROVE, REJECT, RESUBMIT, WITHDRAW = "approve", "reject", "resubmit", "withdraw"
CONFIRM, APPROVE_NOW = "confirm", "approve-now"  # by the import today; by a manager after today's tier review
CLAIMS = (
    ClaimSpec("s1", "sales", (("AQS-300", 1),), 300, moves=((3, APPROVE, None),)),
    ClaimSpec("s2", "sales", (("PFR-5", 1),), 250, colleagues=("engineer",)),  # below 500 €: approved at once
    ClaimSpec("s3", "sales", (("AQS-500", 2),), 200, moves=(
        (4, REJECT, (RejectionReason.MISMATCH, "The invoice shows one AquaSoft 500, not two.")),
        (6, RESUBMIT, (("AQS-500", 1),)),
        (9, APPROVE, None),
    )),
    ClaimSpec("s4", "sales", (("AQS-SALT25", 20),), 170),
    ClaimSpec("s5", "sales", (("PFR-400", 1), ("SPK-INST-RO", 1)), 140, colleagues=("engineer",),
              moves=((2, APPROVE, None),)),
    ClaimSpec("s6", "sales", (("AQS-700", 1),), 90, moves=((1, APPROVE, None),)),
    ClaimSpec("s7", "sales", (("CLF-SED5", 20),), 60, moves=((1, WITHDRAW, None),)),
    ClaimSpec("s8", "sales", (("PFR-7P", 2),), 24, invoiced=6, moves=((24, CONFIRM, None),)),
    ClaimSpec("s9", "sales", (("AQS-900C", 4),), 12, same_invoice_as="s9"),  # unusual quantity, and a duplicate
    ClaimSpec("s10", "sales", (("AQS-200", 1), ("AQS-BYP", 1)), 5),  # an inactive product
    ClaimSpec("s11", "sales", (("AQS-500", 1),), 3, moves=((3, APPROVE_NOW, None),)),
    ClaimSpec("e1", "engineer", (("AQS-300", 1), ("SPK-INST-SOFT", 1)), 280, moves=((2, APPROVE, None),)),
    ClaimSpec("e2", "engineer", (("SPK-INST-RO", 1),), 220),
    ClaimSpec("e3", "engineer", (("CLF-SED5", 120),), 160, moves=((3, APPROVE, None),)),  # over the monthly cap
    ClaimSpec("e4", "engineer", (("UVP-25", 1), ("SPK-INST-UV", 1)), on="march", moves=((2, APPROVE, None),)),
    ClaimSpec("e5", "engineer", (("PFR-400", 1), ("SPK-INST-RO", 1)), 40, moves=(
        (3, REJECT, (RejectionReason.UNREADABLE, "The photo is blurred: the total and the date cannot be read.")),
    )),
    ClaimSpec("e6", "engineer", (("PFR-7P", 1), ("SPK-INST-RO", 1)), 15, moves=(
        (2, REJECT, (RejectionReason.OTHER, "Add the customer's installation address to the invoice.")),
        (4, RESUBMIT, None),
    )),
    ClaimSpec("f1", "foreman", (("SPK-INST-SOFT", 2),), 260),
    ClaimSpec("f2", "foreman", (("UVP-12", 1), ("SPK-INST-UV", 1)), 130, moves=((2, APPROVE, None),)),
    ClaimSpec("f3", "foreman", (("SPK-SVC-SOFT", 3), ("SPK-VALVE", 1)), 50, moves=(
        (2, REJECT, (RejectionReason.DUPLICATE, "Ethan Price claimed this installation already.")),
    )),
    ClaimSpec("f4", "foreman", (("UVP-50", 1),), 8),
    ClaimSpec("o1", "owner", (("PFR-1000C", 1),), 320, moves=((5, APPROVE, None),)),
    ClaimSpec("o2", "owner", (("UVP-50", 2),), on="march", moves=((3, APPROVE, None),)),
    ClaimSpec("o3", "owner", (("CLF-IRON", 1),), 20, invoiced=80),  # outside the claim window
)  # fmt: skip


# Small helpers ------------------------------------------------------------------------------------------------


def product_lines() -> dict[str, ProductLine]:
    """The catalogue's product lines by code, created where missing (loyalty.demo.learning's courses need them
    before the catalogue is set up)."""
    ProductLine.objects.bulk_create([ProductLine(code=code, name=name) for code, name in LINES], ignore_conflicts=True)
    return {line.code: line for line in ProductLine.objects.filter(code__in=[code for code, _ in LINES])}


def create_rule(
    spec: RuleSpec,
    *,
    program,
    lines: dict,
    products: dict,
    roles: dict,
    actor,
    effective: datetime,
    valid_from: date | None = None,
    valid_until: date | None = None,
    partners: dict | None = None,
) -> IncentiveRule:
    """One of the demo's rules, published from `effective` through services.rules (a draft if the spec says so).
    `partners`: the partners by legal id, for a rule negotiated for some of them."""
    rule = IncentiveRule.objects.create(
        program=program, code=spec.code, name=spec.name, description=spec.description, event=spec.event,
        apply_tier_multiplier=spec.tier_multiplier,
        formula=spec.formula, value=Decimal(spec.value), partner_kinds=list(spec.partner_kinds),
        shares=[{"role": role, "percent": percent} for role, percent in spec.shares],
        cap_points=spec.cap, cap_period=CapPeriod.MONTH, budget_points=spec.budget, priority=spec.priority,
        valid_from=valid_from, valid_until=valid_until,
        requires_certification=lines[spec.certificate] if spec.certificate else None,
        negotiated_reason=spec.reason,
    )  # fmt: skip
    rule.roles.set([roles[code] for code in spec.roles])
    rule.named_partners.set([partners[legal_id] for legal_id in spec.partners])
    rule.product_lines.set([lines[code] for code in spec.lines])
    rule.products.set([products[sku] for sku in spec.products])
    if spec.publish:
        rule = rules.rule_publish(rule=rule, actor=actor, effective_from=effective)
    return rule


def marker() -> QuerySet:
    """Rows that exist once this part is seeded (loyalty.demo.program checks them with the program, in one query)."""
    return Product.objects.filter(sku=MARKER_SKU)


def invoice_pdf(number: str) -> bytes:
    """A one-page PDF that says which invoice it stands for (valid: the viewers open it)."""
    text = f"Invoice {number}".replace("\\", "").replace("(", "").replace(")", "")
    stream = f"BT /F1 18 Tf 72 760 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out, offsets = bytearray(b"%PDF-1.4\n"), []
    for number_, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number_, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def _campaign_year(now: datetime) -> int:
    """The year of the last March that is over: the new line launched in it, the March campaign ran in it."""
    return now.year if now.month >= 4 else now.year - 1


def _money(value) -> Decimal:
    return Decimal(value).quantize(Decimal("0.01"))


# Planning --------------------------------------------------------------------------------------------------------


class _Sales:
    """Plans the steps; the steps share this object's lookups (filled by the setup step)."""

    def __init__(self, book: Book):
        self.book = book
        self.now = book.now
        self.rng = random.Random(f"{partners_demo.SEED}:sales")
        self.steps: list[Step] = []
        self.year = _campaign_year(self.now)
        self.launch = date(self.year, 2, 2)
        self.history_start = self.now - timedelta(days=372)
        self.flagship = partners_demo.legal_id(0, 0)
        self.logins = book.demo_logins()
        self.products: dict[str, Product] = {}
        self.rules: dict[str, IncentiveRule] = {}
        self.claims: dict[str, SalesClaim] = {}
        self.invoices: dict[str, str] = {}
        self.source: SalesSource | None = None
        self.manager_emails = [email for _, email in partners_demo.PROGRAM_MANAGERS]
        self.after_tiers: list = []  # (at, run): steps after today's tier review
        ordered = sorted(book.channel.companies)
        self.aliases = {legal_id: f"NWC-{number:05d}" for number, legal_id in enumerate(ordered, start=10_001)}

    def plan(self) -> list[Step]:
        self._add(self.history_start, self._setup, product_lines=len(LINES), products=len(PRODUCTS),
                  tiers=len(TIERS), incentive_rules=len(RULES), sales_sources=1)  # fmt: skip
        code, _, days = RULE_V2
        self._add(self.now - timedelta(days=days, hours=-9), functools.partial(self._new_version, code),
                  incentive_rules=1)  # fmt: skip
        agreed = timezone.localtime(self.now - timedelta(days=KEY_ACCOUNT_DAYS))
        agreed = agreed.replace(hour=10, minute=30, second=0, microsecond=0)
        self._add(agreed, self._key_account, incentive_rules=1)
        approved = self._claims()
        rows, lines = self._sell_out(approved)
        self._add(self.now, functools.partial(self._import, rows), sales_imports=1, sale_lines=lines)
        self._add(self.now, self._tiers, partner_tiers=sum(1 for c in self.book.channel.companies.values() if c.active))
        for at, run in self.after_tiers:
            self._add(at, run)
        return self.steps

    def _add(self, at: datetime, run, **counts: int) -> None:
        if at > self.now:
            raise AssertionError(f"a demo step in the future: {at}")
        self.steps.append(Step(at, run, Counter({k.replace("_", " "): n for k, n in counts.items()})))

    @property
    def manager(self):
        return self.book.staff[self.manager_emails[self.rng.randrange(2)]] if self.book.staff else None

    # setup

    def _setup(self) -> None:
        program = self.book.program
        lines = product_lines()
        end = self.now.date()
        products = []
        for spec in PRODUCTS:
            launched = end.replace(year=end.year - spec.launched, day=1) if spec.launched else self.launch
            products.append(
                Product(
                    sku=spec.sku,
                    name=spec.name,
                    line=lines[spec.line],
                    launch_date=launched,
                    unusual_quantity=spec.unusual,
                    is_active=spec.active,
                )  # fmt: skip
            )
        Product.objects.bulk_create(products)
        self.products = {p.sku: p for p in products}
        Tier.objects.bulk_create(
            Tier(program=program, rank=rank, name=name, threshold=Decimal(threshold), multiplier=Decimal(multiplier),
                 service_level=text)
            for rank, name, threshold, multiplier, text in TIERS
        )  # fmt: skip
        roles = {role.code: role for role in Role.objects.all()}
        effective = self.history_start
        for spec in RULES:
            valid_from = (
                date(self.year, 3, 1) if spec.window == "march" else self.launch if spec.window == "launch" else None
            )
            self.rules[spec.code] = create_rule(
                spec, program=program, lines=lines, products=self.products, roles=roles,
                actor=self.book.staff[self.manager_emails[0]], effective=effective, valid_from=valid_from,
                valid_until=date(self.year, 3, 31) if spec.window == "march" else None,
            )  # fmt: skip
        flagship = self.book.channel.partners[self.flagship]
        source = SalesSource.objects.create(program=program, name=SOURCE_NAME, code=SOURCE_CODE, distributor=flagship)
        self.source = mapping.source_mapping_save(source=source, mapping=MAPPING, header=list(MAPPING.values()))
        PartnerAlias.objects.bulk_create(
            PartnerAlias(source=source, code=self._alias(company), partner=self.book.channel.partners[legal_id])
            for legal_id, company in sorted(self.book.channel.companies.items())
        )

    def _new_version(self, code: str) -> None:
        _, value, _ = RULE_V2
        draft = rules.rule_new_version(rule=self.rules[code], value=Decimal(value))
        self.rules[code] = rules.rule_publish(rule=draft, actor=self.book.staff[self.manager_emails[1]])

    def _key_account(self) -> None:
        roles = {role.code: role for role in Role.objects.all()}
        self.rules[KEY_ACCOUNT_RULE.code] = create_rule(
            KEY_ACCOUNT_RULE, program=self.book.program, lines=product_lines(), products=self.products, roles=roles,
            actor=self.book.staff[self.manager_emails[1]], effective=timezone.now(),
            partners=self.book.channel.partners,
        )  # fmt: skip

    def _alias(self, company: Company) -> str:
        return self.aliases[company.legal_id]

    # claims

    def _claims(self) -> dict[str, list[tuple[date, Decimal]]]:
        """Plan the demo logins' claims; returns, by partner, the (invoice date, amount) that approved claims
        without a sell-out line add to the partner's sales (for the flagship's tier)."""
        approved: dict[str, list[tuple[date, Decimal]]] = {}
        for spec in CLAIMS:
            person = self.logins.get(spec.role)
            if person is None:
                continue
            if spec.on == "march":
                at = datetime(self.year, 3, 12, 10, tzinfo=self.now.tzinfo) + timedelta(days=spec.days)
            else:
                at = self.now - timedelta(days=spec.days)
            at = at.replace(hour=self.rng.randint(8, 17), minute=self.rng.randrange(60))
            if at > self.now - timedelta(hours=1):
                at = self.now - timedelta(hours=2)
            invoice_date = (at - timedelta(days=spec.invoiced)).date()
            number = f"NW-{invoice_date:%y%m}-{self.rng.randrange(10_000, 100_000)}"
            self.invoices[spec.key] = number
            lines = spec.lines
            self._add(at, functools.partial(self._submit, spec, person, number, invoice_date, lines), sales_claims=1)
            if spec.same_invoice_as:
                other = self._other_claimant()
                if other is not None:
                    self._add(at + timedelta(days=2), functools.partial(
                        self._submit, spec, other, number, invoice_date, (("AQS-300", 1),), key=f"{spec.key}-other"
                    ), sales_claims=1)  # fmt: skip
            status = ClaimStatus.APPROVED if self._amount(lines) < 500 else ClaimStatus.SUBMITTED
            for days_after, action, detail in spec.moves:
                when = min(at + timedelta(days=days_after, hours=self.rng.uniform(1, 5)), self.now)
                if action == RESUBMIT and detail is not None:
                    lines = detail
                run = functools.partial(self._move, spec.key, person, action, detail, invoice_date)
                if action == APPROVE_NOW:
                    self.after_tiers.append((self.now, run))
                elif action == CONFIRM:
                    pass  # the import's sell-out line confirms it
                else:
                    self._add(when, run)
                status = {APPROVE: ClaimStatus.APPROVED, APPROVE_NOW: ClaimStatus.APPROVED,
                          REJECT: ClaimStatus.REJECTED, WITHDRAW: ClaimStatus.WITHDRAWN,
                          RESUBMIT: ClaimStatus.APPROVED if self._amount(lines) < 500 else ClaimStatus.SUBMITTED,
                          CONFIRM: "confirmed"}[action]  # fmt: skip
            if status == ClaimStatus.APPROVED and invoice_date > (self.now - timedelta(days=364)).date():
                approved.setdefault(person.company.legal_id, []).append((invoice_date, self._amount(lines)))
        return approved

    def _other_claimant(self) -> Person | None:
        """An active sales rep of another active partner (who claims an invoice the flagship claimed too)."""
        for person in self.book.people:
            if (person.company.legal_id != self.flagship and person.company.active and person.role == "sales"
                    and person.status == MemberStatus.ACTIVE):  # fmt: skip
                return person
        return None

    @staticmethod
    def _amount(lines) -> Decimal:
        return sum((_money(PRODUCT[sku].price * quantity) for sku, quantity in lines), Decimal(0))

    def _lines(self, lines):
        return [
            (self.products[sku], Decimal(quantity), _money(PRODUCT[sku].price * quantity)) for sku, quantity in lines
        ]

    def _submit(self, spec: ClaimSpec, person: Person, number: str, invoice_date: date, lines, key: str = "") -> None:
        member = self.book.member(person)
        colleagues = [self.book.member(self.logins[role]) for role in spec.colleagues if role in self.logins]
        self.claims[key or spec.key] = claims.claim_submit(
            member=member, program=self.book.program, invoice_number=number, invoice_date=invoice_date,
            document=ContentFile(invoice_pdf(number), name=f"invoice {number}.pdf"), lines=self._lines(lines),
            colleagues=colleagues,
        )  # fmt: skip

    def _move(self, key: str, person: Person, action: str, detail, invoice_date: date) -> None:
        claim = self.claims[key]
        if action in (APPROVE, APPROVE_NOW):
            self.claims[key] = claims.claim_approve(claim=claim, actor=self.manager)
        elif action == REJECT:
            reason, text = detail
            self.claims[key] = claims.claim_reject(claim=claim, actor=self.manager, reason=reason, text=text)
        elif action == WITHDRAW:
            self.claims[key] = claims.claim_withdraw(claim=claim, member=self.book.member(person))
        elif action == RESUBMIT:
            lines = detail or [(line.product.sku, int(line.quantity)) for line in claim.lines.select_related("product")]
            number = claim.invoice_number
            self.claims[key] = claims.claim_resubmit(
                claim=claim, member=self.book.member(person), invoice_number=number, invoice_date=invoice_date,
                lines=self._lines(lines), colleagues=list(claim.colleagues.all()),
                document=ContentFile(invoice_pdf(number), name=f"invoice {number} corrected.pdf"),
            )  # fmt: skip

    # sell-out

    def _sell_out(self, approved: dict[str, list[tuple[date, Decimal]]]) -> tuple[list[list[str]], int]:
        """The ERP's file: a year of lines of block 0's active partners (the flagship's adding up, with its
        approved claims, to FLAGSHIP_METRIC), the line confirming claim s8, three returns and three bad lines.
        Returns the rows and how many of them are good."""
        rng = self.rng
        end = self.now.date()
        start = end - timedelta(days=360)
        sellable = [p for p in PRODUCTS if p.active]
        good: list[tuple[str, list[str]]] = []  # (legal id, row)
        serial = 0

        def row(legal_id: str, sku: str, quantity: int, amount: Decimal, day: date, member: str = "",
                invoice: str = "", returns: str = "") -> list[str]:  # fmt: skip
            nonlocal serial
            serial += 1
            customer = legal_id if serial % 9 == 0 else self.aliases[legal_id]
            invoice = invoice or f"INV-{day:%y}{rng.randrange(100_000, 1_000_000)}"
            return [f"NW{serial:06d}", customer, member, sku, str(quantity), f"{amount:.2f}", invoice,
                    day.isoformat(), returns]  # fmt: skip

        def sale_day(spec: ProductSpec) -> date:
            day = start + timedelta(days=rng.randrange(361))
            if spec.line == NEW_LINE and day < self.launch:
                day = self.launch + timedelta(days=rng.randrange(max((end - self.launch).days, 1)))
            return day

        for legal_id, company in sorted(self.book.channel.companies.items()):
            if not company.active:
                continue
            if legal_id == self.flagship:
                good += self._flagship_lines(row, sale_day, approved.get(legal_id, ()))
                continue
            sellers = [p for p in self.book.people if p.company.legal_id == legal_id and p.status == MemberStatus.ACTIVE
                       and p.role in ("sales", "engineer", "owner") and p.email not in self.demo_emails]  # fmt: skip
            low, high = LINES_PER_PARTNER[company.kind]
            count = rng.randint(low, high)
            per_line = rng.randrange(*YEARLY_SALES[company.kind], 50) / count
            for _ in range(count):
                spec = rng.choice(sellable)
                day = sale_day(spec)
                quantity = max(1, round(per_line / spec.price * rng.uniform(0.6, 1.4)))
                person = rng.choice(sellers) if sellers and rng.random() < 0.6 else None
                if person is not None and (person.joined_at is None or person.joined_at.date() >= day):
                    person = None
                email = person.email if person else ""
                good.append((legal_id, row(legal_id, spec.sku, quantity, _money(spec.price * quantity), day, email)))
        if "s8" in self.invoices:  # the sell-out line that confirms the sales rep's claim s8
            ((sku, quantity),) = next(c.lines for c in CLAIMS if c.key == "s8")
            day = end - timedelta(days=30)
            line = row(self.flagship, sku, quantity, _money(PRODUCT[sku].price * quantity), day,
                       invoice=self.invoices["s8"])  # fmt: skip
            good.append((self.flagship, line))
        good.sort(key=lambda item: item[1][7])
        rows = [line for _, line in good]
        candidates = [(legal_id, line) for legal_id, line in good if legal_id != self.flagship and int(line[4]) >= 3]
        for legal_id, original in candidates[5:60:20][:3]:  # returns: a third of the units back, with a credit
            back = int(original[4]) // 3
            day = min(date.fromisoformat(original[7]) + timedelta(days=12), end)
            amount = -_money(Decimal(original[5]) * back / int(original[4]))
            rows.append(row(legal_id, original[3], -back, amount, day, original[2], returns=original[0]))
        count = len(rows)
        some = next(legal_id for legal_id, company in sorted(self.book.channel.companies.items()) if company.active)
        rows.append(row(some, "AQS-9000", 2, _money(1_200), end - timedelta(days=40)))  # no such SKU
        rows.append(row(some, "PFR-5", 3, _money(1_260), end - timedelta(days=35))[:7] + ["31.13.2026", ""])
        unknown = row(some, "CLF-BB20", 4, _money(480), end - timedelta(days=20))
        unknown[1] = "NWC-99999"  # a customer the ERP has and the program does not
        rows.append(unknown)
        return rows, count

    def _flagship_lines(self, row, sale_day, claimed) -> list[tuple[str, list[str]]]:
        """The flagship's year, without a sales rep named: 85 % of what its sales must reach (FLAGSHIP_METRIC,
        with its approved claims and the line confirming claim s8) in small lines, the rest in one project."""
        confirming = self._amount(next(c.lines for c in CLAIMS if c.key == "s8")) if "s8" in self.invoices else 0
        target = FLAGSHIP_METRIC - sum((amount for _, amount in claimed), Decimal(0)) - confirming
        count = 14
        budget = target * Decimal("0.85") / (count - 1)
        affordable = [p for p in PRODUCTS if p.active and p.price <= budget]
        lines, total = [], Decimal(0)
        for _ in range(count - 1):
            spec = self.rng.choice(affordable)
            quantity = max(1, int(budget * Decimal(self.rng.uniform(0.7, 1.0)) / spec.price))
            amount = _money(spec.price * quantity)
            total += amount
            lines.append((self.flagship, row(self.flagship, spec.sku, quantity, amount, sale_day(spec))))
        spec = PRODUCT["PFR-400"]
        amount = target - total
        quantity = max(1, round(amount / spec.price))
        lines.append((self.flagship, row(self.flagship, spec.sku, quantity, amount, sale_day(spec))))
        return lines

    @functools.cached_property
    def demo_emails(self) -> set[str]:
        return {email for _, _, email, _ in partners_demo.DEMO_MEMBERS}

    def _import(self, rows: list[list[str]]) -> None:
        text = io.StringIO()
        writer = csv.writer(text, lineterminator="\n")
        writer.writerow(MAPPING.values())
        writer.writerows(rows)
        upload = ContentFile(text.getvalue().encode(), name=f"northwater-erp-sell-out-{self.now:%Y-%m}.csv")
        started = imports.import_start(source=self.source, uploaded_file=upload,
                                       user=self.book.staff[self.manager_emails[0]])  # fmt: skip
        imports.import_run(started.pk)

    def _tiers(self) -> None:
        tiers.tiers_evaluate_all(program=self.book.program)


def plan(book: Book) -> list[Step]:
    return _Sales(book).plan()
