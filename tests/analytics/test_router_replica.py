"""An export with a read replica configured reads its rows there: the bounded count and the COPY (or the XLSX's
cursor) run on the `replica` connection. The replica here is a second connection to the test database, added to the
settings as loyalty/settings.py adds it, for this module only."""

import pytest
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.test.utils import CaptureQueriesContext

from analytics.routers import REPLICA, reads_alias
from tests.analytics.exports_world import build_world


@pytest.fixture(scope="module", autouse=True)
def replica_alias():
    """Before the database fixtures (a module's fixture comes first), so that tests may name the alias."""
    alias = {**connections.settings[DEFAULT_DB_ALIAS], "TEST": {"MIRROR": DEFAULT_DB_ALIAS}}
    settings.DATABASES[REPLICA] = connections.settings[REPLICA] = alias
    yield
    connections[REPLICA].close()
    del connections[REPLICA]
    connections.settings.pop(REPLICA, None)
    settings.DATABASES.pop(REPLICA, None)  # often the same dictionary


@pytest.mark.django_db(transaction=True, databases=[DEFAULT_DB_ALIAS, REPLICA])
def test_an_export_reads_its_rows_from_the_replica(client):
    world = build_world()  # committed: the replica's connection sees it
    client.force_login(world.pm)

    with CaptureQueriesContext(connections[REPLICA]) as on_replica:
        csv_file = b"".join(client.get("/exports/claims/", {"format": "csv"}).streaming_content)
        xlsx_file = b"".join(client.get("/exports/claims/", {"format": "xlsx"}).streaming_content)

    statements = [query["sql"].split(" ", 1)[0] for query in on_replica]
    assert reads_alias() == REPLICA
    assert statements == ["SELECT", "COPY", "SELECT", "DECLARE"]  # a bounded count, then the rows, per file
    assert csv_file.count(b"\n") == 4 and xlsx_file.startswith(b"PK")
