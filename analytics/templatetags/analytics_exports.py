"""`{% load analytics_exports %}{% export_buttons "claims" %}`: the "Export CSV / XLSX" links of a list page, with the
filters the page has now (its query string, without the page number), to analytics.urls_exports. Extra filters can
be named: `{% export_buttons "campaigns" campaign=original.pk %}`."""

from django import template
from django.http import QueryDict
from django.urls import reverse

register = template.Library()

NOT_FILTERS = ("page", "format", "watch")


@register.inclusion_tag("analytics/exports/_buttons.html", takes_context=True)
def export_buttons(context, kind: str, **filters) -> dict:
    request = context.get("request")
    query = request.GET.copy() if request is not None else QueryDict(mutable=True)
    for name in NOT_FILTERS:
        query.pop(name, None)
    for name, value in filters.items():
        if value not in (None, ""):
            query[name] = str(value)
    base = reverse("export_start", args=[kind])

    def url(file_format: str) -> str:
        with_format = query.copy()
        with_format["format"] = file_format
        return f"{base}?{with_format.urlencode()}"

    return {"kind": kind, "csv_url": url("csv"), "xlsx_url": url("xlsx")}
