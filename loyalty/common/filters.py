"""Filter fields the FilterSets of every app share (the API's lists and the pages)."""

from datetime import UTC

import django_filters
from django import forms
from django_filters.fields import IsoDateTimeField


class UtcIsoDateTimeField(IsoDateTimeField):
    """An ISO 8601 moment, with or without its offset, turned into UTC: PostgreSQL refuses offsets beyond ±15:59
    ("2026-01-26T23:50:19-16:02"), which a caller may send; in UTC every valid moment is one it takes."""

    def to_python(self, value):
        moment = super().to_python(value)
        if moment is None or moment.tzinfo is None:
            return moment
        try:
            return moment.astimezone(UTC)
        except OverflowError:
            raise forms.ValidationError("Enter a moment between the years 1 and 9999.", code="invalid") from None


class MomentFilter(django_filters.IsoDateTimeFilter):
    """IsoDateTimeFilter whose value is a moment in UTC (UtcIsoDateTimeField)."""

    field_class = UtcIsoDateTimeField
