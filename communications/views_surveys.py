"""The member site's surveys (the open ones, answering once, thanks) and feedback to the program team (the form and
the member's own feedback with the answers). Thin views over communications.surveys and communications.feedback;
everything is looked up inside what the viewer may see, so anything else is a 404."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods

from communications import feedback as feedback_services
from communications import hooks, surveys
from communications.forms_surveys import FeedbackForm, SurveyAnswerForm
from communications.models import Response
from loyalty.common.errors import ApplicationError
from loyalty.common.storage import private_file_response
from partners.visibility import viewer_for

FEEDBACK_PAGE_SIZE = feedback_services.FEEDBACK_PAGE_SIZE  # the answer notice's link names the page too


def _survey_or_404(request, survey_id: int):
    survey = surveys.surveys_for(request.user).filter(pk=survey_id).first()
    if survey is None:
        raise Http404("No such survey.")
    return survey


@login_required
@require_GET
def survey_list(request):
    viewer = viewer_for(request.user)
    listed = list(surveys.surveys_for(viewer))
    for survey in listed:  # a few open surveys: what the rules pay for each is worked out per survey
        survey.points = (
            0 if survey.answered_at else hooks.survey_points(hooks.OFFERED, survey=survey, member=viewer.member)
        )
    context = {"surveys": listed, "is_member": viewer.member is not None}
    return render(request, "communications/surveys/list.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def survey_page(request, survey_id: int):
    survey = surveys.surveys_for(request.user).filter(pk=survey_id).first()
    if survey is None:
        ended = surveys.ended_survey(request.user, survey_id)
        if ended is None:
            raise Http404("No such survey.")
        survey, message = ended  # the link of an old invitation: it has closed (or when they answered), not a 404
        return render(request, "communications/surveys/answer.html", {"survey": survey, "refusal": message})
    if survey.answered_at is not None:
        # Answered before (another tab, the back button): say when, change nothing.
        context = {"survey": survey, "refusal": surveys.answered_message(survey.answered_at)}
        return render(
            request, "communications/surveys/answer.html", context, status=409 if request.method == "POST" else 200
        )
    data = request.POST if request.method == "POST" else None
    form = SurveyAnswerForm(data, questions=survey.questions.all())
    if request.method == "POST" and form.is_valid():
        member = viewer_for(request.user).member
        try:
            surveys.survey_answer(survey=survey, member=member, answers=form.answers())
        except ApplicationError as exc:
            form.add_error(None, exc.message)
        else:
            return redirect("survey_thanks", survey_id=survey.pk)
    return render(request, "communications/surveys/answer.html", {"survey": survey, "form": form})


@login_required
@require_GET
def survey_thanks(request, survey_id: int):
    member = viewer_for(request.user).member
    response = (
        Response.objects.select_related("survey").filter(survey_id=survey_id, member__user=request.user).first()
        if member is not None
        else None
    )
    if response is None:
        raise Http404("You have not answered this survey.")
    paid = hooks.survey_points(hooks.PAID, survey=response.survey, member=member)
    context = {"response": response, "survey": response.survey, "points": paid}
    return render(request, "communications/surveys/thanks.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def feedback_page(request):
    viewer = viewer_for(request.user)
    form = None
    if viewer.member is not None:
        form = FeedbackForm(*((request.POST, request.FILES) if request.method == "POST" else ()))
    if form is not None and request.method == "POST" and form.is_valid():
        try:
            feedback_services.feedback_send(
                member=viewer.member,
                topic=form.cleaned_data["topic"],
                text=form.cleaned_data["text"],
                photo=form.cleaned_data.get("photo"),
            )
        except (ApplicationError, ValidationError) as exc:
            form.add_error(None, getattr(exc, "message", None) or exc.messages)
        else:
            messages.success(request, _("Thank you! The program team will answer you here and by message."))
            return redirect("feedback")
    page = Paginator(feedback_services.feedback_for(viewer), FEEDBACK_PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "communications/feedback/page.html", {"form": form, "page": page})


@login_required
@require_GET
def feedback_photo(request, feedback_id: int):
    feedback = feedback_services.feedback_for(request.user).filter(pk=feedback_id).first()
    if feedback is None or not feedback.photo:
        raise Http404("No such photo.")
    return private_file_response(feedback.photo, download_name=f"feedback-{feedback.pk}")
