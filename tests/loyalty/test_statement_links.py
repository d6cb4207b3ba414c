"""Statement lines of training and challenges link to the module or challenge they came from."""

import pytest
from django.urls import reverse

from loyalty.constants import EntrySource
from loyalty.services import ledger
from tests.loyalty.factories import ChallengeFactory, ModuleFactory, ProgramFactory
from tests.partners.factories import MemberFactory

pytestmark = pytest.mark.django_db


def test_training_and_challenge_lines_link_to_their_pages_and_others_do_not(client):
    program = ProgramFactory()
    member = MemberFactory()
    module = ModuleFactory(course__program=program)
    challenge = ChallengeFactory(program=program)
    account = ledger.member_account(program=program, member=member)
    lines = [
        (EntrySource.TRAINING, f"training:{module.pk}:{member.pk}", "Training passed"),
        (EntrySource.CHALLENGE, f"challenge:{challenge.pk}:m{member.pk}", "Challenge completed"),
        (EntrySource.CHALLENGE, f"challenge:{challenge.pk}", "Prize"),
        (EntrySource.SURVEY, "survey:1:2", "Survey answered"),
        (EntrySource.TRAINING, "module-3", "Old training line"),
    ]
    for number, (source_type, source_id, text) in enumerate(lines):
        ledger.earn(
            account=account, points=10, key=f"k{number}", source_type=source_type, source_id=source_id, explanation=text
        )
    client.force_login(member.user)

    body = client.get(reverse("points_statement")).content.decode()

    module_url, challenge_url = (
        reverse("module_detail", args=[module.pk]),
        reverse("challenge_detail", args=[challenge.pk]),
    )
    assert f'<a href="{module_url}">Training passed</a>' in body
    assert f'<a href="{challenge_url}">Challenge completed</a>' in body
    assert f'<a href="{challenge_url}">Prize</a>' in body
    assert ">Survey answered</a>" not in body and "Survey answered" in body
    assert ">Old training line</a>" not in body and "Old training line" in body
