"""Background work of the program core, one module per capability. Celery's autodiscovery imports this package,
which registers them all; the task names stay those of the schedule in settings.CELERY_BEAT_SCHEDULE."""

from loyalty.tasks import challenges as challenges
from loyalty.tasks import clubs as clubs
from loyalty.tasks import draws as draws
from loyalty.tasks import ledger, sellout, tiers
from loyalty.tasks import training as training

__all__ = ["ledger", "sellout", "tiers"]
