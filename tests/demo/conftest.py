"""The demo, seeded once for the package's tests (`seed_demo`, as `make run` does it) in a transaction rolled back
when they are done; each test runs in a savepoint inside it, so what a test changes is undone too.

The command's dry run, which needs an empty database, is tests/test_seed_demo_dry_run.py's."""

from contextlib import redirect_stdout
from dataclasses import dataclass
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import transaction
from django.test import override_settings


@dataclass(frozen=True)
class Seeded:
    output: str  # what seed_demo wrote to its output
    printed: str  # what the seeding printed besides its own output (e-mails and SMS, if it sent them there)


@pytest.fixture(scope="package", autouse=True)
def media(tmp_path_factory):
    """Claims' invoices, co-marketing proof and the sell-out file go to a temporary directory, not the project's."""
    root = tmp_path_factory.mktemp("demo-media")
    with override_settings(MEDIA_ROOT=root / "media", PRIVATE_MEDIA_ROOT=root / "private-media"):
        yield root


@pytest.fixture(scope="package")
def seeded(django_db_setup, django_db_blocker, media) -> Seeded:
    """One `seed_demo` on an empty database, with messages configured to print, as in `make run`; rolled back when
    the package is done."""
    console = {"default": {"BACKEND": "django.core.mail.backends.console.EmailBackend"}}
    with django_db_blocker.unblock(), transaction.atomic():
        out, printed = StringIO(), StringIO()
        with override_settings(MAILERS=console, SMS_URL="console://"), redirect_stdout(printed):
            call_command("seed_demo", stdout=out)
        yield Seeded(output=out.getvalue(), printed=printed.getvalue())
        transaction.set_rollback(True)


@pytest.fixture
def demo(seeded) -> str:
    """The seeded demo; what the command wrote to its output."""
    return seeded.output
