"""Who gets which rows in every export, per kind of viewer (partners.visibility): a program manager everything, an
account manager their portfolio only, a partner owner their partner, a member their own rows only, and someone in
no program nothing. A filter or an id naming something outside what the viewer sees is a 404, never a leak."""

import csv
import io

import pytest
from django.db import transaction

from loyalty.common.spreadsheets import BOM
from loyalty.models import PointsAccount, PointsEntry, SaleLine, SalesClaim
from rewards.models import RedemptionOrder
from tests.analytics.exports_world import build_world
from tests.partners.factories import UserFactory

pytestmark = pytest.mark.django_db

NOT_FOUND = 404
EMPTY = "empty"


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker):
    """The world, made once for the module and rolled back when the module is done; each test runs in a savepoint
    inside it."""
    with django_db_blocker.unblock(), transaction.atomic():
        yield build_world()
        transaction.set_rollback(True)


def users(world) -> dict:
    return {
        "program manager": world.pm,
        "account manager": world.am,
        "other account manager": world.other_am,
        "owner": world.owner.user,
        "member": world.rep.user,
        "other member": world.south_rep.user,
        "outsider": UserFactory(),
    }


def exported(client, user, kind, **params):
    """The first column of every row the viewer gets (as a set), EMPTY for a refused empty list, or the status."""
    client.force_login(user)
    response = client.get(f"/exports/{kind}/", {"format": "csv", **params})
    if response.status_code == 302:
        return EMPTY
    if response.status_code != 200:
        return response.status_code
    text = b"".join(response.streaming_content).decode().removeprefix(BOM)
    return {row[0] for row in list(csv.reader(io.StringIO(text)))[1:]}


def ids(queryset) -> set[str]:
    return {str(pk) for pk in queryset.values_list("pk", flat=True)}


def entries(world, member=None, partner=None) -> set[str]:
    account = PointsAccount.objects.get(program=world.program, member=member, partner=partner)
    return ids(PointsEntry.objects.filter(account=account))


EXPECTED = {
    "claims": {
        "program manager": lambda w: ids(SalesClaim.objects.all()),
        "account manager": lambda w: ids(SalesClaim.objects.filter(partner__in=[w.north, w.south])),
        "other account manager": lambda w: ids(SalesClaim.objects.filter(partner=w.east)),
        "owner": lambda w: ids(SalesClaim.objects.filter(partner=w.north)),
        "member": lambda w: ids(SalesClaim.objects.filter(member=w.rep)),
        "other member": lambda w: ids(SalesClaim.objects.filter(member=w.south_rep)),
        "outsider": lambda w: NOT_FOUND,
    },
    "orders": {
        "program manager": lambda w: ids(RedemptionOrder.objects.all()),
        "account manager": lambda w: ids(RedemptionOrder.objects.filter(member=w.rep)),
        "other account manager": lambda w: ids(RedemptionOrder.objects.filter(member=w.east_rep)),
        "owner": lambda w: ids(RedemptionOrder.objects.filter(member=w.rep)),
        "member": lambda w: ids(RedemptionOrder.objects.filter(member=w.rep)),
        "other member": lambda w: EMPTY,
        "outsider": lambda w: NOT_FOUND,
    },
    "partners": {
        "program manager": lambda w: {str(w.north.pk), str(w.south.pk), str(w.east.pk)},
        "account manager": lambda w: {str(w.north.pk), str(w.south.pk)},
        "other account manager": lambda w: {str(w.east.pk)},
        "owner": lambda w: {str(w.north.pk)},
        "member": lambda w: NOT_FOUND,
        "other member": lambda w: NOT_FOUND,
        "outsider": lambda w: NOT_FOUND,
    },
    "members": {
        "program manager": lambda w: {str(m.pk) for m in (w.owner, w.rep, w.south_rep, w.east_rep)},
        "account manager": lambda w: {str(m.pk) for m in (w.owner, w.rep, w.south_rep)},
        "other account manager": lambda w: {str(w.east_rep.pk)},
        "owner": lambda w: {str(w.owner.pk), str(w.rep.pk)},
        "member": lambda w: NOT_FOUND,
        "other member": lambda w: NOT_FOUND,
        "outsider": lambda w: NOT_FOUND,
    },
    "sales": {
        "program manager": lambda w: ids(SaleLine.objects.all()),
        "account manager": lambda w: ids(SaleLine.objects.filter(partner__in=[w.north, w.south])),
        "other account manager": lambda w: ids(SaleLine.objects.filter(partner=w.east)),
        "owner": lambda w: ids(SaleLine.objects.filter(partner=w.north)),  # the company's lines too
        "member": lambda w: ids(SaleLine.objects.filter(member=w.rep)),
        "other member": lambda w: ids(SaleLine.objects.filter(member=w.south_rep)),
        "outsider": lambda w: NOT_FOUND,
    },
    "statement": {
        "program manager": lambda w: NOT_FOUND,  # staff open a statement from a partner's page (?account=)
        "account manager": lambda w: NOT_FOUND,
        "other account manager": lambda w: NOT_FOUND,
        "owner": lambda w: entries(w, member=w.owner),
        "member": lambda w: entries(w, member=w.rep),
        "other member": lambda w: entries(w, member=w.south_rep),
        "outsider": lambda w: NOT_FOUND,
    },
}
CASES = [(kind, viewer) for kind, viewers in EXPECTED.items() for viewer in viewers]


@pytest.mark.parametrize(("kind", "viewer"), CASES)
def test_each_viewer_gets_exactly_the_rows_they_may_see(client, world, kind, viewer):
    assert exported(client, users(world)[viewer], kind) == EXPECTED[kind][viewer](world)


@pytest.mark.parametrize(
    ("viewer", "holder", "expected"),
    [
        ("program manager", "east_rep", "entries"),
        ("account manager", "rep", "entries"),
        ("account manager", "east_rep", NOT_FOUND),
        ("other account manager", "rep", NOT_FOUND),
        ("owner", "rep", "entries"),
        ("owner", "north", "entries"),  # the company account
        ("owner", "east_rep", NOT_FOUND),
        ("member", "owner", NOT_FOUND),
        ("member", "north", NOT_FOUND),  # staff do not see the company account
        ("other member", "rep", NOT_FOUND),
    ],
)
def test_a_statement_named_by_its_account_is_exported_only_to_who_may_see_it(client, world, viewer, holder, expected):
    target = getattr(world, holder)
    is_company = target in (world.north, world.south, world.east)
    account = PointsAccount.objects.get(
        program=world.program, member=None if is_company else target, partner=target if is_company else None
    )
    rows = exported(client, users(world)[viewer], "statement", account=account.pk)

    assert rows == (ids(PointsEntry.objects.filter(account=account)) if expected == "entries" else expected)


@pytest.mark.parametrize("account", ["12abc", "-1", "٣", "99999999999999999999", "0"])
def test_an_account_that_is_not_one_is_not_found(client, world, account):
    assert exported(client, world.rep.user, "statement", account=account) == NOT_FOUND


@pytest.mark.parametrize("kind", ["members", "sales"])
def test_a_partner_filter_outside_the_portfolio_is_not_found(client, world, kind):
    assert exported(client, world.am, kind, partner=world.east.pk) == NOT_FOUND
    assert exported(client, world.other_am, kind, partner=world.east.pk) != NOT_FOUND


def test_an_owner_cannot_widen_the_members_export_with_another_partner(client, world):
    assert exported(client, world.owner.user, "members", partner=world.east.pk) == {
        str(world.owner.pk),
        str(world.rep.pk),
    }


def _reach(client, user, **params) -> dict:
    client.force_login(user)
    response = client.get("/exports/campaigns/", {"format": "csv", **params})
    if response.status_code != 200:
        return response.status_code
    text = b"".join(response.streaming_content).decode().removeprefix(BOM)
    return {row[3]: row[5] for row in list(csv.reader(io.StringIO(text)))[1:]}


def test_campaign_results_count_only_the_people_the_manager_looks_after(client, world):
    assert _reach(client, world.pm) == {"E-mail": "3", "Inbox": "3"}
    assert _reach(client, world.am) == {"E-mail": "2", "Inbox": "2"}
    assert _reach(client, world.other_am, campaign=world.campaign.pk) == {"E-mail": "1", "Inbox": "1"}
    assert _reach(client, world.owner.user) == NOT_FOUND
    assert _reach(client, world.rep.user) == NOT_FOUND
