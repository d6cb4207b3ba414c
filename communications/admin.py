"""The back office for messages: templates (validated on save, previewed), the delivery log (read-only, with a
resend action) and the suppressed addresses."""

from django import forms
from django.contrib import admin
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from communications.constants import Channel, Kind, allowed_variables
from communications.models import Delivery, MessageTemplate, Suppression
from communications.rendering import render, template_problem
from communications.services import delivery_resend
from loyalty.common.admin import EstimatedCountPaginator, ProgramManagerAdmin, ReadOnlyModelAdmin, run_for_each
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


def preview_text(template: MessageTemplate, member: Member | None) -> tuple[str, str]:
    """The template's subject and body for `member` (or a sample person), each variable shown as [its name]."""
    variables = {name: f"[{name}]" for name in allowed_variables(template.kind)}
    if member is not None:
        variables.update(first_name=member.user.get_short_name(), partner_name=member.partner.name)
    language = template.language or (member.language if member else "en")
    return render(template.subject, variables, language=language), render(template.body, variables, language=language)


@admin.register(MessageTemplate)
class MessageTemplateAdmin(ProgramManagerAdmin):
    form = MessageTemplateForm
    list_display = ["kind", "channel", "language", "role", "subject", "active"]
    list_filter = ["kind", "channel", "language", "role", "active"]
    list_select_related = ["role"]
    search_fields = ["subject", "body"]
    readonly_fields = ["variables", "preview"]
    fields = ["kind", "channel", "language", "role", "subject", "body", "active", "variables", "preview"]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        # The preview is for the member named by ?member=<id> (their name and company), a sample person otherwise.
        member_id = request.GET.get("member", "")
        self._preview_member = (
            Member.objects.select_related("user", "partner").filter(pk=member_id).first()
            if member_id.isdigit()
            else None
        )
        return super().change_view(request, object_id, form_url, extra_context)

    @admin.display(description=_("variables"))
    def variables(self, obj):
        if not obj.kind:
            return "—"
        rows = "".join(
            format_html("<li><code>{{{{ {} }}}}</code>: {}</li>", name, text)
            for name, text in allowed_variables(obj.kind).items()
        )
        return format_html("<ul class='mb-0'>{}</ul>", format_html(rows))

    @admin.display(description=_("preview"))
    def preview(self, obj):
        if obj.pk is None:
            return _("Save the template to see it.")
        subject, body = preview_text(obj, getattr(self, "_preview_member", None))
        hint = _("Add ?member=<id> to this page's address to preview it for that member.")
        return format_html("<strong>{}</strong><pre>{}</pre><small>{}</small>", subject, body, hint)


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyModelAdmin):
    list_display = ["queued_at", "kind", "channel", "member_email", "status", "attempts", "sent_at", "read_at"]
    list_filter = ["status", "channel", "kind"]
    list_select_related = ["member__user"]
    search_fields = ["member__user__email", "address"]
    raw_id_fields = ["member"]
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    actions = ["resend"]
    date_hierarchy = "queued_at"

    @admin.display(description=_("member"), ordering="member__user__email")
    def member_email(self, obj):
        return obj.member.user.email

    @admin.action(description=_("Send the selected failed messages again"))
    def resend(self, request, queryset):
        deliveries = queryset.exclude(channel=Channel.INBOX).select_related("member__user")
        run_for_each(
            self,
            request,
            deliveries,
            lambda delivery: delivery_resend(delivery=delivery),
            done=str(_("Queued again")),
            noun="message",
            name=lambda delivery: f"{delivery.get_kind_display()} → {delivery.address}",
        )


@admin.register(Suppression)
class SuppressionAdmin(ProgramManagerAdmin):
    allow_delete = True  # an address that works again may receive messages again
    list_display = ["address", "reason", "at"]
    list_filter = ["reason"]
    search_fields = ["address"]
