"""The member site's survey and feedback forms (the rules they check again live in communications.surveys and
communications.feedback)."""

from django import forms
from django.utils.translation import gettext_lazy as _

from communications.constants import FEEDBACK_MAX_CHARS, QuestionKind
from communications.feedback import photo_problem
from communications.models import Feedback
from communications.surveys import NPS_SCORES, TEXT_ANSWER_MAX_CHARS


def _field(question) -> forms.Field:
    common = {"label": question.text, "required": question.required}
    if question.kind == QuestionKind.NPS:
        choices = [(score, str(score)) for score in NPS_SCORES]
        return forms.TypedChoiceField(choices=choices, coerce=int, widget=forms.RadioSelect, **common)
    if question.kind == QuestionKind.SINGLE:
        return forms.ChoiceField(choices=[(c, c) for c in question.choices], widget=forms.RadioSelect, **common)
    if question.kind == QuestionKind.MULTIPLE:
        choices = [(c, c) for c in question.choices]
        return forms.MultipleChoiceField(choices=choices, widget=forms.CheckboxSelectMultiple, **common)
    return forms.CharField(
        max_length=TEXT_ANSWER_MAX_CHARS, widget=forms.Textarea(attrs={"rows": 4, "class": "form-control"}), **common
    )


class SurveyAnswerForm(forms.Form):
    """One field per question, named q<question id>."""

    def __init__(self, *args, questions, **kwargs):
        super().__init__(*args, **kwargs)
        self.questions = list(questions)
        for question in self.questions:
            self.fields[f"q{question.pk}"] = _field(question)

    def rows(self):
        """(question, bound field) pairs, for the template."""
        return [(question, self[f"q{question.pk}"]) for question in self.questions]

    def answers(self) -> dict[int, object]:
        return {question.pk: self.cleaned_data.get(f"q{question.pk}") for question in self.questions}


class FeedbackForm(forms.ModelForm):
    class Meta:
        model = Feedback
        fields = ["topic", "text", "photo"]
        widgets = {"text": forms.Textarea(attrs={"rows": 6, "maxlength": FEEDBACK_MAX_CHARS})}
        labels = {"photo": _("Photo (optional)")}
        help_texts = {"text": _("At most 5,000 characters.")}

    def clean_photo(self):
        photo = self.cleaned_data.get("photo")
        if photo:
            problem = photo_problem(photo)
            if problem:
                raise forms.ValidationError(problem)
        return photo
