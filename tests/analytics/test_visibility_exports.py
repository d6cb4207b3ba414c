"""Every export (`/exports/<kind>/?format=csv`, analytics.exports.EXPORTS) requested by every kind of viewer of the
visibility matrix (tests/partners/test_visibility_matrix.py), with the ids the lists take: what each gets, row by row.

As in the matrix, partner A's people are the owner, the member, a colleague and a member pending approval; one
account manager looks after A, the other after B, where the other member works. Everyone at A and B has points, and
A and B have company points; the member, the colleague and the other member sent a claim; the member, the other
member and the owner (with company points) ordered a reward; A has a sale line of the member, of the colleague and
of the company, B one of the other member; the campaign reached the member, the colleague and the other member by
e-mail and in the inbox.

An export answers with the file (its rows are compared by their first column, the row's id), with a redirect back
to the exports page when the viewer's list is empty, or with a 404 when it is not an export for the viewer or an id
names something they may not see (partners.visibility; the views' and analytics.exports' docstrings). The expected
rows are written from the data, not from the code under test. One world for the module, rolled back at its end;
each test's own changes are rolled back after it (none are made: exports only read).
"""

import csv
import io
from decimal import Decimal
from types import SimpleNamespace

import pytest
from django.db import transaction
from django.utils import timezone

from analytics.exports import EXPORTS
from communications.constants import CampaignStatus, Channel, DeliveryStatus, Kind
from communications.models import Campaign
from loyalty.common.spreadsheets import BOM
from loyalty.models import PointsAccount, PointsEntry, SaleLine, SalesClaim, SalesSource
from loyalty.services import ledger
from partners.constants import MemberStatus
from partners.models import Member
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
    UserFactory,
)
from tests.rewards.factories import ADDRESS, MerchandiseFactory

pytestmark = pytest.mark.django_db

LOGIN = "redirect to sign-in"
EMPTY = "nothing to export: back to the exports page"
NOT_FOUND = 404


def _earn(program, holder, points: int, key: str) -> None:
    if isinstance(holder, Member):
        account = ledger.member_account(program=program, member=holder)
    else:
        account = ledger.partner_account(program=program, partner=holder)
    ledger.earn(account=account, points=points, key=key, explanation="Welcome bonus")


def _build_world() -> SimpleNamespace:
    program = ProgramFactory(claim_auto_approve_below=Decimal("0"), order_approval_threshold=100_000)
    pm, am_a, am_b = ProgramManagerFactory(), AccountManagerFactory(), AccountManagerFactory()
    a = PartnerFactory(name="A Ltd", account_manager=am_a)
    b = PartnerFactory(name="B Ltd", account_manager=am_b)
    owner = OwnerFactory(partner=a)
    member, colleague = MemberFactory(partner=a), MemberFactory(partner=a)
    pending = MemberFactory(partner=a, status=MemberStatus.PENDING_APPROVAL, joined_at=None)
    other_member = MemberFactory(partner=b)

    for person in (owner, member, colleague, other_member):
        _earn(program, person, 500, f"welcome-{person.pk}")
    _earn(program, a, 300, "company-a")
    _earn(program, b, 200, "company-b")

    product = ProductFactory(name="AquaSoft")
    today = timezone.localdate()
    for person in (member, colleague, other_member):
        submit(person, program, [(product, 2, 300)], number=f"INV-{person.pk}", invoice_date=today)
    mug = MerchandiseFactory(program=program, points_price=100, stock=50)
    company_mug = MerchandiseFactory(program=program, points_price=100, stock=50, paid_by=PaidBy.COMPANY)
    for person, reward in ((member, mug), (other_member, mug), (owner, company_mug)):
        order_place(
            member=person,
            program=program,
            items=[(reward, 1)],
            paid_by=reward.paid_by,
            checkout_key=f"checkout-{person.pk}",
            address=ADDRESS,
        )

    source = SalesSource.objects.create(program=program, name="Distributor feed", code="feed")
    for number, (partner, person) in enumerate([(a, member), (a, colleague), (a, None), (b, other_member)]):
        SaleLine.objects.create(
            source=source,
            external_id=f"L{number}",
            partner=partner,
            member=person,
            product=product,
            quantity=Decimal("2.000"),
            amount=Decimal("600.00"),
            paid_quantity=Decimal("2.000"),
            points=30,
            invoice_number=f"S-{number}",
            invoice_date=today,
        )

    campaign = Campaign.objects.create(
        program=program, name="Spring push", status=CampaignStatus.SENT, sent_at=timezone.now()
    )
    key = f"campaign:{campaign.pk}"
    for person in (member, colleague, other_member):
        DeliveryFactory(
            kind=Kind.CAMPAIGN,
            member=person,
            source_key=key,
            idempotency_key=f"{key}:{person.pk}:email",
            status=DeliveryStatus.SENT,
            sent_at=timezone.now(),
        )
        DeliveryFactory(
            kind=Kind.CAMPAIGN,
            channel=Channel.INBOX,
            member=person,
            source_key=key,
            idempotency_key=f"{key}:{person.pk}:inbox",
            status=DeliveryStatus.DELIVERED,
        )

    return SimpleNamespace(
        program=program,
        a=a,
        b=b,
        owner=owner,
        member=member,
        colleague=colleague,
        pending=pending,
        other_member=other_member,
        campaign=campaign,
        viewers={
            "anonymous": None,
            "member": member.user,
            "pending_member": pending.user,
            "other_member": other_member.user,  # a member of B
            "owner": owner.user,
            "account_manager": am_a,
            "account_manager_elsewhere": am_b,
            "program_manager": pm,
            "no_membership": UserFactory(),
            "staff_without_role": UserFactory(is_staff=True),
        },
    )


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker):
    """The world, made once for the module and rolled back when the module is done."""
    with django_db_blocker.unblock(), transaction.atomic():
        yield _build_world()
        transaction.set_rollback(True)


# The rows a viewer may get, from the data ---------------------------------------------------------------------------


def ids(queryset) -> set[str]:
    return {str(pk) for pk in queryset.values_list("pk", flat=True)}


def account_of(w, holder) -> PointsAccount:
    if isinstance(holder, Member):
        return PointsAccount.objects.get(program=w.program, member=holder)
    return PointsAccount.objects.get(program=w.program, partner=holder)


def entries(w, holder) -> set[str]:
    return ids(PointsEntry.objects.filter(account=account_of(w, holder)))


def claims(**where) -> set[str]:
    return ids(SalesClaim.objects.filter(**where))


def orders(**where) -> set[str]:
    return ids(RedemptionOrder.objects.filter(**where))


def members(**where) -> set[str]:
    return ids(Member.objects.filter(**where))


def lines(**where) -> set[str]:
    return ids(SaleLine.objects.filter(**where))


def reach(people: int) -> dict[str, str]:
    """Campaign results summed per channel: one e-mail and one inbox message sent to each person."""
    return {"E-mail": str(people), "Inbox": str(people)}


# name: (kind, the list's ids in the query string)
REQUESTS = {
    "statement": ("statement", lambda w: {}),
    "statement_of_member": ("statement", lambda w: {"account": account_of(w, w.member).pk}),
    "statement_of_colleague": ("statement", lambda w: {"account": account_of(w, w.colleague).pk}),
    "statement_of_company_a": ("statement", lambda w: {"account": account_of(w, w.a).pk}),
    "statement_of_other_member": ("statement", lambda w: {"account": account_of(w, w.other_member).pk}),
    "claims": ("claims", lambda w: {}),
    "orders": ("orders", lambda w: {}),
    "partners": ("partners", lambda w: {}),
    "members": ("members", lambda w: {}),
    "members_of_a": ("members", lambda w: {"partner": w.a.pk}),
    "members_of_b": ("members", lambda w: {"partner": w.b.pk}),
    "sales": ("sales", lambda w: {}),
    "sales_of_a": ("sales", lambda w: {"partner": w.a.pk}),
    "sales_of_b": ("sales", lambda w: {"partner": w.b.pk}),
    "campaigns": ("campaigns", lambda w: {}),
    "campaign_one": ("campaigns", lambda w: {"campaign": w.campaign.pk}),
}

# Someone in no program (signed in, neither staff with a role nor a current member) gets no export at all; everyone
# else starts from here too and gets what their row adds. A partner's member (not its owner) gets their own
# statement, claims, orders and sale lines only: no partners, no people, no campaign results, nobody else's statement
# and no other partner's sale lines.
OUTSIDE = dict.fromkeys(REQUESTS, lambda w: NOT_FOUND)

EXPECTED = {
    "anonymous": dict.fromkeys(REQUESTS, lambda w: LOGIN),
    "no_membership": OUTSIDE,
    "staff_without_role": OUTSIDE,
    "member": OUTSIDE
    | {
        "statement": lambda w: entries(w, w.member),
        "statement_of_member": lambda w: entries(w, w.member),
        "claims": lambda w: claims(member=w.member),
        "orders": lambda w: orders(member=w.member),
        "sales": lambda w: lines(member=w.member),
        "sales_of_a": lambda w: lines(member=w.member),  # their own partner: still only their own lines
    },
    "pending_member": OUTSIDE
    | {
        # Pending approval: no points, claims, orders or lines of their own yet, and nobody else's.
        "statement": lambda w: EMPTY,
        "claims": lambda w: EMPTY,
        "orders": lambda w: EMPTY,
        "sales": lambda w: EMPTY,
        "sales_of_a": lambda w: EMPTY,
    },
    "other_member": OUTSIDE
    | {
        "statement": lambda w: entries(w, w.other_member),
        "statement_of_other_member": lambda w: entries(w, w.other_member),
        "claims": lambda w: claims(member=w.other_member),
        "orders": lambda w: orders(member=w.other_member),
        "sales": lambda w: lines(member=w.other_member),
        "sales_of_b": lambda w: lines(member=w.other_member),
    },
    "owner": OUTSIDE
    | {
        "statement": lambda w: entries(w, w.owner),
        "statement_of_member": lambda w: entries(w, w.member),
        "statement_of_colleague": lambda w: entries(w, w.colleague),
        "statement_of_company_a": lambda w: entries(w, w.a),
        "claims": lambda w: claims(partner=w.a),
        "orders": lambda w: orders(member__partner=w.a),  # the company-paid order too
        "partners": lambda w: {str(w.a.pk)},
        "members": lambda w: members(partner=w.a),
        "members_of_a": lambda w: members(partner=w.a),
        "members_of_b": lambda w: members(partner=w.a),  # an owner's export is always their own team
        "sales": lambda w: lines(partner=w.a),  # the company's line too
        "sales_of_a": lambda w: lines(partner=w.a),
    },
    "account_manager": OUTSIDE
    | {
        "statement": lambda w: NOT_FOUND,  # staff open a statement from a partner's page (?account=)
        "statement_of_member": lambda w: entries(w, w.member),
        "statement_of_colleague": lambda w: entries(w, w.colleague),
        "statement_of_company_a": lambda w: entries(w, w.a),
        "claims": lambda w: claims(partner=w.a),
        "orders": lambda w: orders(member__partner=w.a),
        "partners": lambda w: {str(w.a.pk)},
        "members": lambda w: members(partner=w.a),
        "members_of_a": lambda w: members(partner=w.a),
        "sales": lambda w: lines(partner=w.a),
        "sales_of_a": lambda w: lines(partner=w.a),
        "campaigns": lambda w: reach(2),  # the member and the colleague, not the other member
        "campaign_one": lambda w: reach(2),
    },
    "account_manager_elsewhere": OUTSIDE
    | {
        "statement": lambda w: NOT_FOUND,
        "statement_of_other_member": lambda w: entries(w, w.other_member),
        "claims": lambda w: claims(partner=w.b),
        "orders": lambda w: orders(member__partner=w.b),
        "partners": lambda w: {str(w.b.pk)},
        "members": lambda w: members(partner=w.b),
        "members_of_b": lambda w: members(partner=w.b),
        "sales": lambda w: lines(partner=w.b),
        "sales_of_b": lambda w: lines(partner=w.b),
        "campaigns": lambda w: reach(1),
        "campaign_one": lambda w: reach(1),
    },
    "program_manager": {
        "statement": lambda w: NOT_FOUND,
        "statement_of_member": lambda w: entries(w, w.member),
        "statement_of_colleague": lambda w: entries(w, w.colleague),
        "statement_of_company_a": lambda w: entries(w, w.a),
        "statement_of_other_member": lambda w: entries(w, w.other_member),
        "claims": lambda w: claims(),
        "orders": lambda w: orders(),
        "partners": lambda w: {str(w.a.pk), str(w.b.pk)},
        "members": lambda w: members(),
        "members_of_a": lambda w: members(partner=w.a),
        "members_of_b": lambda w: members(partner=w.b),
        "sales": lambda w: lines(),
        "sales_of_a": lambda w: lines(partner=w.a),
        "sales_of_b": lambda w: lines(partner=w.b),
        "campaigns": lambda w: reach(3),
        "campaign_one": lambda w: reach(3),
    },
}

CASES = [(viewer, request) for viewer, row in EXPECTED.items() for request in row]


def test_the_matrix_covers_every_export_and_every_viewer_for_every_request():
    assert {kind for kind, _params in REQUESTS.values()} == set(EXPORTS)
    assert all(set(row) == set(REQUESTS) for row in EXPECTED.values())


def exported(client, user, kind: str, params: dict):
    """What the viewer gets: the first column of every row (as a set; for campaign results the messages sent per
    channel), EMPTY, LOGIN, or the status code."""
    if user is not None:
        client.force_login(user)
    response = client.get(f"/exports/{kind}/", {"format": "csv", **params})
    if response.status_code == 302:
        if response.url.startswith("/accounts/login/?next="):
            return LOGIN
        assert response.url == "/exports/"  # no page to go back to: the exports page
        return EMPTY
    if response.status_code != 200:
        return response.status_code
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode().removeprefix(BOM))))[1:]
    if kind == "campaigns":  # Campaign, Name, Sent on, Channel, Role, Messages sent, ...: summed over the roles
        sent: dict[str, int] = {}
        for row in rows:
            sent[row[3]] = sent.get(row[3], 0) + int(row[5])
        return {channel: str(count) for channel, count in sent.items()}
    ids_ = [row[0] for row in rows]
    assert len(ids_) == len(set(ids_)), "a row is in the file twice"
    return set(ids_)


@pytest.mark.parametrize(("viewer", "request_name"), CASES, ids=[f"{v}-{r}" for v, r in CASES])
def test_each_viewer_gets_exactly_the_rows_they_may_see(client, world, viewer, request_name):
    kind, params = REQUESTS[request_name]

    got = exported(client, world.viewers[viewer], kind, params(world))

    expected = EXPECTED[viewer][request_name](world)
    assert expected not in (set(), {}), "the world must give every allowed viewer rows to compare"
    assert got == expected
