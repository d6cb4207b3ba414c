"""Row locks for the program core, taken only here, always in primary-key order."""

from loyalty.models import PointsAccount


def accounts_lock(*pks: int) -> dict[int, PointsAccount]:
    """Lock the balance rows before any read-modify-write; several at once in primary-key order."""
    rows = PointsAccount.objects.select_for_update().select_related("program").filter(pk__in=pks).order_by("pk")
    return {row.pk: row for row in rows}
