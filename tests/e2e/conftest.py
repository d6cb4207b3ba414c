"""Browser tests: pytest-playwright driving Debian's Chromium against pytest-django's live_server.

They are skipped, with the reason shown, when /usr/bin/chromium is missing (`apt-get install chromium`).
Never run `playwright install`: it downloads browsers and fails here.
"""

from collections.abc import Callable
from pathlib import Path

import pytest
from allauth.account.models import EmailAddress
from playwright.sync_api import Page

from tests.e2e.axe import AXE_SOURCE
from tests.partners.factories import OwnerFactory

CHROMIUM = Path("/usr/bin/chromium")
E2E_DIR = Path(__file__).parent
MOBILE = {
    "viewport": {"width": 390, "height": 844},
    "is_mobile": True,
    "has_touch": True,
    "device_scale_factor": 1,
    "locale": "en-GB",
}
ACTION_TIMEOUT_MS = 10_000


def pytest_collection_modifyitems(config, items):
    skip = pytest.mark.skip(reason=f"Browser tests skipped: {CHROMIUM} is not installed (apt-get install chromium).")
    for item in items:
        if E2E_DIR in item.path.parents:
            item.add_marker(pytest.mark.e2e)
            if not CHROMIUM.exists():
                item.add_marker(skip)


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    return {
        **browser_type_launch_args,
        "executable_path": str(CHROMIUM),
        "headless": True,
        "args": [
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--disable-dev-shm-usage",
        ],
    }


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args):
    return {**browser_context_args, **MOBILE}


# Database ---------------------------------------------------------------------------------------------
# tests/conftest.py puts the seeded roles back after every transactional test.


@pytest.fixture
def e2e_db(transactional_db, live_server, settings):
    """Committed data the live server thread can see, and e-mailed links pointing at the live server."""
    settings.SITE_URL = live_server.url


# Browser ----------------------------------------------------------------------------------------------


@pytest.fixture
def open_page(new_context, live_server) -> Callable[[], Page]:
    """A page in a fresh browser context (own cookies, so a different person) on a 390×844 phone screen.
    axe-core is handed to the context once and loads with every page, ready for axe_check."""

    def _open() -> Page:
        context = new_context(base_url=live_server.url)
        context.set_default_timeout(ACTION_TIMEOUT_MS)
        context.add_init_script(script=AXE_SOURCE)
        return context.new_page()

    return _open


# People -----------------------------------------------------------------------------------------------


@pytest.fixture
def owner(e2e_db):
    """The active owner of an active partner, with the verified e-mail allauth needs to let them sign in."""
    member = OwnerFactory(
        partner__name="Northwind Heating Ltd",
        user__email="olivia.owner@northwind.example",
        user__full_name="Olivia Owner",
    )
    EmailAddress.objects.create(user=member.user, email=member.user.email, verified=True, primary=True)
    return member
