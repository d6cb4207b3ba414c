import pytest

from tests.partners.factories import invitation_for_a_new_person


@pytest.fixture
def new_person_invitation():
    """An owner's invitation to someone who has no account yet (as services.invitation_send makes it)."""
    return invitation_for_a_new_person()
