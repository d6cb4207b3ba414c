"""The back office of learn to earn: courses (targeting, certification, their modules), modules with their quiz
questions, questions with their answers, and the members' attempts and certificates (read-only).

A question's answers are checked when it is saved: at least two answers, at least one right, and exactly one right
for a single-choice question (a question that does not hold this yet, added from the module's page without answers,
is left out of quizzes until it does: selectors.training.ready_questions). What passing a module pays is set by the
program's "training passed" rules, not here. Query counts are pinned in tests/loyalty/test_training_admin.py.
"""

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.db.models import Count, Q
from django.forms.models import BaseInlineFormSet

from loyalty.common.admin import (
    DetailJoinsMixin,
    EstimatedCountPaginator,
    ProgramManagerAdmin,
    ProgramManagerPermissions,
    ReadOnlyModelAdmin,
    list_link,
    related_field,
)
from loyalty.constants import QuestionKind
from loyalty.models import Certificate, Course, Module, QuizAttempt, QuizChoice, QuizQuestion
from partners.constants import PartnerKind

# Courses ----------------------------------------------------------------------------------------------------------


class CourseForm(forms.ModelForm):
    partner_kinds = forms.MultipleChoiceField(
        label="Partner types",
        choices=PartnerKind.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="None ticked: every type of partner.",
    )

    class Meta:
        model = Course
        fields = (
            "program",
            "title",
            "summary",
            "product_line",
            "position",
            "is_published",
            "roles",
            "partner_kinds",
            "certification_months",
            "closes_on",
        )
        widgets = {"roles": forms.CheckboxSelectMultiple}
        help_texts = {"roles": "None ticked: every role."}

    def clean(self):
        data = super().clean()
        if data.get("certification_months") and not data.get("product_line"):
            self.add_error("product_line", "A course that certifies needs the product line it certifies on.")
        return data


class ModuleInline(ProgramManagerPermissions, admin.TabularInline):
    model = Module
    fields = ("title", "minutes", "pass_percent", "attempts_allowed", "position")
    extra = 0
    show_change_link = True


@admin.register(Course)
class CourseAdmin(ProgramManagerAdmin):
    form = CourseForm
    list_display = (
        "title",
        "program",
        "product_line",
        "is_published",
        "module_count",
        "certification_months",
        "closes_on",
        "position",
    )
    list_filter = ("program", "is_published", "product_line")
    list_select_related = ("program", "product_line")
    search_fields = ("title",)
    ordering = ("program", "position", "title")
    fieldsets = (
        (None, {"fields": ("program", "title", "summary", "product_line", "position", "is_published")}),
        ("Who it is for", {"fields": ("roles", "partner_kinds")}),
        ("Certification and closing", {"fields": ("certification_months", "closes_on")}),
    )
    inlines = (ModuleInline,)

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(module_count=Count("modules"))

    @admin.display(description="Modules", ordering="module_count")
    def module_count(self, obj):
        return list_link("loyalty_module", obj.module_count, course__id__exact=obj.pk)


# Modules and their quiz -------------------------------------------------------------------------------------------


class QuizQuestionInline(ProgramManagerPermissions, admin.TabularInline):
    model = QuizQuestion
    fields = ("text", "kind", "explanation", "position")
    extra = 0
    show_change_link = True
    verbose_name_plural = "Questions (open a question to give its answers)"


@admin.register(Module)
class ModuleAdmin(ProgramManagerAdmin):
    list_display = (
        "title",
        "course",
        "minutes",
        "pass_percent",
        "attempts_allowed",
        "question_count",
        "unready_count",
        "position",
    )
    list_filter = ("course__program", "course")
    list_select_related = ("course",)
    search_fields = ("title", "course__title")
    autocomplete_fields = ("course",)
    ordering = ("course", "position", "pk")
    fields = (
        "course",
        "title",
        "body",
        "image",
        "media_url",
        "minutes",
        "pass_percent",
        "attempts_allowed",
        "position",
    )
    inlines = (QuizQuestionInline,)

    def get_queryset(self, request):
        ready = QuizQuestion.objects.annotate(
            answers=Count("choices"), right=Count("choices", filter=Q(choices__is_correct=True))
        ).filter(answers__gte=2, right__gte=1)
        return (
            super()
            .get_queryset(request)
            .annotate(
                question_count=Count("questions", distinct=True),
                ready_count=Count("questions", filter=Q(questions__in=ready), distinct=True),
            )
        )

    @admin.display(description="Questions", ordering="question_count")
    def question_count(self, obj):
        return list_link("loyalty_quizquestion", obj.question_count, module__id__exact=obj.pk)

    @admin.display(description="Not asked yet")
    def unready_count(self, obj):
        """Questions without two answers and a right one: quizzes leave them out."""
        return obj.question_count - obj.ready_count or "—"


class QuizChoiceFormSet(BaseInlineFormSet):
    """A question's answers: at least two, at least one right, exactly one for a single-choice question."""

    def clean(self):
        super().clean()
        if any(self.errors):
            return
        kept = [
            form.cleaned_data
            for form in self.forms
            if form.cleaned_data and not form.cleaned_data.get("DELETE") and form.cleaned_data.get("text")
        ]
        right = sum(1 for data in kept if data.get("is_correct"))
        if len(kept) < 2:
            raise ValidationError("A question needs at least two answers.")
        if right < 1:
            raise ValidationError("Tick the right answer: a question needs at least one.")
        if self.instance.kind == QuestionKind.SINGLE and right != 1:
            raise ValidationError(
                f"A one-answer question has exactly one right answer ({right} are ticked): tick one, or make it a "
                "several-answers question."
            )


class QuizChoiceInline(ProgramManagerPermissions, admin.TabularInline):
    model = QuizChoice
    formset = QuizChoiceFormSet
    fields = ("text", "is_correct", "position")
    extra = 3
    min_num = 0


@admin.register(QuizQuestion)
class QuizQuestionAdmin(ProgramManagerAdmin):
    list_display = ("text", "module", "kind", "answer_count", "right_count", "position")
    list_filter = ("kind", "module__course")
    list_select_related = ("module",)
    search_fields = ("text", "module__title")
    autocomplete_fields = ("module",)
    ordering = ("module", "position", "pk")
    fields = ("module", "text", "kind", "explanation", "position")
    inlines = (QuizChoiceInline,)

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(answer_count=Count("choices"), right_count=Count("choices", filter=Q(choices__is_correct=True)))
        )

    @admin.display(description="Answers", ordering="answer_count")
    def answer_count(self, obj):
        return obj.answer_count

    @admin.display(description="Right", ordering="right_count")
    def right_count(self, obj):
        return obj.right_count


# What members did -------------------------------------------------------------------------------------------------


@admin.register(QuizAttempt)
class QuizAttemptAdmin(DetailJoinsMixin, ReadOnlyModelAdmin):
    list_display = ("member_email", "module", "round", "number", "status", "percent", "started_at", "submitted_at")
    list_filter = ("status", "module")
    list_select_related = ("member__user", "module")
    detail_select_related = ("member__user", "member__partner", "module")
    search_fields = ("=member__user__email",)
    search_help_text = "A member's exact e-mail address."
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    fields = (
        "member",
        "module",
        "round",
        "number",
        "status",
        "correct",
        "total",
        "percent",
        "started_at",
        "deadline",
        "submitted_at",
        "question_order",
        "choice_order",
        "answers",
    )

    member_email = related_field("member.user.email", "Member")


@admin.register(Certificate)
class CertificateAdmin(DetailJoinsMixin, ReadOnlyModelAdmin):
    list_display = ("number", "member_email", "course", "product_line", "issued_on", "expires_on", "expiry_notified_at")
    list_filter = ("product_line", "program")
    list_select_related = ("member__user", "course", "product_line")
    detail_select_related = ("member__user", "member__partner", "course", "product_line", "program")
    search_fields = ("=number", "=member__user__email")
    search_help_text = "A certificate number or a member's e-mail address, exactly."
    fields = (
        "number",
        "member",
        "program",
        "course",
        "product_line",
        "issued_on",
        "expires_on",
        "expiry_notified_at",
    )

    member_email = related_field("member.user.email", "Member")
