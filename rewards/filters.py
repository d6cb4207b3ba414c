"""The filters of the lists of reward orders (django-filter), applied to the queryset the viewer's selector returns
(rewards.selectors.orders_for): the API's order list uses them; a page or an export that filters orders the same way
should use the same FilterSet."""

import django_filters
from django.db.models import Q

from loyalty.common.filters import MomentFilter
from rewards.constants import OrderStatus, PaidBy, RewardKind
from rewards.models import RedemptionOrder, Reward


class OrderFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=OrderStatus.choices, label="Only orders in this status.")
    member = django_filters.NumberFilter(field_name="member_id", label="Only orders of this member (id).")
    partner = django_filters.NumberFilter(
        field_name="member__partner_id", label="Only orders of this partner's people."
    )
    placed_since = MomentFilter(
        field_name="created_at", lookup_expr="gte", label="Only orders placed at or after this moment (ISO 8601)."
    )
    updated_since = MomentFilter(
        field_name="updated_at",
        lookup_expr="gte",
        label="Only orders whose status changed at or after this moment (ISO 8601): a fulfilment vendor's poll.",
    )

    class Meta:
        model = RedemptionOrder
        fields = []


class RewardFilter(django_filters.FilterSet):
    """The catalogue's filters (rewards.selectors.catalogue's rewards, or the program's): the API's reward list."""

    kind = django_filters.ChoiceFilter(choices=RewardKind.choices, label="Only rewards of this kind.")
    category = django_filters.CharFilter(field_name="category__slug", label="Only rewards of this category (slug).")
    paid_by = django_filters.ChoiceFilter(choices=PaidBy.choices, label="Only rewards paid from this account.")
    q = django_filters.CharFilter(method="filter_q", label="Only rewards whose name or description has these words.")
    max_price = django_filters.NumberFilter(
        field_name="points_price", lookup_expr="lte", label="Only rewards costing at most this many points."
    )

    class Meta:
        model = Reward
        fields = []

    def filter_q(self, queryset, name, value):
        value = value.strip()
        return queryset.filter(Q(name__icontains=value) | Q(description__icontains=value)) if value else queryset
