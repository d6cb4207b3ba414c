"""The filters of the API's lists of claims and referrals (django-filter), applied to the queryset the viewer's
selector returns (loyalty.selectors.claims.claims_for, loyalty.selectors.referrals.referrals_for). The member pages
filter by status with their own form today; a page or an export that filters these lists further should use these
FilterSets rather than a second copy."""

import django_filters

from loyalty.common.filters import MomentFilter
from loyalty.constants import ClaimStatus, ReferralStatus
from loyalty.models import Referral, SalesClaim


class ClaimFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=ClaimStatus.choices, label="Only claims in this status.")
    member = django_filters.NumberFilter(field_name="member_id", label="Only claims made by this member (id).")
    partner = django_filters.NumberFilter(field_name="partner_id", label="Only claims of this partner (id).")
    submitted_since = MomentFilter(
        field_name="created_at", lookup_expr="gte", label="Only claims submitted at or after this moment (ISO 8601)."
    )

    class Meta:
        model = SalesClaim
        fields = []


class ReferralFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=ReferralStatus.choices, label="Only referrals in this status.")
    member = django_filters.NumberFilter(field_name="member_id", label="Only referrals made by this member (id).")
    partner = django_filters.NumberFilter(field_name="partner_id", label="Only referrals of this partner (id).")
    submitted_since = MomentFilter(
        field_name="created_at", lookup_expr="gte", label="Only referrals made at or after this moment (ISO 8601)."
    )

    class Meta:
        model = Referral
        fields = []
