"""The read replica: analytics reads (the daily roll-ups behind the dashboards) and exports go to the database alias
`replica` when REPLICA_DATABASE_URL configures one (loyalty/settings.py), the primary (`default`) otherwise.

Only reads that can lag the primary by a moment go there: the roll-up tables, and the rows an export writes (it
names `reads_alias()` itself, since its rows are every app's). Writes always go to the primary, and so do reads of
what a request has just written or locks (an export job's progress, a report subscription), so nobody sees their own
change disappear.
"""

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS

REPLICA = "replica"
# The roll-ups (analytics.models), written only by analytics.rollups through the primary's connection.
REPLICA_MODELS = frozenset({"pointsday", "salesday", "claimsday", "membersday", "messagesday"})


def replica_configured() -> bool:
    return REPLICA in settings.DATABASES


def reads_alias() -> str:
    """The database exports and analytics reads use: the replica when there is one."""
    return REPLICA if replica_configured() else DEFAULT_DB_ALIAS


class AnalyticsReplicaRouter:
    """DATABASE_ROUTERS' entry: roll-up reads to the replica when configured; every write to the primary; nothing is
    ever migrated on the replica (it copies the primary)."""

    def db_for_read(self, model, **hints) -> str | None:
        if model._meta.app_label == "analytics" and model._meta.model_name in REPLICA_MODELS:
            return reads_alias()
        return None

    def db_for_write(self, model, **hints) -> str:
        return DEFAULT_DB_ALIAS

    def allow_relation(self, obj1, obj2, **hints) -> bool | None:
        return None

    def allow_migrate(self, db, app_label, model_name=None, **hints) -> bool | None:
        return False if db == REPLICA else None
