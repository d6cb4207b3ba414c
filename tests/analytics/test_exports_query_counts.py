"""The query count of a download, whatever the size of the export (what the files hold: test_exports.py).

A module of its own: the world test_exports.py's tests share would be the program the site shows (the oldest
active one), not the one measured here."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.analytics.exports_world import add_rows, build_world
from tests.analytics.test_exports import download

pytestmark = pytest.mark.django_db

# session, user, the viewer's membership, the program, the bounded count and the export's one query (COPY, or a
# server-side cursor for XLSX); the statement finds its account first
CLAIMS_QUERIES = 6
STATEMENT_QUERIES = CLAIMS_QUERIES + 1


def _count(client, kind, file_format, user) -> int:
    client.force_login(user)
    with CaptureQueriesContext(connection) as queries:
        download(client, kind, file_format)
    return len(queries)


@pytest.mark.parametrize("file_format", ["csv", "xlsx"])
def test_a_download_takes_a_fixed_number_of_queries_whatever_the_size(client, file_format):
    small = build_world(copies=1)
    counts = {
        "statement": _count(client, "statement", file_format, small.rep.user),
        "claims": _count(client, "claims", file_format, small.pm),
    }
    for copy in range(1, 4):
        add_rows(small, copy)

    assert _count(client, "statement", file_format, small.rep.user) == counts["statement"] == STATEMENT_QUERIES
    assert _count(client, "claims", file_format, small.pm) == counts["claims"] == CLAIMS_QUERIES
