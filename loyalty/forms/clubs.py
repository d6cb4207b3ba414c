"""The form of the club page's confirmation step. It checks input; loyalty.services.clubs does the rest."""

from django import forms
from django.utils.translation import gettext_lazy as _


class ClubJoinForm(forms.Form):
    """Confirms a join or renewal. `renews_until` is the last day of the latest paid year the page showed (empty:
    none), sent back so that a renewal someone else made meanwhile (or this one, sent twice) is refused."""

    renews_until = forms.DateField(
        required=False,
        input_formats=["%Y-%m-%d"],
        widget=forms.HiddenInput,
        error_messages={"invalid": _("This page is out of date: open the club page again.")},
    )
