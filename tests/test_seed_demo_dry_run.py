"""`seed_demo --dry-run` on an empty database (the demo it would write is seeded once for tests/demo/)."""

from io import StringIO

import pytest
from django.core.management import call_command

from loyalty.demo.program import PROGRAM_NAME
from tests.demo.test_program import counts

pytestmark = pytest.mark.django_db


def test_a_dry_run_writes_nothing_and_says_what_the_program_would_have():
    before = counts()
    out = StringIO()

    call_command("seed_demo", "--dry-run", stdout=out)

    assert counts() == before
    assert f"Demo program, dry run: would create {PROGRAM_NAME} with about 1 program" in out.getvalue()
    assert "35 rewards" in out.getvalue()
    assert "Demo communications, dry run: would create about 8 tips, 2 campaigns" in out.getvalue()
    assert out.getvalue().count("Nothing was written.") == 3
