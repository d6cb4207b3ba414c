"""Each field program runs as configuration: its blueprint builds a program through setup_program's builder, then
its scenario is played through the real services (tests/blueprints/scenario.py), from events to points to a
redemption."""

import pytest

from blueprints.building import program_build
from blueprints.loading import blueprint_load, blueprint_names
from tests.blueprints.scenario import Scenario
from tests.partners.factories import ProgramManagerFactory

pytestmark = pytest.mark.usefixtures("private_media")


@pytest.fixture
def private_media(settings, tmp_path):
    """Invoices and proofs go to the test's own folder."""
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.PRIVATE_MEDIA_ROOT = tmp_path / "private-media"


@pytest.mark.django_db(transaction=False)
@pytest.mark.parametrize("name", blueprint_names())
def test_the_field_program_runs_its_scenario_end_to_end(name):
    manager = ProgramManagerFactory()
    program = program_build(name=name, actor=manager)
    steps = Scenario(program=program, blueprint=blueprint_load(name), manager=manager).run()
    assert steps, f"{name} has no scenario steps"
    assert any(step.endswith(("redeem", "attend")) for step in steps), f"{name}'s scenario redeems nothing"
