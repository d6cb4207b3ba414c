"""Dashboard figures kept in the cache until the roll-ups change (docs/decisions.md #26).

The dashboards' figures come from the roll-ups and the stored health scores, which the periodic task rewrites every
15 minutes: computing them again for every page view would only repeat the same answer, at a cost that grows with
the program's history. So each dashboard asks `cached(name, parts, compute)`: the figures are computed once per
roll-up run (the task moves the generation on, `roll_ups_changed`) and at most FIGURES_SECONDS old otherwise, per
language (they hold worded reasons). The pages say when their figures were computed."""

import hashlib
from collections.abc import Callable
from datetime import datetime

from django.core.cache import cache
from django.utils import timezone
from django.utils.translation import get_language

GENERATION_KEY = "analytics:generation"
FIGURES_SECONDS = 15 * 60  # the periodic task's interval: figures never lag the roll-ups by more


def roll_ups_changed() -> None:
    """Called after the roll-ups and health scores were written: every dashboard computes its figures again."""
    cache.set(GENERATION_KEY, timezone.now().isoformat(), None)


def cached[T](name: str, parts: tuple, compute: Callable[[], T]) -> tuple[T, datetime]:
    """The figures `compute` returns for dashboard `name` and `parts` (the program, period, viewer… that decide
    them), from the cache when computed since the roll-ups last changed; with the moment they were computed."""
    generation = cache.get(GENERATION_KEY, "")
    digest = hashlib.sha256(repr((generation, get_language(), parts)).encode()).hexdigest()[:32]
    key = f"analytics:figures:{name}:{digest}"
    found = cache.get(key)
    if found is not None:
        return found
    value = (compute(), timezone.now())
    cache.set(key, value, FIGURES_SECONDS)
    return value
