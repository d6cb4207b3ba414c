"""Status machines: the refusal of a move that an object's transitions table does not allow, worded alike
in every app (partners, memberships, orders). The apps keep their tables in their `constants.py`."""

from collections.abc import Collection, Mapping

from django.db import models

from loyalty.common.errors import ApplicationError


def require_transition(
    obj: models.Model,
    to: str,
    transitions: Mapping[str, Collection[str]],
    statuses: type[models.TextChoices],
    *,
    name: str,
    code: str,
) -> None:
    """Refuse (ApplicationError with `code`) moving `obj` from its `status` to `to` when `transitions` does not
    allow it: "<name> is <its status> and cannot become <the `statuses` label of `to`>."."""
    if to not in transitions[obj.status]:
        raise ApplicationError(
            f"{name} is {obj.get_status_display().lower()} and cannot become {statuses(to).label.lower()}.",
            code=code,
        )
