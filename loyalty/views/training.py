"""Member-site pages of learn to earn: Learn (courses, progress, what each module pays, certificates), a module's
lesson, its quiz (started by a POST, one form answerable one-handed on a phone), the result, and a certificate's PDF.

Thin views over loyalty.selectors.training (reads, the viewer's own attempts and certificates only) and
loyalty.services.training (writes). The pages are for partner members in a running program (others get a 404, as
on the other member pages); an attempt or a module the viewer may not see is a 404; a refusal is a message.
"""

from django import forms
from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from loyalty.common.errors import ApplicationError
from loyalty.constants import AttemptStatus, QuestionKind
from loyalty.error_codes import ErrorCode
from loyalty.models import Module, QuizAttempt
from loyalty.selectors import training as selectors
from loyalty.services import training as services
from loyalty.services.earning import published_rules
from loyalty.views.decorators import member_in_program_required
from loyalty.views.shortcuts import get_or_404

learner_required = member_in_program_required(gettext_lazy("Learning is for partner members."))


def _module(request, module_id: int) -> Module:
    return get_or_404(
        Module,
        selectors.module_get,
        "No such module.",
        viewer=request.user,
        program=request.program,
        module_id=module_id,
    )


def _attempt(request, attempt_id: int) -> QuizAttempt:
    return get_or_404(
        QuizAttempt,
        selectors.attempt_get,
        "No such quiz attempt.",
        viewer=request.user,
        attempt_id=attempt_id,
    )


def _paragraphs(text: str) -> list[str]:
    """The lesson's paragraphs: blank lines separate them."""
    return [part.strip() for part in text.replace("\r\n", "\n").split("\n\n") if part.strip()]


# Learn ----------------------------------------------------------------------------------------------------------


@learner_required
@require_GET
def learn(request):
    overview = selectors.learn_overview(
        viewer=request.user, program=request.program, rules=published_rules(request.program)
    )
    context = {
        "program": request.program,
        "member": request.member,
        "courses": overview.courses,
        "certificates": overview.certificates,
    }
    return render(request, "loyalty/training/learn.html", context)


@learner_required
@require_GET
def module_detail(request, module_id: int):
    module = _module(request, module_id)
    progress = selectors.module_progress(viewer=request.user, module=module, rules=published_rules(request.program))
    context = {
        "module": module,
        "course": module.course,
        "program": request.program,
        "progress": progress,
        "paragraphs": _paragraphs(module.body),
        "closed": module.course.closes_on is not None and module.course.closes_on < timezone.localdate(),
    }
    return render(request, "loyalty/training/module.html", context)


@learner_required
@require_POST
def quiz_start(request, module_id: int):
    """ "Take the quiz": a new attempt (or the one still open), then its questions."""
    module = _module(request, module_id)
    try:
        attempt = services.start_attempt(member=request.member, module=module)
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return redirect("module_detail", module_id=module.pk)
    return redirect("quiz_take", attempt_id=attempt.pk)


# The quiz -------------------------------------------------------------------------------------------------------


class QuizForm(forms.Form):
    """One field per question in the attempt's order: radio buttons for one answer, checkboxes for several, the
    answers in the attempt's shuffled order."""

    def __init__(self, data=None, *, questions: list[selectors.AskedQuestion]):
        super().__init__(data)
        self.questions = questions
        attrs = {"class": "form-check-input flex-shrink-0 mt-0"}
        for asked in questions:
            choices = [(choice.pk, choice.text) for choice in asked.choices]
            if asked.question.kind == QuestionKind.MULTIPLE:
                field = forms.TypedMultipleChoiceField(
                    choices=choices,
                    coerce=int,
                    widget=forms.CheckboxSelectMultiple(attrs=attrs),
                    error_messages={"required": _("Choose at least one answer.")},
                )
            else:
                field = forms.TypedChoiceField(
                    choices=choices,
                    coerce=int,
                    widget=forms.RadioSelect(attrs=attrs),
                    error_messages={"required": _("Choose an answer.")},
                )
            field.label = asked.question.text
            self.fields[self.name_of(asked)] = field

    @staticmethod
    def name_of(asked: selectors.AskedQuestion) -> str:
        return f"q{asked.question.pk}"

    def rows(self) -> list[tuple[selectors.AskedQuestion, forms.BoundField]]:
        return [(asked, self[self.name_of(asked)]) for asked in self.questions]

    def answers(self) -> dict[int, list[int]]:
        chosen = {}
        for asked in self.questions:
            value = self.cleaned_data.get(self.name_of(asked))
            chosen[asked.question.pk] = list(value) if isinstance(value, list) else [value]
        return chosen


@learner_required
@require_http_methods(["GET", "POST"])
def quiz_take(request, attempt_id: int):
    attempt = _attempt(request, attempt_id)
    if attempt.status != AttemptStatus.STARTED:
        if request.method == "POST":  # answers sent again (another tab, the back button): they do not count
            messages.info(
                request, _("This quiz was already submitted; these answers did not count. Here is its result.")
            )
        return redirect("quiz_result", attempt_id=attempt.pk)
    questions = selectors.attempt_questions(attempt)
    form = QuizForm(request.POST if request.method == "POST" else None, questions=questions)
    if request.method == "POST" and form.is_valid():
        try:
            services.submit_attempt(member=request.member, attempt_id=attempt.pk, answers=form.answers())
        except ApplicationError as exc:
            if exc.code == ErrorCode.ATTEMPT_SUBMITTED:  # another tab sent it first
                messages.info(request, exc.message)
                return redirect("quiz_result", attempt_id=attempt.pk)
            if exc.code == ErrorCode.ATTEMPT_EXPIRED:
                messages.error(request, exc.message)
                return redirect("module_detail", module_id=attempt.module_id)
            form.add_error(None, exc.message)
        else:
            return redirect("quiz_result", attempt_id=attempt.pk)
    context = {
        "attempt": attempt,
        "module": attempt.module,
        "form": form,
        "expired": attempt.deadline < timezone.now(),
    }
    return render(request, "loyalty/training/quiz.html", context, status=400 if form.errors else 200)


@learner_required
@require_GET
def quiz_result(request, attempt_id: int):
    attempt = _attempt(request, attempt_id)
    if attempt.status == AttemptStatus.STARTED:
        return redirect("quiz_take", attempt_id=attempt.pk)
    result = selectors.attempt_result(viewer=request.user, attempt=attempt)
    context = {
        "result": result,
        "attempt": attempt,
        "passed": attempt.status == AttemptStatus.PASSED,
        "module": attempt.module,
        "program": request.program,
    }
    return render(request, "loyalty/training/result.html", context)


# Certificates ---------------------------------------------------------------------------------------------------


@learner_required
@require_GET
def certificate_download(request, course_id: int):
    """The member's certificate of a course as a PDF; without one, a page saying why (not found)."""
    try:
        certificate = services.certificate_to_download(member=request.member, course_id=course_id)
    except ApplicationError as exc:
        return render(request, "loyalty/training/no_certificate.html", {"message": exc.message}, status=404)
    response = HttpResponse(services.certificate_pdf(certificate), content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="certificate-{certificate.number}.pdf"'
    return response
