"""The machine client's viewer (partners.visibility.integration_viewer): all, or a distributor and its dealers."""

import pytest

from loyalty.selectors.ledger import accounts_for
from loyalty.services import ledger
from partners.constants import PartnerKind
from partners.visibility import integration_viewer, members_for, partners_for, viewer_for
from tests.loyalty.factories import ProgramFactory
from tests.partners.factories import (
    AccountManagerFactory,
    MemberFactory,
    OwnerFactory,
    PartnerFactory,
    ProgramManagerFactory,
)

pytestmark = pytest.mark.django_db


def test_a_client_bound_to_a_distributor_sees_it_and_its_dealers_only():
    distributor = PartnerFactory(kind=PartnerKind.DISTRIBUTOR)
    dealer, stranger = PartnerFactory(parent=distributor), PartnerFactory()
    people = [MemberFactory(partner=p) for p in (distributor, dealer, stranger)]
    program = ProgramFactory()
    accounts = [ledger.member_account(program=program, member=m) for m in people]
    bound, unbound = integration_viewer(distributor), integration_viewer()

    assert set(partners_for(bound)) == {distributor, dealer}
    assert set(members_for(bound)) == set(people[:2])
    assert set(accounts_for(bound)) == set(accounts[:2])
    assert set(accounts_for(unbound)) == set(accounts)
    assert (bound.sees_everyone, unbound.sees_everyone) == (False, True)


def test_only_program_managers_and_unbound_clients_see_everyone():
    assert viewer_for(ProgramManagerFactory()).sees_everyone
    assert not viewer_for(AccountManagerFactory()).sees_everyone
    assert not viewer_for(OwnerFactory().user).sees_everyone
    assert not viewer_for(MemberFactory().user).sees_everyone
