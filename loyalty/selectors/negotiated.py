"""Negotiated conditions for key accounts: rules and rewards for named partners only, as columns of the query that
reads them (no query per row, no extra query per page).

`named_partner_ids` gives each IncentiveRule row the ids of the partners it names (engine.rules.compile_rules reads
the annotation, so the rules in force cost no more queries than before); `partner_names` gives any row the names of
the partners one of its many-to-many relations to partners.Partner names (the rule and reward admins show them).
"""

from django.contrib.postgres.aggregates import ArrayAgg
from django.db.models import OuterRef, Subquery

from loyalty.models import IncentiveRule


def _aggregated(model, relation: str, value: str) -> Subquery:
    field = getattr(model, relation).field
    through, source, target = field.remote_field.through, field.m2m_field_name(), field.m2m_reverse_field_name()
    rows = (
        through.objects.filter(**{source: OuterRef("pk")})
        .values(source)
        .annotate(values=ArrayAgg(f"{target}__{value}", order_by=f"{target}__{value}"))
        .values("values")
    )
    return Subquery(rows)


def named_partner_ids() -> Subquery:
    """Annotate IncentiveRule rows with it as `named_partner_ids`: the partners a negotiated rule names (None:
    none, the rule is for every partner)."""
    return _aggregated(IncentiveRule, "named_partners", "pk")


def partner_names(model, relation: str) -> Subquery:
    """The names of the partners `relation` (a many-to-many to partners.Partner) names, by name (None: none)."""
    return _aggregated(model, relation, "name")
