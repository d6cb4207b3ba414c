import pytest
from django.urls import reverse

from loyalty.models import PointsAccount
from loyalty.services import ledger
from tests.loyalty.factories import ProgramFactory
from tests.partners.factories import AccountManagerFactory, MemberFactory, OwnerFactory

pytestmark = pytest.mark.django_db
URL = reverse("points_statement")


def earn_many(account, count, prefix="e"):
    for i in range(count):
        ledger.earn(account=account, points=10 + i, key=f"{prefix}{account.pk}:{i}", explanation=f"Sale line {i}")


def test_member_sees_balance_and_explained_entries_newest_first(client):
    program = ProgramFactory(currency_name="AquaPoints")
    member = MemberFactory()
    account = ledger.member_account(program=program, member=member)
    ledger.earn(account=account, points=120, key="a", explanation="12 units × 10 pts = 120")
    ledger.spend(account=account, points=20, key="b", explanation="Order 7: 1 × Mug")
    client.force_login(member.user)
    response = client.get(URL)
    assert response.status_code == 200
    body = response.content.decode()
    assert "My AquaPoints" in body
    assert body.index("Order 7: 1 × Mug") < body.index("12 units × 10 pts = 120")
    assert response.context["account"].available == 100


def test_member_without_points_yet_gets_an_empty_statement_and_nothing_is_created(client):
    ProgramFactory()
    member = MemberFactory()
    client.force_login(member.user)
    response = client.get(URL)
    assert response.status_code == 200
    assert "Nothing here yet" in response.content.decode()
    assert not PointsAccount.objects.exists()


def test_without_a_program_the_page_says_so(client):
    client.force_login(MemberFactory().user)
    assert "No program is running yet" in client.get(URL).content.decode()


def test_owner_sees_the_company_account_and_their_peoples_statements(client):
    program = ProgramFactory()
    owner = OwnerFactory()
    rep = MemberFactory(partner=owner.partner)
    company = ledger.partner_account(program=program, partner=owner.partner)
    ledger.earn(account=company, points=500, key="c", explanation="Pooled bonus")
    rep_account = ledger.member_account(program=program, member=rep)
    ledger.earn(account=rep_account, points=30, key="r", explanation="Rep sale")
    client.force_login(owner.user)
    assert f"?account={company.pk}" in client.get(URL).content.decode()
    assert "Pooled bonus" in client.get(URL, {"account": company.pk}).content.decode()
    assert "Rep sale" in client.get(URL, {"account": rep_account.pk}).content.decode()


def test_a_member_cannot_open_a_colleagues_or_the_company_account(client):
    program = ProgramFactory()
    owner = OwnerFactory()
    rep = MemberFactory(partner=owner.partner)
    company = ledger.partner_account(program=program, partner=owner.partner)
    owner_account = ledger.member_account(program=program, member=owner)
    client.force_login(rep.user)
    for account in (company, owner_account):
        assert client.get(URL, {"account": account.pk}).status_code == 404
    assert client.get(URL, {"account": "x"}).status_code == 404


def test_account_manager_opens_accounts_of_their_portfolio_only(client):
    program = ProgramFactory()
    manager = AccountManagerFactory()
    mine = MemberFactory(partner__account_manager=manager)
    other = MemberFactory()
    client.force_login(manager)
    mine_account = ledger.member_account(program=program, member=mine)
    other_account = ledger.member_account(program=program, member=other)
    assert client.get(URL, {"account": mine_account.pk}).status_code == 200
    assert client.get(URL, {"account": other_account.pk}).status_code == 404
    assert client.get(URL).status_code == 404  # staff have no account of their own


def test_anonymous_is_sent_to_sign_in(client):
    response = client.get(URL)
    assert response.status_code == 302
    assert response.url.startswith(reverse("account_login"))


@pytest.mark.parametrize("entries", [3, 60])
def test_statement_query_count_does_not_grow_with_entries(client, django_assert_max_num_queries, entries):
    program = ProgramFactory()
    member = MemberFactory()
    earn_many(ledger.member_account(program=program, member=member), entries)
    client.force_login(member.user)
    # + 1 for the inbox bell's unread count in the navigation (cached after the first page)
    with django_assert_max_num_queries(10):
        response = client.get(URL, {"page": 2} if entries > 25 else {})
    assert response.status_code == 200


def test_htmx_request_renders_only_the_entries(client):
    program = ProgramFactory()
    member = MemberFactory()
    earn_many(ledger.member_account(program=program, member=member), 30)
    client.force_login(member.user)
    response = client.get(URL, {"page": 2}, headers={"HX-Request": "true"})
    body = response.content.decode()
    assert body.lstrip().startswith('<div id="entries">')
    assert "<html" not in body
