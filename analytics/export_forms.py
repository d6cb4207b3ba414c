"""What an export request asks for, read from the query string the list page had: the list's own filter form
(partners.forms: a status, a search, a type, a region, a role), so the file holds what the page shows, plus the
ids some lists take (an account, a partner, a campaign) and the sales lines' invoice days. Invalid filter values
are ignored as the list pages ignore them; an id that is not a number names nothing the viewer may see (404), and a
range of days that is reversed, in the future or longer than ten years is refused with a clear message. The
result is plain values (JSON), kept with a background export and given to analytics.exports.

Also the form of the scheduled reports page."""

from datetime import date

from django import forms
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from analytics.error_codes import ErrorCode
from analytics.models import ReportFrequency, ReportKind
from analytics.rollups import check_range
from loyalty.common.errors import ApplicationError
from loyalty.constants import ClaimStatus
from partners import selectors as partner_selectors
from partners.forms import PartnerFilterForm, StatusFilterForm, TeamFilterForm
from rewards.constants import OrderStatus

# Ids a list takes in its query string, per export: statement?account=, members?partner=, sales?partner=, ...
ID_PARAMETERS = {"statement": ("account",), "members": ("partner",), "sales": ("partner",), "campaigns": ("campaign",)}


def _ids(kind: str, data) -> dict:
    values = {}
    for name in ID_PARAMETERS.get(kind, ()):
        text = data.get(name, "").strip()
        if not text:
            continue
        if not text.isascii() or not text.isdigit() or len(text) > 18:
            raise ApplicationError(
                _("There is nothing of that kind for you to export."), code=ErrorCode.EXPORT_NOT_VISIBLE
            )
        values[name] = int(text)
    return values


class SalesRangeForm(forms.Form):
    """The invoice days of a sales lines export (both optional)."""

    date_from = forms.DateField(required=False)
    date_to = forms.DateField(required=False)

    def clean(self):
        """The days as the dashboards take them (analytics.rollups.check_range): an open end is today, or the
        other end."""
        cleaned = super().clean()
        first, last = cleaned.get("date_from"), cleaned.get("date_to")
        if first or last:
            today = timezone.localdate()
            try:
                check_range(first=first or last, last=last or max(first, today), today=today)
            except ApplicationError as exc:
                raise forms.ValidationError(exc.message) from None
        return cleaned


def export_filters(kind: str, data) -> dict:
    """The filters of export `kind` from a query string (a QueryDict), as plain values. ApplicationError with a
    clear message for a refused range (EXPORT_BAD_FILTER) or an id that is not one (EXPORT_NOT_VISIBLE)."""
    filters = _ids(kind, data)
    if kind == "claims":
        filters |= _plain(StatusFilterForm(data, statuses=ClaimStatus.choices).filters())
    elif kind == "orders":
        filters |= _plain(StatusFilterForm(data, statuses=OrderStatus.choices).filters())
    elif kind == "partners":
        filters |= _plain(PartnerFilterForm(data, regions=partner_selectors.region_list()).filters())
    elif kind == "members":
        filters |= _plain(TeamFilterForm(data, roles=partner_selectors.role_list()).filters())
    elif kind == "sales":
        form = SalesRangeForm({"date_from": data.get("from", ""), "date_to": data.get("to", "")})
        if not form.is_valid():
            problems = [str(message) for messages in form.errors.values() for message in messages]
            raise ApplicationError(" ".join(problems), code=ErrorCode.EXPORT_BAD_FILTER)
        filters |= {name: value.isoformat() for name, value in form.cleaned_data.items() if isinstance(value, date)}
    return filters


def _plain(values: dict) -> dict:
    """A filter form's values without the empty ones."""
    return {name: value for name, value in values.items() if value not in ("", None, False)}


class ReportSubscriptionForm(forms.Form):
    kind = forms.ChoiceField(label=gettext_lazy("Report"), choices=ReportKind.choices)
    frequency = forms.ChoiceField(label=gettext_lazy("How often"), choices=ReportFrequency.choices)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for field in self.fields.values():
            field.widget.attrs["class"] = "form-select"
