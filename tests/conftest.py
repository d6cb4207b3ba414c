import os
from importlib import import_module

import pytest
from django.apps import apps
from django.test import override_settings
from pytest_django.plugin import blocking_manager_key

from tests.partners.factories import AccountManagerFactory, OwnerFactory, ProgramManagerFactory

# live_server + Playwright's sync API share a thread with an event loop.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


# Transactional tests (live_server, real concurrency) end by emptying every table, the roles seeded by the
# data migration included. Put them back after each such test, and once more after the last one (with
# --reuse-db the next run starts from what is left).


def seed_default_roles() -> None:
    """Run the data migration that seeds the roles again (it is idempotent)."""
    import_module("partners.migrations.0002_default_roles").add_roles(apps, None)


def _flushes_tables(item) -> bool:
    marker = item.get_closest_marker("django_db")
    fixtures = getattr(item, "fixturenames", ())
    return (
        "transactional_db" in fixtures
        or "live_server" in fixtures
        or bool(marker and (marker.kwargs.get("transaction") or marker.kwargs.get("serialized_rollback")))
    )


FLUSHED = pytest.StashKey[bool]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item, nextitem):
    if _flushes_tables(item):
        item.config.stash[FLUSHED] = True
    result = yield  # the test's fixtures, transactional_db's flush included, are torn down here
    # With no next item the session fixtures are gone too; _seed_roles_after_last_flush did the work.
    if nextitem is not None and _flushes_tables(item):
        with item.config.stash[blocking_manager_key].unblock():
            seed_default_roles()
    return result


@pytest.fixture(scope="session", autouse=True)
def _seed_roles_after_last_flush(request, django_db_setup, django_db_blocker):
    yield
    if request.config.stash.get(FLUSHED, False):
        with django_db_blocker.unblock():
            seed_default_roles()


@pytest.fixture(scope="session", autouse=True)
def _uploads_in_a_temporary_folder(tmp_path_factory):
    """Uploaded and generated files (claim documents, import files, reward images) never land in the project."""
    root = tmp_path_factory.mktemp("uploads")
    with override_settings(MEDIA_ROOT=root / "media", PRIVATE_MEDIA_ROOT=root / "private-media"):
        yield


@pytest.fixture
def program_manager():
    """The back office's user: a program manager (staff and superuser). Like every staff user the factories make, it
    has an authenticator app, as partners.security requires (ProgramManagerFactory(totp=False) for one without)."""
    return ProgramManagerFactory(email="pm@maker.example")


@pytest.fixture
def pm_client(client, program_manager):
    """The test client signed in as the program manager."""
    client.force_login(program_manager)
    return client


@pytest.fixture
def partner_staff_client(client):
    """The test client signed in as a partner's owner (partner staff: no back office)."""
    client.force_login(OwnerFactory().user)
    return client


@pytest.fixture
def am_staff_client(client):
    """The test client signed in as an account manager marked as staff by mistake."""
    client.force_login(AccountManagerFactory(is_staff=True))
    return client
