"""The read replica (analytics.routers, REPLICA_DATABASE_URL): with one configured, the roll-up reads and the exports
go to it; writes, and reads of what was just written (export jobs, report subscriptions), never do; without one,
everything stays on the primary. The settings add the replica only when it is configured."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.apps import apps
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, router
from django.test import override_settings

from analytics.models import (
    ClaimsDay,
    ExportJob,
    MembersDay,
    MessagesDay,
    PointsDay,
    ReportSubscription,
    RollupDay,
    SalesDay,
)
from analytics.routers import REPLICA, AnalyticsReplicaRouter, reads_alias
from loyalty.models import PointsEntry
from partners.models import Partner

ROLLUPS = (PointsDay, SalesDay, ClaimsDay, MembersDay, MessagesDay)
BASE_DIR = Path(__file__).resolve().parents[2]


def with_replica():
    """Settings as loyalty/settings.py makes them when REPLICA_DATABASE_URL is set (the connection is not opened)."""
    replica = {**settings.DATABASES["default"], "TEST": {"MIRROR": DEFAULT_DB_ALIAS}}
    return override_settings(DATABASES={**settings.DATABASES, REPLICA: replica})


def test_the_router_is_installed():
    assert "analytics.routers.AnalyticsReplicaRouter" in settings.DATABASE_ROUTERS


def test_without_a_replica_everything_is_read_from_the_primary():
    assert reads_alias() == DEFAULT_DB_ALIAS
    assert {router.db_for_read(model) for model in ROLLUPS} == {DEFAULT_DB_ALIAS}
    assert PointsDay.objects.all().db == DEFAULT_DB_ALIAS


@pytest.mark.filterwarnings("ignore:Overriding setting DATABASES")
def test_with_a_replica_the_rollups_and_the_exports_read_it():
    with with_replica():
        assert reads_alias() == REPLICA
        assert {router.db_for_read(model) for model in ROLLUPS} == {REPLICA}
        assert PointsDay.objects.all().db == REPLICA


@pytest.mark.filterwarnings("ignore:Overriding setting DATABASES")
def test_what_was_just_written_and_other_apps_models_are_read_from_the_primary():
    with with_replica():
        assert {router.db_for_read(model) for model in (ExportJob, ReportSubscription, RollupDay)} == {DEFAULT_DB_ALIAS}
        assert router.db_for_read(PointsEntry) == router.db_for_read(Partner) == DEFAULT_DB_ALIAS


@pytest.mark.filterwarnings("ignore:Overriding setting DATABASES")
def test_writes_never_go_to_the_replica():
    with with_replica():
        assert {router.db_for_write(model) for model in apps.get_models()} == {DEFAULT_DB_ALIAS}
        assert PointsDay.objects.all().select_for_update().db == DEFAULT_DB_ALIAS


def test_the_replica_is_never_migrated():
    assert AnalyticsReplicaRouter().allow_migrate(REPLICA, "analytics") is False
    assert AnalyticsReplicaRouter().allow_migrate(DEFAULT_DB_ALIAS, "analytics") is None


def _databases(**environment) -> dict:
    code = (
        "import json, loyalty.settings as s; print(json.dumps({k: v.get('TEST', {}) for k, v in s.DATABASES.items()}))"
    )
    env = {**os.environ, "TESTING": "true", "DATABASE_URL": "postgres://u@127.0.0.1:5432/main", **environment}
    if "REPLICA_DATABASE_URL" not in environment:
        env.pop("REPLICA_DATABASE_URL", None)
    output = subprocess.run([sys.executable, "-c", code], env=env, cwd=BASE_DIR, capture_output=True, text=True)
    return json.loads(output.stdout)


def test_the_settings_add_the_replica_only_when_it_is_configured():
    assert _databases() == {"default": {}}
    assert _databases(REPLICA_DATABASE_URL="postgres://u@replica.internal:5432/main") == {
        "default": {},
        "replica": {"MIRROR": "default"},
    }
