"""Query expressions every app uses (reads for users and the back office alike)."""

from django.db.models import Count, IntegerField, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce


def count_of(rows: QuerySet, per: str) -> Coalesce:
    """How many of `rows` (filtered on an OuterRef) each row of the outer query has, grouped by `per`, as a
    correlated subquery: 0 when none, and no GROUP BY over the outer query. E.g.
    count_of(Member.objects.filter(partner=OuterRef("pk")), "partner")."""
    counted = rows.order_by().values(per).annotate(n=Count("pk")).values("n")
    return Coalesce(Subquery(counted, output_field=IntegerField()), Value(0))
