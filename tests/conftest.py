import os
from importlib import import_module

import pytest
from django.apps import apps
from django.conf import settings
from django.db.backends.postgresql.operations import DatabaseOperations
from django.test import override_settings
from pytest_django.plugin import blocking_manager_key
from whitenoise.middleware import WhiteNoiseMiddleware

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


@pytest.fixture(scope="session", autouse=True)
def _flush_by_deleting_rows():
    """A transactional test ends with Django's flush: one TRUNCATE of every table (over 120), which gives each table
    and index a new file, 1 to 4 s a test on this machine. Delete the rows instead, with triggers off for the
    transaction, as TRUNCATE fires none (the ledger's append-only guard, the history triggers): the same empty tables
    in a fraction of the time. Needs a superuser (session_replication_role), as in `make test` and on this machine;
    otherwise, and for a flush that resets sequences or cascades beyond its tables, Django's own."""
    truncate = DatabaseOperations.sql_flush
    superuser: dict[str, bool] = {}

    def sql_flush(self, style, tables, *, reset_sequences=False, allow_cascade=False):
        alias = self.connection.alias
        if alias not in superuser:
            with self.connection.cursor() as cursor:
                cursor.execute("SELECT current_setting('is_superuser') = 'on'")
                superuser[alias] = cursor.fetchone()[0]
        if reset_sequences or allow_cascade or not tables or not superuser[alias]:
            return truncate(self, style, tables, reset_sequences=reset_sequences, allow_cascade=allow_cascade)
        return [
            "SET LOCAL session_replication_role = replica;",  # no triggers, no foreign key checks
            *(f"DELETE FROM {self.quote_name(table)};" for table in tables),
            "SET LOCAL session_replication_role = DEFAULT;",
        ]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(DatabaseOperations, "sql_flush", sql_flush)
        yield


# What WhiteNoise's files depend on: where the finders look, and the settings baked into each file's headers.
STATIC_SETTINGS = (
    "DEBUG", "STATIC_URL", "FORCE_SCRIPT_NAME", "STATICFILES_DIRS", "STATICFILES_FINDERS", "INSTALLED_APPS",
    "STORAGES", "WHITENOISE_AUTOREFRESH", "WHITENOISE_MAX_AGE", "WHITENOISE_ALLOW_ALL_ORIGINS",
    "WHITENOISE_CHARSET", "WHITENOISE_MIMETYPES", "WHITENOISE_ADD_HEADERS_FUNCTION", "WHITENOISE_INDEX_FILE",
    "WHITENOISE_IMMUTABLE_FILE_TEST", "WHITENOISE_STATIC_PREFIX",
)  # fmt: skip


@pytest.fixture(scope="session", autouse=True)
def _static_files_found_once():
    """With WHITENOISE_USE_FINDERS (tests), WhiteNoise walks and stats every static file whenever a middleware chain
    is built, i.e. for every test client: about 10 ms each, thousands of times. Walk once for each configuration
    and give each new middleware what was found (the same files, headers and responses)."""
    find = WhiteNoiseMiddleware.add_files_from_finders
    found: dict[str, dict] = {}

    def add_files_from_finders(self):
        key = repr([getattr(settings, name, None) for name in STATIC_SETTINGS])
        if key not in found:
            before = dict(self.files)
            find(self)
            found[key] = {url: file for url, file in self.files.items() if before.get(url) is not file}
        self.files.update(found[key])

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(WhiteNoiseMiddleware, "add_files_from_finders", add_files_from_finders)
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
