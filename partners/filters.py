"""The filters of the partner and member lists (django-filter), applied to the queryset partners.visibility gives the
viewer: the API's lists use them, and so should any page or export that lists partners or people."""

import django_filters
from django import forms
from django.db.models import Q, QuerySet

from loyalty.common.filters import MomentFilter
from partners.constants import MemberStatus, PartnerKind, PartnerStatus
from partners.models import Member, Partner


def _each_word(queryset: QuerySet, text: str, *fields: str) -> QuerySet:
    """Rows where every word of `text` is in one of `fields` (case-insensitive)."""
    for word in text.split():
        condition = Q()
        for field in fields:
            condition |= Q(**{f"{field}__icontains": word})
        queryset = queryset.filter(condition)
    return queryset


class IdFilter(django_filters.Filter):
    """An id: a whole number within the database's range (NumberFilter would take 1.5 or 1e30)."""

    field_class = forms.IntegerField

    def __init__(self, *args, **kwargs):
        super().__init__(*args, min_value=1, max_value=2**63 - 1, **kwargs)


class PartnerFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(
        method="search", max_length=100, label="Words in the name or the legal id (every word must match)."
    )
    kind = django_filters.ChoiceFilter(choices=PartnerKind.choices)
    region = django_filters.CharFilter(field_name="region__code", max_length=20, label="Region code.")
    status = django_filters.ChoiceFilter(choices=PartnerStatus.choices)
    parent = IdFilter(field_name="parent_id", label="The parent distributor's id.")
    external_id = django_filters.CharFilter(max_length=80, label="The CRM's id of the partner.")
    updated_since = MomentFilter(
        field_name="updated_at", lookup_expr="gte", label="Changed at or after this moment (ISO 8601)."
    )

    class Meta:
        model = Partner
        fields = ["q", "kind", "region", "status", "parent", "external_id", "updated_since"]

    def search(self, queryset: QuerySet[Partner], name: str, value: str) -> QuerySet[Partner]:
        return _each_word(queryset, value, "name", "legal_id")


class MemberFilter(django_filters.FilterSet):
    partner = IdFilter(field_name="partner_id", label="The partner's id.")
    role = django_filters.CharFilter(field_name="role__code", max_length=30, label="Role code.")
    status = django_filters.ChoiceFilter(choices=MemberStatus.choices)
    q = django_filters.CharFilter(
        method="search", max_length=100, label="Words in the person's name or e-mail address (every word must match)."
    )
    external_id = django_filters.CharFilter(max_length=80, label="The CRM's id of the membership.")

    class Meta:
        model = Member
        fields = ["partner", "role", "status", "q", "external_id"]

    def search(self, queryset: QuerySet[Member], name: str, value: str) -> QuerySet[Member]:
        return _each_word(queryset, value, "user__full_name", "user__email")
