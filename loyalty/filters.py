"""The filters of the program core's lists (django-filter), applied to the queryset the viewer's selector returns:
the points accounts (loyalty.selectors.ledger.accounts_for), which the API's account list uses; a page or an export
that filters accounts the same way should use the same FilterSet."""

import django_filters
from django.db.models import Q

from loyalty.models import PointsAccount

MEMBER, COMPANY = "member", "company"


class AccountFilter(django_filters.FilterSet):
    kind = django_filters.ChoiceFilter(
        choices=[(MEMBER, "A member's account"), (COMPANY, "A partner's company account")],
        method="filter_kind",
        label="Only members' accounts, or only company accounts.",
    )
    member = django_filters.NumberFilter(field_name="member_id", label="Only this member's account (id).")
    partner = django_filters.NumberFilter(
        method="filter_partner", label="Only this partner's accounts (id): its company account and its people's."
    )

    class Meta:
        model = PointsAccount
        fields = []

    def filter_kind(self, queryset, name, value):
        return queryset.filter(member__isnull=value == COMPANY)

    def filter_partner(self, queryset, name, value):
        return queryset.filter(Q(partner_id=value) | Q(member__partner_id=value))
