from typing import NamedTuple

from django import forms
from django.forms import BoundField
from django.utils.translation import gettext_lazy as _

from communications.constants import Channel, Topic
from communications.selectors import is_marketing

CHANNEL_CHOICES = [
    (Channel.EMAIL, _("E-mail")),
    (Channel.SMS, _("SMS")),
    (Channel.INBOX, _("Only in the app")),
]


class TopicRow(NamedTuple):
    """One topic of the preferences page: its name, its channel field and (marketing topics) its consent field."""

    label: str
    channel: BoundField
    opted_in: BoundField | None


class PreferencesForm(forms.Form):
    """Per topic the channel and, for marketing topics, the consent. Built from `choices`
    (selectors.preference_choices: topic → (channel, opted in))."""

    def __init__(self, *args, choices: dict[str, tuple[str, bool]], **kwargs):
        super().__init__(*args, **kwargs)
        for topic in Topic.values:
            channel, opted_in = choices[topic]
            self.fields[f"{topic}-channel"] = forms.ChoiceField(
                label=_("How messages about %(topic)s reach you") % {"topic": Topic(topic).label},
                choices=CHANNEL_CHOICES,
                initial=channel,
                widget=forms.RadioSelect(attrs={"class": "form-check-input"}),
            )
            if is_marketing(topic):
                self.fields[f"{topic}-opted_in"] = forms.BooleanField(
                    label=_("Send me these messages"),
                    required=False,
                    initial=opted_in,
                    widget=forms.CheckboxInput(attrs={"class": "form-check-input", "role": "switch"}),
                )

    def topic_rows(self) -> list[TopicRow]:
        return [
            TopicRow(
                Topic(topic).label,
                self[f"{topic}-channel"],
                self[f"{topic}-opted_in"] if f"{topic}-opted_in" in self.fields else None,
            )
            for topic in Topic.values
        ]

    def channels(self) -> dict[str, str]:
        return {topic: self.cleaned_data[f"{topic}-channel"] for topic in Topic.values}

    def opted_in(self) -> dict[str, bool]:
        return {
            topic: self.cleaned_data[f"{topic}-opted_in"]
            for topic in Topic.values
            if f"{topic}-opted_in" in self.fields
        }
