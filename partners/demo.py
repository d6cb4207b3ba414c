"""The demo program's channel: a water-treatment equipment maker's partners and their people (DESIGN.md §6).

Clearwell Water Systems sells through distributors, dealers, installers, service companies and resellers in
six regions. The data comes in *blocks* of 60 partners and 300 memberships. Each block is generated from its
own seeded `random.Random`, so block N is always the same companies and people, and `--scale N` means
blocks 0..N-1. Block 0 holds the flagship distributor with the demo logins; every later block also adds a
few people to the flagship, so that its team grows with the scale (the benchmarks' big team page).

A block is recognised by the fixed legal id of its first partner and is written in one transaction, so a
block is either all there or not at all: running again writes only the missing blocks, and nothing (one
query) when all are there. Rows go in with PostgreSQL COPY, one transaction per batch of blocks, and all
demo users share one password hash computed once.

Invitation tokens are random (`secrets`), not derived from the seed: only their hashes are stored, so
nobody holds a working link to a demo invitation; "Resend" on the team page issues one.
"""

import functools
import hashlib
import itertools
import random
import re
import secrets
import time
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from allauth.account.models import EmailAddress
from allauth.mfa.models import Authenticator
from allauth.mfa.utils import encrypt
from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.db import connection, transaction
from django.utils import timezone

from loyalty.common.errors import ApplicationError
from loyalty.common.keys import matching_key
from partners.constants import (
    DEFAULT_ROLES,
    Channel,
    MarketingConsent,
    MemberStatus,
    PartnerKind,
    PartnerStatus,
    PayoutPolicy,
    StaffRole,
)
from partners.error_codes import ErrorCode
from partners.models import Invitation, Member, MemberStatusChange, Partner, PartnerStatusChange, Region, Role, User

DEMO_PASSWORD = "demo-loyalty-2026"
# Staff must sign in with a second factor (partners.security), the demo staff logins too: their authenticator app
# has this secret (base32). Add it to an authenticator app, or print the current code with
# `manage.py demo_totp_code`; `make run` prints both.
DEMO_TOTP_SECRET = "PARTNERLOYALTYDEMOSTAFFTOTPKEY23"

SEED = 2026
PARTNERS_PER_BLOCK = 60
MEMBERS_PER_BLOCK = 300
MOVERS_PER_BLOCK = 6  # people who left one partner of the block and now work at another
FLAGSHIP_SIZE = 24  # the flagship's own team in block 0, the four demo members included
FLAGSHIP_EXTRA_PER_BLOCK = 6  # people every later block adds to the flagship's team
BLOCKS_PER_BATCH = 20  # one transaction each: 6,000 memberships

STAFF_DOMAIN = "clearwell.example"
PROGRAM_MANAGERS = (
    ("Paula Brandt", f"paula.brandt@{STAFF_DOMAIN}"),
    ("Henrik Larsen", f"henrik.larsen@{STAFF_DOMAIN}"),
)
# (name, e-mail, regions whose partners they look after); the first is the demo login.
ACCOUNT_MANAGERS = (
    ("Martin Keller", f"martin.keller@{STAFF_DOMAIN}", ("uk-ie", "benelux")),
    ("Claire Dubois", f"claire.dubois@{STAFF_DOMAIN}", ("fr",)),
    ("Stefan Huber", f"stefan.huber@{STAFF_DOMAIN}", ("de", "at-ch")),
    ("Katarzyna Nowak", f"katarzyna.nowak@{STAFF_DOMAIN}", ("pl",)),
)

FLAGSHIP_NAME = "Northwater Distribution Ltd"
FLAGSHIP_DOMAIN = "northwater.example"
FLAGSHIP_AGE = timedelta(days=6 * 365)
# (who, full name, e-mail, role): the demo logins that work at the flagship.
DEMO_MEMBERS = (
    ("Partner owner", "Oliver Grant", f"oliver.grant@{FLAGSHIP_DOMAIN}", "owner"),
    ("Sales rep", "Sophie Turner", f"sophie.turner@{FLAGSHIP_DOMAIN}", "sales"),
    ("Engineer", "Ethan Price", f"ethan.price@{FLAGSHIP_DOMAIN}", "engineer"),
    ("Foreman", "Frank Doyle", f"frank.doyle@{FLAGSHIP_DOMAIN}", "foreman"),
)


def demo_logins() -> list[tuple[str, str]]:
    """One sign-in per kind of user, all with DEMO_PASSWORD, the staff also with DEMO_TOTP_SECRET: (who, e-mail)."""
    return [
        ("Program manager", PROGRAM_MANAGERS[0][1]),
        ("Account manager", ACCOUNT_MANAGERS[0][1]),
        *((who, email) for who, _, email, _ in DEMO_MEMBERS),
    ]


# Regions, names and words -------------------------------------------------------------------------------


@dataclass(frozen=True)
class RegionSpec:
    code: str
    name: str
    legal_id: str  # format with {n}: a 9-digit number unique per block and position
    phone: str  # '#' is a random digit
    languages: tuple[tuple[str, int], ...]  # (language, weight); the first is the region's own
    names: str  # which name list its people's names come from
    stems: tuple[str, ...]
    suffixes: tuple[str, ...]
    time_zone: str = ""
    marketing_consent: str = MarketingConsent.OPT_OUT


REGIONS = (
    RegionSpec(
        "uk-ie", "UK & Ireland", "GB{n}", "+44 7### ######", (("en", 92), ("pl", 8)), "en",
        ("Thames", "Pennine", "Severn", "Clyde", "Mersey", "Solent", "Cotswold", "Liffey", "Shannon", "Tyne",
         "Avon", "Humber", "Wessex", "Kestrel", "Brightwell", "Ashford"),
        ("Ltd", "Ltd", "Limited"),
        "Europe/London",
    ),
    RegionSpec(
        "de", "Germany", "DE{n}", "+49 15# ########", (("de", 90), ("en", 5), ("pl", 5)), "de",
        ("Rhein", "Elbe", "Weser", "Main", "Spree", "Isar", "Harz", "Taunus", "Mosel", "Neckar", "Alster", "Ems",
         "Eifel", "Lahn", "Saale", "Ruhr"),
        ("GmbH", "GmbH", "GmbH & Co. KG"),
        "Europe/Berlin", MarketingConsent.OPT_IN,
    ),
    RegionSpec(
        "at-ch", "Austria & Switzerland", "ATU{n8}", "+43 664 #######", (("de", 82), ("fr", 12), ("en", 6)), "de",
        ("Donau", "Inn", "Alpen", "Tirol", "Salzach", "Limmat", "Aare", "Säntis", "Rigi", "Bodensee", "Enns",
         "Traun", "Engadin", "Pilatus", "Wachau", "Rhône"),
        ("GmbH", "AG"),
        "Europe/Vienna",
    ),
    RegionSpec(
        "fr", "France", "FR{k2}{n}", "+33 6 ## ## ## ##", (("fr", 95), ("en", 5)), "fr",
        ("Loire", "Seine", "Garonne", "Provence", "Alsace", "Bretagne", "Vosges", "Jura", "Azur", "Dordogne",
         "Cévennes", "Marne", "Somme", "Vienne", "Charente", "Lorraine"),
        ("SARL", "SAS"),
        "Europe/Paris",
    ),
    RegionSpec(
        "benelux", "Benelux", "BE0{n}", "+32 4## ## ## ##", (("en", 55), ("fr", 45)), "nl",
        ("Schelde", "Maas", "Ardenne", "Zeeland", "Brabant", "Waal", "Veluwe", "Kempen", "Limburg", "IJssel",
         "Delta", "Polder", "Amstel", "Meuse", "Lys", "Dender"),
        ("BV", "NV"),
        "Europe/Brussels",
    ),
    RegionSpec(
        "pl", "Poland", "PL5{n}", "+48 5## ### ###", (("pl", 90), ("en", 10)), "pl",
        ("Wisła", "Odra", "Warta", "Tatry", "Bałtyk", "Mazury", "Pomorze", "Narew", "Pilica", "Bieszczady",
         "Kaszuby", "Roztocze", "Sudety", "Notec", "Prosna", "Drwęca"),
        ("Sp. z o.o.", "S.A."),
        "Europe/Warsaw",
    ),
)  # fmt: skip
_REGION_WORDS = {"uk-ie": "en", "de": "de", "at-ch": "de", "fr": "fr", "benelux": "nl", "pl": "pl"}

_NAMES = {
    "en": (
        "Oliver Sophie James Emily Harry Grace Jack Chloe George Amelia Thomas Isla Daniel Megan Liam Aoife "
        "Conor Siobhan Ryan Hannah Matthew Lucy Owen Zara Callum Niamh Aaron Rachel Priya Imran",
        "Smith Jones Taylor Brown Williams Wilson Johnson Davies Robinson Wright Thompson Evans Walker White "
        "Roberts Green Hall Wood Murphy Kelly O'Brien Byrne Ryan Walsh Clarke Hughes Edwards Patel Khan Lewis",
    ),
    "de": (
        "Lukas Anna Jonas Lea Felix Laura Maximilian Julia Paul Sarah Tobias Katharina Jürgen Sabine Stefan "
        "Petra Matthias Nicole Andreas Claudia Florian Lena Markus Birgit Sebastian Johanna Michael Sandra Tim Elke",
        "Müller Schmidt Schneider Fischer Weber Meyer Wagner Becker Schulz Hoffmann Koch Richter Bauer Klein "
        "Wolf Schröder Neumann Schwarz Zimmermann Braun Hofmann Krüger Hartmann Lange Werner Krause Lehmann "
        "Köhler Huber Gruber",
    ),
    "fr": (
        "Lucas Emma Hugo Chloé Louis Léa Gabriel Manon Arthur Camille Jules Inès Nathan Sarah Théo Juliette "
        "Antoine Pauline Julien Hélène Nicolas Céline Mathieu Élodie Pierre Margaux Benoît Amélie Thomas Claire",
        "Martin Bernard Dubois Thomas Robert Richard Petit Durand Leroy Moreau Simon Laurent Lefèvre Michel "
        "Garcia David Bertrand Roux Vincent Fournier Morel Girard André Mercier Dupont Lambert Bonnet François "
        "Martinez Legrand",
    ),
    "nl": (
        "Daan Emma Sem Julia Lucas Mila Bram Sanne Thijs Lotte Jeroen Femke Pieter Anouk Joost Marieke Wouter "
        "Inge Ruben Eline Koen Lieve Stijn Griet",
        "de_Jong Jansen de_Vries van_den_Berg van_Dijk Bakker Janssens Visser Smit Meijer de_Boer Mulder "
        "de_Groot Bos Vos Peeters Maes Claes Goossens Wouters Willems Mertens Jacobs Hermans",
    ),
    "pl": (
        "Jakub Anna Kacper Zuzanna Szymon Julia Jan Maja Łukasz Katarzyna Piotr Małgorzata Tomasz Agnieszka "
        "Paweł Magdalena Michał Joanna Krzysztof Monika Marek Ewa",
        "Nowak Wójcik Kowalczyk Woźniak Mazur Krawczyk Kaczmarek Zając Król Wieczorek Wróbel Stępień Dudek "
        "Adamczyk Pawlak Sikora Baran Michalak Szewczyk Pietrzak Kubiak Jasiński",
    ),
}
NAMES = {lang: (first.split(), [n.replace("_", " ") for n in last.split()]) for lang, (first, last) in _NAMES.items()}

KIND_WORDS = {
    "en": {
        PartnerKind.DISTRIBUTOR: ("Water Distribution", "Water Supplies", "Aqua Wholesale"),
        PartnerKind.DEALER: ("Water Solutions", "Water Systems", "Softeners"),
        PartnerKind.INSTALLER: ("Plumbing & Heating", "Water Installations", "Pipe & Filter"),
        PartnerKind.SERVICE_COMPANY: ("Water Services", "Filter Service", "Aqua Care"),
        PartnerKind.RESELLER: ("Home & Garden", "Pool & Spa", "Trade Supplies"),
    },
    "de": {
        PartnerKind.DISTRIBUTOR: ("Wassertechnik Großhandel", "Aqua Vertrieb", "Wasserversorgung Handel"),
        PartnerKind.DEALER: ("Wassertechnik", "Wasseraufbereitung", "Enthärtungsanlagen"),
        PartnerKind.INSTALLER: ("Haustechnik", "Sanitär & Heizung", "Installationen"),
        PartnerKind.SERVICE_COMPANY: ("Wasserservice", "Filterdienst", "Kundendienst"),
        PartnerKind.RESELLER: ("Baumarkt", "Pool & Garten", "Fachhandel"),
    },
    "fr": {
        PartnerKind.DISTRIBUTOR: ("Distribution Eau", "Aqua Négoce", "Hydro Distribution"),
        PartnerKind.DEALER: ("Traitement de l'Eau", "Solutions Eau", "Adoucisseurs"),
        PartnerKind.INSTALLER: ("Plomberie", "Installations Sanitaires", "Chauffage & Sanitaire"),
        PartnerKind.SERVICE_COMPANY: ("Services Eau", "Maintenance Filtres", "Aqua Service"),
        PartnerKind.RESELLER: ("Bricolage", "Piscines & Jardin", "Équipement Maison"),
    },
    "nl": {
        PartnerKind.DISTRIBUTOR: ("Watertechniek Groothandel", "Aqua Distributie", "Water Logistiek"),
        PartnerKind.DEALER: ("Waterbehandeling", "Waterontharders", "Watersystemen"),
        PartnerKind.INSTALLER: ("Installatietechniek", "Loodgieters", "Sanitair & Verwarming"),
        PartnerKind.SERVICE_COMPANY: ("Waterservice", "Filteronderhoud", "Aqua Zorg"),
        PartnerKind.RESELLER: ("Bouwmarkt", "Zwembad & Tuin", "Vakhandel"),
    },
    "pl": {
        PartnerKind.DISTRIBUTOR: ("Hurtownia Wody", "Dystrybucja Aqua", "Hydro Hurt"),
        PartnerKind.DEALER: ("Uzdatnianie Wody", "Technika Wodna", "Zmiękczacze"),
        PartnerKind.INSTALLER: ("Instalacje", "Hydraulika", "Instalacje Sanitarne"),
        PartnerKind.SERVICE_COMPANY: ("Serwis Filtrów", "Aqua Serwis", "Serwis Wody"),
        PartnerKind.RESELLER: ("Market Budowlany", "Baseny i Ogród", "Handel Techniczny"),
    },
}


@dataclass(frozen=True)
class Weights:
    """Values and their cumulative weights, for `random.choices`."""

    values: tuple
    cumulative: tuple[float, ...]

    @classmethod
    def of(cls, weights: dict | Iterable[tuple]) -> "Weights":
        pairs = list(weights.items() if isinstance(weights, dict) else weights)
        return cls(tuple(v for v, _ in pairs), tuple(itertools.accumulate(w for _, w in pairs)))


# Each block is ten rows of six partners, one per region; the row says the kind.
KIND_ROWS = (
    PartnerKind.DISTRIBUTOR,
    PartnerKind.DEALER,
    PartnerKind.DEALER,
    PartnerKind.DEALER,
    PartnerKind.INSTALLER,
    PartnerKind.INSTALLER,
    PartnerKind.SERVICE_COMPANY,
    PartnerKind.SERVICE_COMPANY,
    PartnerKind.RESELLER,
    PartnerKind.RESELLER,
)
# Share of each kind that buys through the region's distributor (its parent).
PARENT_SHARE = {
    PartnerKind.DEALER: 0.8,
    PartnerKind.INSTALLER: 0.4,
    PartnerKind.SERVICE_COMPANY: 0.2,
    PartnerKind.RESELLER: 0.5,
}
# Per block: 45 active, 7 prospects, 4 suspended, 4 closed; 39 pay individuals, 21 pool to the company.
STATUS_DECK = [PartnerStatus.ACTIVE] * 45 + [PartnerStatus.PROSPECT] * 7
STATUS_DECK += [PartnerStatus.SUSPENDED] * 4 + [PartnerStatus.CLOSED] * 4
PAYOUT_DECK = [PayoutPolicy.INDIVIDUAL] * 39 + [PayoutPolicy.POOLED] * 21
TEAM_WEIGHT = {
    PartnerKind.DISTRIBUTOR: 9.0,
    PartnerKind.DEALER: 5.0,
    PartnerKind.INSTALLER: 3.0,
    PartnerKind.SERVICE_COMPANY: 4.0,
    PartnerKind.RESELLER: 3.0,
}
ROLE_WEIGHTS = {
    PartnerKind.DISTRIBUTOR: Weights.of({"sales": 35, "purchasing": 20, "logistics": 25, "engineer": 12, "foreman": 8}),
    PartnerKind.DEALER: Weights.of({"sales": 40, "engineer": 25, "foreman": 10, "purchasing": 15, "logistics": 10}),
    PartnerKind.INSTALLER: Weights.of({"engineer": 45, "foreman": 30, "sales": 10, "purchasing": 10, "logistics": 5}),
    PartnerKind.SERVICE_COMPANY: Weights.of(
        {"engineer": 55, "foreman": 20, "sales": 10, "purchasing": 10, "logistics": 5}
    ),
    PartnerKind.RESELLER: Weights.of({"sales": 50, "purchasing": 20, "logistics": 20, "engineer": 10}),
}
FIELD_ROLES = {"engineer", "foreman", "logistics"}  # on a job site or in a van: SMS and the app beat e-mail
CHANNEL_WEIGHTS = {
    True: Weights.of({Channel.SMS: 45, Channel.IN_APP: 30, Channel.EMAIL: 25}),
    False: Weights.of({Channel.EMAIL: 60, Channel.IN_APP: 25, Channel.SMS: 15}),
}
MEMBER_STATUS_WEIGHTS = {
    PartnerStatus.ACTIVE: Weights.of(
        {MemberStatus.ACTIVE: 76, MemberStatus.INVITED: 9, MemberStatus.PENDING_APPROVAL: 7, MemberStatus.LEFT: 8}
    ),
    PartnerStatus.SUSPENDED: Weights.of(
        {MemberStatus.ACTIVE: 85, MemberStatus.PENDING_APPROVAL: 5, MemberStatus.LEFT: 10}
    ),
}
LANGUAGE_WEIGHTS = {region.code: Weights.of(region.languages) for region in REGIONS}
LEAVE_REASONS = ("Left the company", "Changed jobs", "Retired", "Contract ended", "")
SUSPEND_REASONS = ("Unpaid invoices", "Under audit after duplicate claims", "Asked for a pause")
CLOSE_REASONS = ("Ceased trading", "Contract ended", "Merged into another partner")

_TRANSLITERATE = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss", "ł": "l", "Ł": "L", "ø": "o", "æ": "ae"})


@functools.lru_cache(maxsize=4096)
def ascii_slug(text: str, separator: str = "") -> str:
    """'Łukasz' -> 'lukasz', "O'Brien" -> 'obrien', 'van den Berg' -> 'vandenberg' (with separator '')."""
    text = unicodedata.normalize("NFKD", text.translate(_TRANSLITERATE)).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", separator, text.lower()).strip(separator)


def legal_id(block: int, position: int) -> str:
    """The fixed legal id of a demo partner: a 9-digit number unique per block and position."""
    n = 900_000_000 + block * 100 + position
    return REGIONS[position % len(REGIONS)].legal_id.format(n=n, n8=f"{n % 10**8:08d}", k2=f"{n % 97:02d}")


# The plan: what one block holds, before it has database ids -----------------------------------------------


@dataclass(slots=True)
class PlannedUser:
    email: str
    full_name: str
    date_joined: datetime
    signed_up: bool  # accepted an invitation: has the demo password and a verified e-mail address
    last_login: datetime | None = None


@dataclass(slots=True)
class PlannedPartner:
    legal_id: str
    name: str
    kind: str
    region: str
    status: str
    payout_policy: str
    account_manager: str | None  # e-mail
    parent: str | None  # legal id
    joined_on: datetime | None
    created_at: datetime
    updated_at: datetime
    history: list[tuple[str, str, str | None, str, datetime]]  # (from, to, actor e-mail, reason, at)


@dataclass(slots=True)
class PlannedInvitation:
    invited_by: str | None  # e-mail
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None


@dataclass(slots=True)
class PlannedMember:
    user: str  # e-mail
    partner: str  # legal id
    role: str
    status: str
    phone: str
    language: str
    channel: str
    created_at: datetime
    updated_at: datetime
    joined_at: datetime | None
    left_at: datetime | None
    history: list[tuple[str, str, str | None, str, datetime]]
    invitation: PlannedInvitation | None


@dataclass
class BlockPlan:
    number: int
    partners: list[PlannedPartner] = field(default_factory=list)
    users: list[PlannedUser] = field(default_factory=list)
    members: list[PlannedMember] = field(default_factory=list)


@dataclass(slots=True)
class _Team:
    """What the generator needs to know about a partner while it staffs it."""

    partner: PlannedPartner
    region: RegionSpec
    domain: str
    since: datetime  # people can have joined from here ...
    until: datetime  # ... until here (the closing date of a closed partner)
    owner: str | None = None  # e-mail of its first owner, who invites and approves the others


def plan_block(number: int, *, now: datetime) -> BlockPlan:
    """Block `number` of the demo channel, the same every time for the same `now`."""
    return _BlockBuilder(number, now=now).build()


class _BlockBuilder:
    def __init__(self, number: int, *, now: datetime):
        self.number = number
        self.rng = random.Random(f"{SEED}:{number}")
        self.now = now
        self.valid = timedelta(days=settings.INVITATION_VALID_DAYS)
        self.plan = BlockPlan(number)
        self.users: dict[str, PlannedUser] = {}
        self.domains: set[str] = set()
        self.locals: dict[str, set[str]] = defaultdict(set)
        self.account_managers = {region: email for _, email, regions in ACCOUNT_MANAGERS for region in regions}

    def build(self) -> BlockPlan:
        teams = self._partners()
        for team, size in zip(teams, self._team_sizes(teams), strict=True):
            self._staff(team, size)
        if self.number > 0:
            self._flagship_newcomers()
        self._movers(teams)
        self.plan.users = list(self.users.values())
        return self.plan

    # helpers

    def _between(self, start: datetime, end: datetime) -> datetime:
        if end <= start:
            return start
        return start + (end - start) * self.rng.random()

    def _days(self, low: float, high: float) -> timedelta:
        return timedelta(days=self.rng.uniform(low, high))

    def _weighted(self, weights: Weights):
        return self.rng.choices(weights.values, cum_weights=weights.cumulative)[0]

    def _program_manager(self) -> str:
        return self.rng.choice(PROGRAM_MANAGERS)[1]

    # partners

    def _partners(self) -> list[_Team]:
        rng, now = self.rng, self.now
        statuses, payouts = list(STATUS_DECK), list(PAYOUT_DECK)
        rng.shuffle(statuses)
        rng.shuffle(payouts)
        if self.number == 0:  # the flagship is active
            j = statuses.index(PartnerStatus.ACTIVE)
            statuses[0], statuses[j] = statuses[j], statuses[0]
        teams: list[_Team] = []
        for position in range(PARTNERS_PER_BLOCK):
            region = REGIONS[position % len(REGIONS)]
            kind = KIND_ROWS[position // len(REGIONS)]
            status = statuses[position]
            flagship = self.number == 0 and position == 0
            if flagship:
                name, domain = FLAGSHIP_NAME, FLAGSHIP_DOMAIN
            else:
                name, domain = self._company_name(region, kind)
            account_manager = self.account_managers[region.code]
            if status == PartnerStatus.PROSPECT and rng.random() < 0.5:
                account_manager = None  # not yet assigned
            parent = None
            if kind != PartnerKind.DISTRIBUTOR and rng.random() < PARENT_SHARE[kind]:
                distributor = teams[position % len(REGIONS)].partner
                if distributor.status in (PartnerStatus.ACTIVE, PartnerStatus.SUSPENDED):
                    parent = distributor.legal_id
            actor = account_manager or self._program_manager()
            history = []
            if status == PartnerStatus.PROSPECT:
                created = now - self._days(3, 120)
                joined, since, until = None, created, now
            else:
                joined = now - (FLAGSHIP_AGE if flagship else self._days(120, 6 * 365))
                created = joined - self._days(7, 90)
                since, until = joined, now
                history.append((PartnerStatus.PROSPECT, PartnerStatus.ACTIVE, actor, "", joined))
                if status == PartnerStatus.SUSPENDED:
                    at = self._between(joined + timedelta(days=60), now - timedelta(days=3))
                    history.append((PartnerStatus.ACTIVE, status, actor, rng.choice(SUSPEND_REASONS), at))
                elif status == PartnerStatus.CLOSED:
                    until = self._between(joined + timedelta(days=180), now - timedelta(days=10))
                    history.append((PartnerStatus.ACTIVE, status, actor, rng.choice(CLOSE_REASONS), until))
            partner = PlannedPartner(
                legal_id=legal_id(self.number, position),
                name=name,
                kind=kind,
                region=region.code,
                status=status,
                payout_policy=PayoutPolicy.INDIVIDUAL if flagship else payouts[position],
                account_manager=account_manager,
                parent=parent,
                joined_on=joined,
                created_at=created,
                updated_at=history[-1][4] if history else created,
                history=history,
            )
            self.plan.partners.append(partner)
            teams.append(_Team(partner, region, domain, since, until))
        return teams

    def _company_name(self, region: RegionSpec, kind: str) -> tuple[str, str]:
        words = KIND_WORDS[_REGION_WORDS[region.code]][kind]
        suffix = f"-{self.number}" if self.number else ""
        for _ in range(100):
            stem, word = self.rng.choice(region.stems), self.rng.choice(words)
            domain = f"{ascii_slug(f'{stem} {word}', '-')}{suffix}.example"
            if domain not in self.domains and domain != FLAGSHIP_DOMAIN:
                break
        else:  # every combination taken: number it
            stem = f"{stem} {len(self.domains)}"
            domain = f"{ascii_slug(f'{stem} {word}', '-')}{suffix}.example"
        self.domains.add(domain)
        return f"{stem} {word} {self.rng.choice(region.suffixes)}", domain

    def _team_sizes(self, teams: list[_Team]) -> list[int]:
        """Split the block's memberships over its partners: prospects have one or two invited people, the
        flagship its fixed team, the rest one owner each plus a share by kind (largest remainder)."""
        target = MEMBERS_PER_BLOCK - MOVERS_PER_BLOCK - (FLAGSHIP_EXTRA_PER_BLOCK if self.number else 0)
        sizes: list[int | None] = []
        for position, team in enumerate(teams):
            if self.number == 0 and position == 0:
                sizes.append(FLAGSHIP_SIZE)
            elif team.partner.status == PartnerStatus.PROSPECT:
                sizes.append(self.rng.choice((1, 1, 2)))
            else:
                sizes.append(None)
        free = [i for i, size in enumerate(sizes) if size is None]
        weights = {
            i: TEAM_WEIGHT[teams[i].partner.kind]
            * self.rng.uniform(0.5, 1.7)
            * (0.6 if teams[i].partner.status == PartnerStatus.CLOSED else 1.0)
            for i in free
        }
        spare = target - sum(s for s in sizes if s is not None) - len(free)
        total = sum(weights.values())
        shares = {i: spare * w / total for i, w in weights.items()}
        extra = {i: int(share) for i, share in shares.items()}
        for i in sorted(free, key=lambda i: shares[i] - extra[i], reverse=True)[: spare - sum(extra.values())]:
            extra[i] += 1
        for i in free:
            sizes[i] = 1 + extra[i]
        return sizes

    # people

    def _person(self, team: _Team, language: str, local_format: str = "{first}.{last}") -> tuple[str, str]:
        """A new person's full name and e-mail address at the team's company."""
        own_language = team.region.languages[0][0]
        names = NAMES[language] if language not in (own_language, "en") else NAMES[team.region.names]
        first, last = self.rng.choice(names[0]), self.rng.choice(names[1])
        base = local_format.format(first=ascii_slug(first), last=ascii_slug(last), block=self.number)
        used = self.locals[team.domain]
        local, n = base, 1
        while local in used:
            n += 1
            # digits after a plain name, letters after a block number (so 'x.1' + 'b' never equals 'x.12')
            local = f"{base}{chr(ord('a') + n - 1)}" if local_format.endswith("{block}") else f"{base}{n}"
        used.add(local)
        return f"{first} {last}", f"{local}@{team.domain}"

    def _phone(self, region: RegionSpec) -> str:
        digits = region.phone.count("#")
        return region.phone.replace("#", "{}").format(*f"{self.rng.randrange(10**digits):0{digits}d}")

    def _member(
        self,
        team: _Team,
        *,
        role: str,
        status: str,
        person: tuple[str, str] | None = None,
        language: str | None = None,
        inviter: str | None = None,
        cancelled: bool = False,
        left_at: datetime | None = None,
        left_reason: str | None = None,
        left_by: str | None = None,
        phone: str | None = None,
        channel: str | None = None,
        first: bool = False,
    ) -> PlannedMember:
        rng = self.rng
        language = language or self._weighted(LANGUAGE_WEIGHTS[team.region.code])
        full_name, email = person or self._person(team, language)
        inviter = inviter or team.owner or self._program_manager()
        by_program_manager = inviter in {e for _, e in PROGRAM_MANAGERS}
        if phone is None:
            phone = "" if role not in FIELD_ROLES and rng.random() < 0.15 else self._phone(team.region)
        channel = channel or self._weighted(CHANNEL_WEIGHTS[role in FIELD_ROLES])
        member = self._timeline(
            team,
            email=email,
            status=status,
            inviter=inviter,
            by_program_manager=by_program_manager,
            cancelled=cancelled,
            left_at=left_at,
            left_reason=left_reason,
            left_by=left_by,
            first=first,
        )
        signed_up = member.joined_at is not None or status == MemberStatus.PENDING_APPROVAL
        if not signed_up:  # an invitation knows only the e-mail address and the role (services.invitation_send)
            full_name, phone, language, channel = "", "", "en", Channel.EMAIL
        member.role, member.phone, member.language, member.channel = role, phone, language, channel
        user = self.users.get(email)
        if user is None:
            user = self.users[email] = PlannedUser(email, full_name, member.created_at, signed_up)
        else:  # an earlier or later membership of the same person
            user.date_joined = min(user.date_joined, member.created_at)
            user.signed_up = user.signed_up or signed_up
        if status == MemberStatus.ACTIVE and rng.random() < 0.85:
            user.last_login = self.now - self._days(0, 45)
        self.plan.members.append(member)
        return member

    def _timeline(
        self,
        team: _Team,
        *,
        email: str,
        status: str,
        inviter: str,
        by_program_manager: bool,
        cancelled: bool,
        left_at: datetime | None,
        left_reason: str | None,
        left_by: str | None,
        first: bool,
    ) -> PlannedMember:
        """When the person was invited, joined and left, as the status-change rows the services would write.
        The `first` owner is invited as the partner becomes active; the others after that owner joined."""
        rng, now, S = self.rng, self.now, MemberStatus
        history: list[tuple[str, str, str | None, str, datetime]] = []
        invitation = joined = None
        if status == S.INVITED:  # a live link: sent in the last ten days
            invited = max(team.since, now - self._days(0.05, 10))
            invitation = PlannedInvitation(inviter, invited, invited + self.valid, None)
            history.append((S.INVITED, S.INVITED, inviter, "", invited))
        elif cancelled:  # invited, never answered, the invitation was cancelled
            end = left_at or team.until
            invited = self._between(team.since, end - timedelta(days=15))
            left_at = min(invited + self._days(1, 14), end)
            invitation = PlannedInvitation(inviter, invited, invited + self.valid, left_at)
            history.append((S.INVITED, S.INVITED, inviter, "", invited))
            history.append((S.INVITED, S.LEFT, inviter, "Invitation cancelled", left_at))
        elif status == S.PENDING_APPROVAL:
            invited = max(team.since, now - self._days(2, 45))
            accepted = min(invited + self._days(0.05, 2), now - timedelta(hours=1))
            history.append((S.INVITED, S.INVITED, inviter, "", invited))
            history.append((S.INVITED, S.PENDING_APPROVAL, email, "Invitation accepted", accepted))
        else:  # active, or active and then left
            end = left_at or team.until
            if first:
                invited = team.since + self._days(0, 2)
            else:
                invited = self._between(team.since, end - timedelta(days=45 if status == S.LEFT else 6))
            accepted = invited + self._days(0.05, 3)
            history.append((S.INVITED, S.INVITED, inviter, "", invited))
            if by_program_manager:
                joined = accepted
                history.append((S.INVITED, S.ACTIVE, email, "Invitation accepted", accepted))
            else:
                joined = accepted + self._days(0.05, 2)
                history.append((S.INVITED, S.PENDING_APPROVAL, email, "Invitation accepted", accepted))
                history.append((S.PENDING_APPROVAL, S.ACTIVE, inviter, "", joined))
            if status == S.LEFT:
                left_at = left_at or self._between(joined + timedelta(days=30), team.until)
                reason = rng.choice(LEAVE_REASONS) if left_reason is None else left_reason
                history.append((S.ACTIVE, S.LEFT, left_by or inviter, reason, left_at))
        return PlannedMember(
            user=email,
            partner=team.partner.legal_id,
            role="",
            status=status,
            phone="",
            language="",
            channel="",
            created_at=invited,
            updated_at=history[-1][4],
            joined_at=joined,
            left_at=left_at if status == S.LEFT else None,
            history=history,
            invitation=invitation,
        )

    def _staff(self, team: _Team, size: int) -> None:
        partner, rng = team.partner, self.rng
        closed = partner.status == PartnerStatus.CLOSED
        closing = {}
        if closed:  # everyone leaves when the partner closes
            closing = {"left_at": team.until, "left_reason": "Partner closed", "left_by": partner.account_manager}
        flagship = self.number == 0 and partner.legal_id == legal_id(0, 0)
        if flagship:
            for _, full_name, email, role in DEMO_MEMBERS:
                member = self._member(
                    team,
                    role=role,
                    status=MemberStatus.ACTIVE,
                    person=(full_name, email),
                    language="en",
                    inviter=team.owner or PROGRAM_MANAGERS[0][1],
                    first=team.owner is None,
                )
                if team.owner is None:
                    team.owner, team.since = email, member.joined_at
            # the demo owner's team page has something to approve, resend and look back on
            statuses = [MemberStatus.INVITED] * 2 + [MemberStatus.PENDING_APPROVAL] * 2 + [MemberStatus.LEFT] * 2
            statuses += [MemberStatus.ACTIVE] * (size - len(DEMO_MEMBERS) - len(statuses))
            rng.shuffle(statuses)
            for status in statuses:
                self._member(team, role=self._weighted(ROLE_WEIGHTS[partner.kind]), status=status)
            return

        # the owner, invited by a program manager
        owner_status = {
            PartnerStatus.PROSPECT: MemberStatus.INVITED,
            PartnerStatus.CLOSED: MemberStatus.LEFT,
        }.get(partner.status, MemberStatus.ACTIVE)
        owner = self._member(
            team, role="owner", status=owner_status, inviter=self._program_manager(), first=True, **closing
        )
        if owner.joined_at:  # the others are invited by the owner once they are in, else by a program manager
            team.owner, team.since = owner.user, owner.joined_at
        for index in range(1, size):
            if partner.status == PartnerStatus.PROSPECT:
                status = MemberStatus.INVITED
            elif closed:
                status = MemberStatus.LEFT
            else:
                status = self._weighted(MEMBER_STATUS_WEIGHTS[partner.status])
            role = "owner" if index == 1 and size >= 10 else self._weighted(ROLE_WEIGHTS[partner.kind])
            cancelled = status == MemberStatus.LEFT and not closed and rng.random() < 0.2
            self._member(team, role=role, status=status, cancelled=cancelled, **closing)

    def _flagship_newcomers(self) -> None:
        """People this block adds to the flagship (block 0's distributor), so its team grows with the scale."""
        flagship = _Team(
            partner=PlannedPartner(
                legal_id(0, 0), FLAGSHIP_NAME, PartnerKind.DISTRIBUTOR, REGIONS[0].code, PartnerStatus.ACTIVE,
                PayoutPolicy.INDIVIDUAL, ACCOUNT_MANAGERS[0][1], None, None, self.now, self.now, [],
            ),
            region=REGIONS[0],
            domain=FLAGSHIP_DOMAIN,
            since=self.now - FLAGSHIP_AGE + timedelta(days=30),
            until=self.now,
            owner=DEMO_MEMBERS[0][2],
        )  # fmt: skip
        odd_one = (MemberStatus.PENDING_APPROVAL, MemberStatus.INVITED, MemberStatus.LEFT)[self.number % 3]
        statuses = [MemberStatus.ACTIVE] * (FLAGSHIP_EXTRA_PER_BLOCK - 1) + [odd_one]
        for status in statuses:
            language = self._weighted(LANGUAGE_WEIGHTS[REGIONS[0].code])
            person = self._person(flagship, language, "{first}.{last}.{block}")
            self._member(
                flagship,
                role=self._weighted(ROLE_WEIGHTS[PartnerKind.DISTRIBUTOR]),
                status=status,
                person=person,
                language=language,
            )

    def _movers(self, teams: list[_Team]) -> None:
        """Some current members worked at another partner of the block before: they have a 'left'
        membership there, which ended before they were invited here."""
        demo_emails = {email for _, _, email, _ in DEMO_MEMBERS}
        candidates = [
            m
            for m in self.plan.members
            if m.status in (MemberStatus.ACTIVE, MemberStatus.PENDING_APPROVAL)
            and m.role != "owner"
            and m.user not in demo_emails
        ]
        former_employers = [t for t in teams if t.partner.status != PartnerStatus.PROSPECT and t.owner]
        moved = 0
        for member in self.rng.sample(candidates, len(candidates)):
            if moved == MOVERS_PER_BLOCK:
                break
            team = self.rng.choice(former_employers)
            left_at = min(member.created_at - self._days(1, 30), team.until)
            if team.partner.legal_id == member.partner or left_at - team.since < timedelta(days=60):
                continue
            user = self.users[member.user]
            self._member(
                team,
                role=member.role,
                status=MemberStatus.LEFT,
                person=(user.full_name, user.email),
                language=member.language,
                left_at=left_at,
                left_reason="Moved to another employer",
                phone=member.phone,
                channel=member.channel,
            )
            moved += 1


# Writing --------------------------------------------------------------------------------------------------


# The tables a run writes, in the order a report lists them.
TABLES = (
    "regions",
    "roles",
    "partners",
    "partner status changes",
    "users",
    "e-mail addresses",
    "authenticator apps",
    "members",
    "member status changes",
    "invitations",
)


@dataclass
class SeedReport:
    scale: int
    dry_run: bool
    blocks_present: int  # before this run
    blocks_written: int
    rows: Counter = field(default_factory=Counter)  # what was (or, dry, would be) created, by table
    seconds: float = 0.0

    @property
    def nothing_to_do(self) -> bool:
        return self.blocks_written == 0 and not any(self.rows.values())


@dataclass
class _Refs:
    """Database ids of rows that blocks point at but do not create."""

    users: dict[str, int]  # staff, and the flagship's owner once block 0 exists
    partners: dict[str, int]  # the flagship once block 0 exists
    regions: dict[str, int]
    roles: dict[str, int]


STAFF_EMAILS = [email for _, email in PROGRAM_MANAGERS] + [email for _, email, _ in ACCOUNT_MANAGERS]
# What a first run creates besides the blocks (the roles usually come with the migrations already).
BASE_ROWS = Counter({"regions": len(REGIONS), "roles": len(DEFAULT_ROLES), "users": len(STAFF_EMAILS)})
BASE_ROWS["e-mail addresses"] = len(STAFF_EMAILS)
BASE_ROWS["authenticator apps"] = len(STAFF_EMAILS)


def present_blocks(scale: int) -> set[int]:
    """Which of blocks 0..scale-1 are already in the database (one query)."""
    markers = {legal_id(block, 0): block for block in range(scale)}
    return {markers[lid] for lid in Partner.objects.filter(legal_id__in=markers).values_list("legal_id", flat=True)}


def seed_demo(*, scale: int = 1, dry_run: bool = False, progress: Callable[[str], None] | None = None) -> SeedReport:
    """Create the missing demo blocks 0..scale-1, with the regions, roles and manufacturer staff they need.
    With `dry_run` nothing is written and the report says what would be created."""
    if scale < 1:
        raise ApplicationError("The scale must be at least 1.", code=ErrorCode.INVALID_SCALE)
    started = time.monotonic()
    say = progress or (lambda message: None)
    present = present_blocks(scale)
    missing = [block for block in range(scale) if block not in present]
    report = SeedReport(scale=scale, dry_run=dry_run, blocks_present=len(present), blocks_written=0)
    if not missing:
        report.seconds = time.monotonic() - started
        return report

    now = timezone.now()
    if dry_run:
        report.rows.update(BASE_ROWS - _base_rows_present())
    else:
        password = make_password(DEMO_PASSWORD)  # once: hashing per user would dominate the run
        with transaction.atomic():
            refs = _ensure_base(password=password, now=now, counts=report.rows)
    batches = [missing[i : i + BLOCKS_PER_BATCH] for i in range(0, len(missing), BLOCKS_PER_BATCH)]
    for number, batch in enumerate(batches, start=1):
        batch_started = time.monotonic()
        plans = [plan_block(block, now=now) for block in batch]
        if dry_run:
            rows = _count_rows(plans)
        else:
            with transaction.atomic():
                rows = _write(plans, refs=refs, password=password)
                if 0 in batch:  # later blocks point at the flagship and its owner
                    refs.partners.update(Partner.objects.filter(legal_id=legal_id(0, 0)).values_list("legal_id", "id"))
                    refs.users.update(User.objects.filter(email=DEMO_MEMBERS[0][2]).values_list("email", "id"))
        report.rows.update(rows)
        report.blocks_written += len(batch)
        span = f"block {batch[0]}" if len(batch) == 1 else f"blocks {batch[0]}-{batch[-1]}"
        say(
            f"  batch {number}/{len(batches)} ({span}): {rows['partners']:,} partners, {rows['members']:,} members, "
            f"{sum(rows.values()):,} rows {'planned' if dry_run else 'written'} in "
            f"{time.monotonic() - batch_started:.1f} s ({report.blocks_written}/{len(missing)} blocks)"
        )
    if not dry_run:
        analyze_started = time.monotonic()
        _analyze()
        say(f"  updated the planner statistics of the tables in {time.monotonic() - analyze_started:.1f} s")
    report.seconds = time.monotonic() - started
    return report


def _base_rows_present() -> Counter:
    return Counter(
        {
            "regions": Region.objects.filter(code__in=[r.code for r in REGIONS]).count(),
            "roles": Role.objects.filter(code__in=[code for code, _, _ in DEFAULT_ROLES]).count(),
            "users": User.objects.filter(email__in=STAFF_EMAILS).count(),
            "e-mail addresses": EmailAddress.objects.filter(email__in=STAFF_EMAILS).count(),
            "authenticator apps": Authenticator.objects.filter(
                user__email__in=STAFF_EMAILS, type=Authenticator.Type.TOTP
            ).count(),
        }
    )


def _ensure_base(*, password: str, now: datetime, counts: Counter) -> _Refs:
    """Regions, roles and the manufacturer's staff: created when missing, left alone when present."""
    before = _base_rows_present()
    Region.objects.bulk_create(
        [
            Region(code=r.code, name=r.name, time_zone=r.time_zone, marketing_consent=r.marketing_consent)
            for r in REGIONS
        ],
        ignore_conflicts=True,
    )
    Role.objects.bulk_create(
        [
            Role(code=code, name=name, is_owner=is_owner, sort_order=order * 10)
            for order, (code, name, is_owner) in enumerate(DEFAULT_ROLES, start=1)
        ],
        ignore_conflicts=True,
    )
    staff = [
        User(email=email, full_name=name, staff_role=StaffRole.PROGRAM_MANAGER, is_staff=True, is_superuser=True)
        for name, email in PROGRAM_MANAGERS
    ] + [User(email=email, full_name=name, staff_role=StaffRole.ACCOUNT_MANAGER) for name, email, _ in ACCOUNT_MANAGERS]
    for user in staff:
        user.password, user.date_joined = password, now - timedelta(days=3 * 365)
    User.objects.bulk_create(staff, ignore_conflicts=True)
    users = dict(User.objects.filter(email__in=[*STAFF_EMAILS, DEMO_MEMBERS[0][2]]).values_list("email", "id"))
    EmailAddress.objects.bulk_create(
        [EmailAddress(user_id=users[email], email=email, verified=True, primary=True) for email in STAFF_EMAILS],
        ignore_conflicts=True,
    )
    ensure_demo_totp()
    regions = dict(Region.objects.filter(code__in=[r.code for r in REGIONS]).values_list("code", "id"))
    roles = dict(Role.objects.values_list("code", "id"))
    missing = [r.code for r in REGIONS if r.code not in regions] + [c for c, _, _ in DEFAULT_ROLES if c not in roles]
    if missing:
        raise ApplicationError(
            f"Cannot seed the demo: {', '.join(missing)} exist under another name. Rename them back first.",
            code=ErrorCode.DEMO_CONFLICT,
        )
    counts.update(_base_rows_present() - before)
    partners = dict(Partner.objects.filter(legal_id=legal_id(0, 0)).values_list("legal_id", "id"))
    return _Refs(users=users, partners=partners, regions=regions, roles=roles)


def ensure_demo_totp() -> None:
    """Give every demo staff login the demo authenticator app (DEMO_TOTP_SECRET) unless it has one. Seeding calls
    it; so does `make run`, for a demo database seeded before staff needed a second factor."""
    staff = User.objects.filter(email__in=STAFF_EMAILS).values_list("pk", flat=True)
    Authenticator.objects.bulk_create(
        [
            Authenticator(user_id=pk, type=Authenticator.Type.TOTP, data={"secret": encrypt(DEMO_TOTP_SECRET)})
            for pk in staff
        ],
        ignore_conflicts=True,
    )


def _analyze() -> None:
    """Refresh the planner's statistics after a bulk load, so that the very next queries (a benchmark right
    after seeding) are planned for the real table sizes rather than for the empty tables autovacuum last saw."""
    tables = (User, EmailAddress, Partner, PartnerStatusChange, Member, MemberStatusChange, Invitation)
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {', '.join(connection.ops.quote_name(m._meta.db_table) for m in tables)}")


def _count_rows(plans: Sequence[BlockPlan]) -> Counter:
    rows = Counter()
    for plan in plans:
        rows["partners"] += len(plan.partners)
        rows["partner status changes"] += sum(len(p.history) for p in plan.partners)
        rows["users"] += len(plan.users)
        rows["e-mail addresses"] += sum(1 for u in plan.users if u.signed_up)
        rows["members"] += len(plan.members)
        rows["member status changes"] += sum(len(m.history) for m in plan.members)
        rows["invitations"] += sum(1 for m in plan.members if m.invitation)
    return rows


def _allocate_ids(cursor, model, count: int) -> list[int]:
    """Take `count` ids from the table's sequence, so COPY can write rows that point at each other."""
    cursor.execute(
        "SELECT nextval(sequence) FROM (SELECT pg_get_serial_sequence(%s, 'id')::regclass AS sequence) AS s, "
        "generate_series(1, %s)",
        [model._meta.db_table, count],
    )
    return [row[0] for row in cursor.fetchall()]


# PostgreSQL column types as psycopg names them, for binary COPY (several times faster than text).
_COPY_TYPES = {
    "bigint": "int8",
    "integer": "int4",
    "smallint": "int2",
    "boolean": "bool",
    "date": "date",
    "timestamp with time zone": "timestamptz",
    "text": "text",
}


def _copy(cursor, model, fields: Sequence[str], rows: Iterable[tuple]) -> int:
    """Write `rows` (values in the order of `fields`) into the model's table with one binary COPY."""
    quote = connection.ops.quote_name
    columns = [model._meta.get_field(name) for name in fields]
    types = [
        "varchar" if db_type.startswith("varchar") else _COPY_TYPES[db_type]
        for db_type in (column.db_type(connection) for column in columns)
    ]
    statement = (
        f"COPY {quote(model._meta.db_table)} ({', '.join(quote(column.column) for column in columns)}) "
        "FROM STDIN (FORMAT BINARY)"
    )
    written = 0
    with connection.wrap_database_errors, cursor.copy(statement) as copy:
        copy.set_types(types)
        for row in rows:
            copy.write_row(row)
            written += 1
    return written


def _write(plans: Sequence[BlockPlan], *, refs: _Refs, password: str) -> Counter:
    partners = [p for plan in plans for p in plan.partners]
    users = [u for plan in plans for u in plan.users]
    members = [m for plan in plans for m in plan.members]
    flagship_known = legal_id(0, 0) in refs.partners and DEMO_MEMBERS[0][2] in refs.users
    if plans[0].number != 0 and not flagship_known:  # later blocks add people to the flagship of block 0
        raise ApplicationError(
            f"The demo's flagship partner {FLAGSHIP_NAME} or its owner {DEMO_MEMBERS[0][2]} is missing or was "
            "changed, so more demo data cannot be added here. Seed an empty database instead.",
            code=ErrorCode.DEMO_CONFLICT,
        )
    rows = Counter()
    with connection.cursor() as cursor:
        partner_ids = refs.partners | dict(
            zip((p.legal_id for p in partners), _allocate_ids(cursor, Partner, len(partners)), strict=True)
        )
        user_ids = refs.users | dict(
            zip((u.email for u in users), _allocate_ids(cursor, User, len(users)), strict=True)
        )
        member_ids = _allocate_ids(cursor, Member, len(members))

        rows["users"] = _copy(
            cursor,
            User,
            ("id", "password", "last_login", "is_superuser", "email", "full_name", "staff_role", "is_active",
             "is_staff", "date_joined"),
            (
                (user_ids[u.email], password if u.signed_up else "!", u.last_login, False, u.email, u.full_name, "",
                 True, False, u.date_joined)
                for u in users
            ),
        )  # fmt: skip
        rows["e-mail addresses"] = _copy(
            cursor,
            EmailAddress,
            ("user", "email", "verified", "primary"),
            ((user_ids[u.email], u.email, True, True) for u in users if u.signed_up),
        )
        rows["partners"] = _copy(
            cursor,
            Partner,
            ("id", "created_at", "updated_at", "name", "legal_id", "legal_id_key", "kind", "parent", "region",
             "status", "account_manager", "joined_on", "payout_policy"),
            (
                (partner_ids[p.legal_id], p.created_at, p.updated_at, p.name, p.legal_id, matching_key(p.legal_id),
                 p.kind,
                 partner_ids[p.parent] if p.parent else None, refs.regions[p.region], p.status,
                 user_ids[p.account_manager] if p.account_manager else None,
                 timezone.localdate(p.joined_on) if p.joined_on else None, p.payout_policy)
                for p in partners
            ),
        )  # fmt: skip
        rows["partner status changes"] = _copy(
            cursor,
            PartnerStatusChange,
            ("partner", "from_status", "to_status", "actor", "reason", "created_at"),
            (
                (partner_ids[p.legal_id], old, new, user_ids[actor] if actor else None, reason, at)
                for p in partners
                for old, new, actor, reason, at in p.history
            ),
        )
        rows["members"] = _copy(
            cursor,
            Member,
            ("id", "created_at", "updated_at", "user", "partner", "role", "status", "phone", "language",
             "preferred_channel", "joined_at", "left_at"),
            (
                (member_id, m.created_at, m.updated_at, user_ids[m.user], partner_ids[m.partner], refs.roles[m.role],
                 m.status, m.phone, m.language, m.channel, m.joined_at, m.left_at)
                for member_id, m in zip(member_ids, members, strict=True)
            ),
        )  # fmt: skip
        rows["member status changes"] = _copy(
            cursor,
            MemberStatusChange,
            ("member", "from_status", "to_status", "actor", "reason", "created_at"),
            (
                (member_id, old, new, user_ids[actor] if actor else None, reason, at)
                for member_id, m in zip(member_ids, members, strict=True)
                for old, new, actor, reason, at in m.history
            ),
        )
        rows["invitations"] = _copy(
            cursor,
            Invitation,
            ("created_at", "updated_at", "member", "token_hash", "invited_by", "expires_at", "accepted_at",
             "revoked_at"),
            (
                (i.created_at, i.revoked_at or i.created_at, member_id,
                 hashlib.sha256(secrets.token_urlsafe(32).encode()).hexdigest(),
                 user_ids[i.invited_by] if i.invited_by else None, i.expires_at, None, i.revoked_at)
                for member_id, m in zip(member_ids, members, strict=True)
                if (i := m.invitation)
            ),
        )  # fmt: skip
    return rows
