"""The back office for messages: templates (validated on save, previewed), the delivery log (read-only, with a
resend action) and the suppressed addresses."""

from urllib.parse import urlsplit

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.humanize.templatetags.humanize import intcomma
from django.core.exceptions import PermissionDenied
from django.db import models
from django.db.models import Count, Q
from django.http import Http404, HttpResponseRedirect, StreamingHttpResponse
from django.shortcuts import render
from django.template.defaultfilters import linebreaksbr
from django.template.loader import render_to_string
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from communications.campaigns import audience_now, campaign_reach, campaign_save, campaign_send, control_size
from communications.constants import Activity, Channel, FeedbackStatus, Kind, allowed_variables
from communications.feedback import feedback_answer
from communications.models import (
    Campaign,
    CampaignMessage,
    Delivery,
    Feedback,
    MessageTemplate,
    Question,
    Suppression,
    Survey,
    Tip,
)
from communications.previews import preview_member, preview_text, template_problems, template_send_test
from communications.rendering import template_problem
from communications.sending import delivery_resend
from communications.surveys import survey_audience, survey_csv, survey_invite, survey_results
from loyalty.common.admin import (
    EstimatedCountPaginator,
    ProgramManagerAdmin,
    ProgramManagerPermissions,
    ReadOnlyModelAdmin,
    SavedByServices,
    admin_page,
    adopt,
    back_to_object,
    is_program_manager,
    object_url,
    run_for_each,
)
from loyalty.common.errors import ApplicationError
from loyalty.common.storage import private_file_response
from partners.constants import PartnerKind
from partners.models import Member


class MessageTemplateForm(forms.ModelForm):
    class Meta:
        model = MessageTemplate
        fields = ["kind", "channel", "language", "role", "subject", "body", "active"]

    def clean(self):
        data = super().clean()
        kind = data.get("kind")
        if kind in Kind.values:
            for field in ("subject", "body"):
                problem = template_problem(kind, data.get(field) or "")
                if problem and field not in self.errors:
                    self.add_error(field, problem)
        return data


@admin.register(MessageTemplate)
class MessageTemplateAdmin(ProgramManagerAdmin):
    form = MessageTemplateForm
    list_display = ["kind", "channel", "language", "role", "subject", "active"]
    list_filter = ["kind", "channel", "language", "role", "active"]
    list_select_related = ["role"]
    search_fields = ["subject", "body"]
    readonly_fields = ["variables"]
    fields = ["kind", "channel", "language", "role", "subject", "body", "active", "variables"]
    # The change form adds the live preview (for a member chosen by e-mail) and the "send me a test" button.
    change_form_template = "admin/communications/messagetemplate/change_form.html"

    def get_urls(self):
        own = [
            path(
                "preview/", self.admin_site.admin_view(self.preview_view), name="communications_messagetemplate_preview"
            ),
            path(
                "send-test/",
                self.admin_site.admin_view(self.send_test_view),
                name="communications_messagetemplate_send_test",
            ),
        ]
        return own + super().get_urls()

    @admin.display(description=_("variables"))
    def variables(self, obj):
        if not obj.kind:
            return "—"
        rows = format_html_join("", "<li><code>{{{{ {} }}}}</code>: {}</li>", allowed_variables(obj.kind).items())
        return format_html("<ul class='mb-0'>{}</ul>", rows)

    def _typed(self, request) -> tuple[MessageTemplate, Member | None, dict]:
        """The template as the form holds it now (unsaved) and the member the preview is for; the answer's context."""
        if request.method != "POST":
            raise Http404
        if not (self.has_change_permission(request) or self.has_add_permission(request)):
            raise PermissionDenied
        data = request.POST
        template = MessageTemplate(
            kind=data.get("kind", ""),
            channel=data.get("channel", ""),
            language=data.get("language", "") if data.get("language", "") in dict(settings.LANGUAGES) else "",
            subject=data.get("subject", ""),
            body=data.get("body", ""),
        )
        email = data.get("preview_member", "")
        member = preview_member(email)
        context = {"member": member, "member_missing": bool(email.strip()) and member is None}
        if template.kind not in Kind.values:
            context["problems"] = [_("Choose the kind of message.")]
        else:
            context["problems"] = template_problems(template)
        return template, member, context

    def preview_view(self, request):
        template, member, context = self._typed(request)
        if not context["problems"]:
            context["subject"], context["body"] = preview_text(template, member)
        return render(request, "admin/communications/messagetemplate/_preview.html", context)

    def send_test_view(self, request):
        template, member, context = self._typed(request)
        if not context["problems"]:
            template_send_test(template=template, member=member, to=request.user.email)
            context["sent_to"] = request.user.email
        return render(request, "admin/communications/messagetemplate/_send_test.html", context)


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyModelAdmin):
    list_display = ["queued_at", "kind", "channel", "member_email", "status", "attempts", "sent_at", "read_at"]
    list_filter = ["status", "channel", "kind"]
    list_select_related = ["member__user"]
    search_fields = ["member__user__email", "address"]
    raw_id_fields = ["member"]
    exclude = ["link_code"]  # the short link signs its member in: nobody else may read it
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    actions = ["resend"]
    date_hierarchy = "queued_at"
    # An invitation's link signs its holder up until it is used: the log shows these in place of subject, body and
    # link, with its token masked.
    readonly_fields = ["shown_subject", "shown_body", "shown_link"]
    MASKED_FIELDS = {"subject": "shown_subject", "body": "shown_body", "link": "shown_link"}

    def get_fields(self, request, obj=None):
        return list(dict.fromkeys(self.MASKED_FIELDS.get(name, name) for name in super().get_fields(request, obj)))

    @admin.display(description=_("subject"))
    def shown_subject(self, obj):
        return without_sign_up_token(obj, obj.subject)

    @admin.display(description=_("body"))
    def shown_body(self, obj):
        return linebreaksbr(without_sign_up_token(obj, obj.body))  # escaped, line breaks kept as the field showed them

    @admin.display(description=_("link"))
    def shown_link(self, obj):
        return without_sign_up_token(obj, obj.link)

    @admin.display(description=_("member"), ordering="member__user__email")
    def member_email(self, obj):
        return obj.member.user.email

    @admin.action(description=_("Send the selected failed messages again"))
    def resend(self, request, queryset):
        queued, refused = [], []
        for delivery in queryset.order_by("pk"):
            try:
                delivery_resend(delivery=delivery)
            except ApplicationError:
                refused.append(delivery)
            else:
                queued.append(delivery)
        # One message for the whole selection: how many went, and which did not and why.
        level = messages.ERROR if not queued else messages.WARNING if refused else messages.SUCCESS
        self.message_user(request, resend_report(queued, refused), level=level)


# A resend report names this many messages, then says how many more.
NAMES_IN_RESEND_REPORT = 10


def resend_report(queued: list[Delivery], refused: list[Delivery]) -> str:
    """What the resend action did: how many messages were queued again (their ids), and which were not, each with
    what keeps it from being sent again (the inbox, or a status other than failed, bounced or suppressed)."""

    def listed(names: list[str]) -> str:
        shown = ", ".join(names[:NAMES_IN_RESEND_REPORT])
        hidden = len(names) - NAMES_IN_RESEND_REPORT
        return shown if hidden <= 0 else _("%(shown)s and %(count)s more") % {"shown": shown, "count": hidden}

    parts = []
    if queued:
        parts.append(
            ngettext(
                "Queued again: %(count)s message (%(ids)s).", "Queued again: %(count)s messages (%(ids)s).", len(queued)
            )
            % {"count": len(queued), "ids": listed([f"#{delivery.pk}" for delivery in queued])}
        )
    if refused:
        named = [
            _("#%(id)s “%(subject)s” (%(why)s)")
            % {
                "id": delivery.pk,
                "subject": without_sign_up_token(delivery, delivery.subject),
                "why": why_not(delivery),
            }
            for delivery in refused
        ]
        parts.append(
            ngettext(
                "Not sent again: %(count)s message: %(names)s.",
                "Not sent again: %(count)s messages: %(names)s.",
                len(refused),
            )
            % {"count": len(refused), "names": listed(named)}
        )
        parts.append(str(_("Only failed, bounced or suppressed e-mail and SMS messages can be sent again.")))
    return " ".join(parts)


def why_not(delivery: Delivery) -> str:
    """What keeps a delivery from being sent again: it is in the app's inbox, or its status."""
    return delivery.get_channel_display() if delivery.channel == Channel.INBOX else delivery.get_status_display()


def without_sign_up_token(delivery: Delivery, text: str) -> str:
    """`text` of an invitation with its sign-up token (the last part of the link's path) masked."""
    token = urlsplit(delivery.link).path.rstrip("/").rpartition("/")[2] if delivery.kind == Kind.INVITATION else ""
    return text.replace(token, "[…]") if token else text


@admin.register(Suppression)
class SuppressionAdmin(ProgramManagerAdmin):
    allow_delete = True  # an address that works again may receive messages again
    list_display = ["address", "reason", "at"]
    list_filter = ["reason"]
    search_fields = ["address"]


# Surveys and feedback ---------------------------------------------------------------------------------------------


class QuestionForm(forms.ModelForm):
    choices = forms.CharField(
        label=_("choices"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 30}),
        help_text=_("One choice or several choices: one answer per line."),
    )

    class Meta:
        model = Question
        fields = ["order", "kind", "text", "choices", "required"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.initial["choices"] = "\n".join(self.instance.choices or [])

    def clean_choices(self):
        return [line.strip() for line in self.cleaned_data["choices"].splitlines() if line.strip()]


class QuestionInline(ProgramManagerPermissions, admin.TabularInline):
    """The questions; frozen once members have answered (changing them would mix up the results)."""

    model = Question
    form = QuestionForm
    extra = 1

    def _answered(self, obj) -> bool:
        if obj is None:
            return False
        if not hasattr(obj, "_has_responses"):
            obj._has_responses = obj.responses.exists()
        return obj._has_responses

    def has_add_permission(self, request, obj=None):
        return super().has_add_permission(request) and not self._answered(obj)

    def has_change_permission(self, request, obj=None):
        return super().has_change_permission(request, obj) and not self._answered(obj)

    def has_delete_permission(self, request, obj=None):
        return is_program_manager(request.user) and not self._answered(obj)


def partner_kinds_field() -> forms.MultipleChoiceField:
    """The partner types of a survey's or a campaign's audience, as boxes to tick."""
    return forms.MultipleChoiceField(
        label=_("partner types"),
        choices=PartnerKind.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("Leave empty for every partner type."),
    )


class SurveyForm(forms.ModelForm):
    partner_kinds = partner_kinds_field()

    class Meta:
        model = Survey
        fields = [
            "program", "title", "intro", "status", "opens_at", "closes_at", "roles", "partner_kinds",
            "points_for_answer",
        ]  # fmt: skip
        widgets = {"roles": forms.CheckboxSelectMultiple}
        help_texts = {
            "points_for_answer": _(
                "Offered once per member for answering. The program's “Survey answered” rules pay it: a rule of 1 pt "
                "per unit pays exactly this, with its caps and budget. Without such a rule nothing is paid."
            )
        }


@admin.register(Survey)
class SurveyAdmin(ProgramManagerAdmin):
    form = SurveyForm
    inlines = [QuestionInline]
    list_display = ["title", "program", "status", "opens_at", "closes_at", "response_count", "invited_at", "results"]
    list_filter = ["status", "program"]
    list_select_related = ["program"]
    search_fields = ["title"]
    readonly_fields = ["audience_size", "invited_at", "results"]
    actions = ["invite"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(response_count=Count("responses"))

    @admin.display(description=_("responses"), ordering="response_count")
    def response_count(self, obj):
        return obj.response_count

    @admin.display(description=_("audience"))
    def audience_size(self, obj):
        if obj.pk is None:
            return _("Save the survey to see its audience.")
        return _("%(count)s members") % {"count": intcomma(survey_audience(survey=obj).count())}

    @admin.display(description=_("results"))
    def results(self, obj):
        if obj.pk is None:
            return "—"
        return format_html(
            '<a href="{}">{}</a> · <a href="{}">{}</a>',
            reverse("admin:communications_survey_results", args=[obj.pk]),
            _("Results"),
            reverse("admin:communications_survey_csv", args=[obj.pk]),
            _("CSV"),
        )

    @admin.action(description=_("Invite the audience of the selected open surveys"))
    def invite(self, request, queryset):
        run_for_each(
            self,
            request,
            queryset.order_by("pk"),
            lambda survey: survey_invite(survey=survey),
            done=str(_("Sent the invitations of")),
            noun="survey",
        )

    def get_urls(self):
        allowed = self.has_view_permission
        return [
            object_url(self, "results/", self.results_view, name="communications_survey_results", allowed=allowed),
            object_url(self, "results.csv", self.csv_view, name="communications_survey_csv", allowed=allowed),
            *super().get_urls(),
        ]

    def results_view(self, request, survey):
        title = _("Results: %(title)s") % {"title": survey.title}
        context = {"original": survey, "results": survey_results(survey=survey)}
        return admin_page(self, request, "admin/communications/survey/results.html", title=title, **context)

    def csv_view(self, request, survey):
        response = StreamingHttpResponse(survey_csv(survey=survey), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="survey-{survey.pk}.csv"'
        return response


class FeedbackAnswerForm(forms.ModelForm):
    class Meta:
        model = Feedback
        fields = ["answer"]
        widgets = {"answer": forms.Textarea(attrs={"rows": 6, "cols": 80})}
        help_texts = {"answer": _("Saving sends the answer to the member (once; it cannot be changed after).")}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "answer" in self.fields:
            self.fields["answer"].required = True


@admin.register(Feedback)
class FeedbackAdmin(SavedByServices, ProgramManagerAdmin):
    """The feedback inbox: what members wrote, newest first; a program manager answers on the feedback's page."""

    form = FeedbackAnswerForm
    list_display = ["created_at", "member_email", "partner", "member_language", "topic", "status", "answered_at"]
    list_filter = ["status", "topic", "member__language", ("created_at", admin.DateFieldListFilter)]
    list_select_related = ["member__user", "member__partner"]
    search_fields = ["member__user__email", "text"]
    date_hierarchy = "created_at"
    # The member's language sits right above the answer box: the answer reaches them as written.
    fields = [
        "member", "partner", "created_at", "topic", "text", "photo_link", "status", "answer_language", "answer",
        "answered_by", "answered_at",
    ]  # fmt: skip
    _shown = [
        "member", "partner", "created_at", "topic", "text", "photo_link", "status", "answer_language", "answered_by",
        "answered_at",
    ]  # fmt: skip

    def has_add_permission(self, request, *args):
        return False  # members write feedback on the member site

    def get_readonly_fields(self, request, obj=None):
        if obj is not None and obj.status == FeedbackStatus.ANSWERED:
            return [*self._shown, "answer"]
        return self._shown

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("member__user", "member__partner", "answered_by")

    @admin.display(description=_("member"), ordering="member__user__email")
    def member_email(self, obj):
        return obj.member.user.email

    @admin.display(description=_("partner"), ordering="member__partner__name")
    def partner(self, obj):
        return obj.member.partner.name

    @admin.display(description=_("language"), ordering="member__language")
    def member_language(self, obj):
        return obj.member.get_language_display()

    @admin.display(description=_("member's language"))
    def answer_language(self, obj):
        if obj.status == FeedbackStatus.ANSWERED:
            return obj.member.get_language_display()
        return _("Answer in %(language)s") % {"language": obj.member.get_language_display()}

    @admin.display(description=_("photo"))
    def photo_link(self, obj):
        if not obj.photo:
            return "—"
        url = reverse("admin:communications_feedback_photo", args=[obj.pk])
        return format_html('<a href="{}">{}</a>', url, _("Open the photo"))

    def get_urls(self):
        photo = object_url(
            self,
            "photo/",
            lambda request, feedback: private_file_response(feedback.photo, download_name=f"feedback-{feedback.pk}"),
            name="communications_feedback_photo",
            allowed=self.has_view_permission,
            hide_missing=True,
        )
        return [photo, *super().get_urls()]

    def save_model(self, request, obj, form, change):
        if "answer" in form.cleaned_data:
            adopt(obj, feedback_answer(feedback=obj, answer=form.cleaned_data["answer"], actor=request.user))


# Campaigns --------------------------------------------------------------------------------------------------------


class CampaignMessageInline(ProgramManagerPermissions, admin.StackedInline):
    """The campaign's words per role; one without a role is for everyone else. Fixed once the campaign is sent."""

    model = CampaignMessage
    extra = 0
    min_num = 1
    fields = ["role", "subject", "body"]

    def has_add_permission(self, request, obj=None):
        return super().has_add_permission(request, obj) and (obj is None or obj.can_send())

    def has_change_permission(self, request, obj=None):
        return super().has_change_permission(request, obj) and (obj is None or obj.can_send())

    def has_delete_permission(self, request, obj=None):
        return is_program_manager(request.user) and (obj is None or obj.can_send())


class CampaignForm(forms.ModelForm):
    """The segment's partner types and languages as boxes to tick, not codes to type."""

    partner_kinds = partner_kinds_field()
    languages = forms.MultipleChoiceField(
        label=_("languages"),
        choices=settings.LANGUAGES,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("Leave empty for every language."),
    )

    class Meta:
        model = Campaign
        fields = [
            "program", "name", "topic", "scheduled_at", "partner_kinds", "tiers", "regions", "roles", "languages",
            "activity", "inactive_days", "control_percent", "acted_within_days",
        ]  # fmt: skip


@admin.register(Campaign)
class CampaignAdmin(SavedByServices, ProgramManagerAdmin):
    form = CampaignForm
    list_display = ["name", "program", "status", "scheduled_at", "sent_at"]
    list_filter = ["status", "topic"]
    list_select_related = ["program"]
    search_fields = ["name"]
    inlines = [CampaignMessageInline]
    formfield_overrides = {models.ManyToManyField: {"widget": forms.CheckboxSelectMultiple}}
    segment = ["partner_kinds", "tiers", "regions", "roles", "languages", "activity", "inactive_days"]
    fieldsets = [
        (None, {"fields": ["program", "name", "topic", "status", "scheduled_at", "sent_at"]}),
        (_("Audience"), {"fields": [*segment, "audience_size"]}),
        (_("Measuring"), {"fields": ["control_percent", "acted_within_days", "reach"]}),
    ]

    readonly_fields = ["status", "sent_at", "audience_size", "reach"]

    def has_change_permission(self, request, obj=None):
        # A sent (or cancelled) campaign is a record: its page shows it, nothing on it changes.
        return super().has_change_permission(request, obj) and (obj is None or obj.can_send())

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        extra_context = {**(extra_context or {}), "no_points_activity": Activity.NO_POINTS}
        return super().changeform_view(request, object_id, form_url, extra_context)

    def get_fieldsets(self, request, obj=None):
        # A record shows the days without points only where its activity counts them ("Days without points: 60"
        # under "Never redeemed" misleads); the form hides the field while another activity is chosen
        # (change_form.html), so a new choice of activity can still set its days.
        fieldsets = super().get_fieldsets(request, obj)
        if obj is None or obj.can_send():
            return fieldsets
        # A record names its partner types and languages, not their codes.
        shown = {"partner_kinds": "partner_types_named", "languages": "languages_named"}
        if obj.activity != Activity.NO_POINTS:
            shown["inactive_days"] = None
        return [
            (
                name,
                {
                    **options,
                    "fields": [shown.get(f, f) for f in options["fields"] if not (f in shown and shown[f] is None)],
                },
            )
            for name, options in fieldsets
        ]

    def get_readonly_fields(self, request, obj=None):
        return [*super().get_readonly_fields(request, obj), "partner_types_named", "languages_named"]

    @admin.display(description=_("partner types"))
    def partner_types_named(self, obj):
        return ", ".join(str(PartnerKind(kind).label) for kind in obj.partner_kinds) or _("Every partner type")

    @admin.display(description=_("languages"))
    def languages_named(self, obj):
        names = dict(settings.LANGUAGES)
        return ", ".join(names.get(code, code) for code in obj.languages) or _("Every language")

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        if db_field.name == "tiers":
            kwargs["queryset"] = db_field.remote_field.model.objects.select_related("program")
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    def save_model(self, request, obj, form, change):
        campaign_save(campaign=obj)

    @admin.display(description=_("audience"))
    def audience_size(self, obj):
        if obj.pk is None:
            return _("Save the campaign to see its audience.")
        if obj.sent_at is not None:
            return format_html(
                _("{members} members, {control} of them in the control group."),
                members=intcomma(obj.recipients.count()),
                control=intcomma(obj.recipients.filter(in_control_group=True).count()),
            )
        now = audience_now(obj)
        return format_html(
            _(
                "{members} members match the segment now; {control} of them will form the control group. "
                "{reachable} can be reached now: {no_consent} have not consented to this topic (opted out, or not "
                "opted in where their region asks for consent first), {capped} have had their weekly messages."
            ),
            members=intcomma(now.size),
            control=intcomma(control_size(now.size, obj.control_percent)),
            reachable=intcomma(now.reachable),
            no_consent=intcomma(now.no_consent),
            capped=intcomma(now.capped),
        )

    @admin.display(description=_("reach"))
    def reach(self, obj):
        if obj.pk is None or obj.sent_at is None:
            return _("Measured once the campaign is sent.")
        context = {"reach": campaign_reach(obj), "campaign": obj}
        return render_to_string("admin/communications/campaign/reach.html", context)

    def get_urls(self):
        send = object_url(
            self,
            "send/",
            self.send_view,
            name="communications_campaign_send",
            allowed=lambda request, campaign: self.has_change_permission(request, campaign) and campaign.can_send(),
            methods=("GET", "POST"),
        )
        return [send, *super().get_urls()]

    def send_view(self, request, campaign):
        """ "Send now": the audience as it is now, then, once confirmed, the sending."""
        if request.method == "POST":
            try:
                campaign_send(campaign=campaign, actor=request.user)
            except ApplicationError as exc:
                self.message_user(request, exc.message, level=messages.ERROR)
                return HttpResponseRedirect(reverse("admin:communications_campaign_change", args=[campaign.pk]))
            counts = campaign.recipients.aggregate(
                messaged=Count("pk", filter=Q(delivery__isnull=False)),
                control=Count("pk", filter=Q(in_control_group=True)),
                total=Count("pk"),
            )
            skipped = counts["total"] - counts["control"] - counts["messaged"]
            message = _(
                "Campaign sent: %(messaged)s members messaged, %(control)s in the control group (sent nothing), "
                "%(skipped)s not messaged (no consent to this topic, or their weekly messages reached)."
            ) % {key: intcomma(value) for key, value in {**counts, "skipped": skipped}.items()}
            return back_to_object(self, request, campaign, message)
        now = audience_now(campaign)
        return admin_page(
            self,
            request,
            "admin/communications/campaign/send.html",
            title=_("Send “%(name)s” now") % {"name": campaign.name},
            form=forms.Form(),
            original=campaign,
            audience=now,
            control_size=control_size(now.size, campaign.control_percent),
        )


# Tips -------------------------------------------------------------------------------------------------------------


@admin.register(Tip)
class TipAdmin(ProgramManagerAdmin):
    """The pool a message's {{ tip }} is picked from (communications/tips.py)."""

    allow_delete = True  # a tip nobody should read any more goes; deliveries keep the text they were sent with
    list_display = ["text", "product_line", "role", "language", "link_path", "active"]
    list_filter = ["active", "role", "language", "product_line"]
    list_select_related = ["role"]
    search_fields = ["text", "product_line"]
    fields = ["text", "link_path", "product_line", "role", "language", "active"]
