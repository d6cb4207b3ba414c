"""A template as a member would read it, before it is saved: the template admin's live preview and its "send me a
test". A test goes out through the same mailer and sender as every message, to the program manager's own address
only, and stores no delivery (it is nobody's message: it must not count in the log or in a campaign's reach)."""

from email.utils import make_msgid

from django.conf import settings
from django.core.mail import EmailMessage
from django.db.models import Case, IntegerField, Value, When
from django.utils.translation import gettext as _

from communications.constants import allowed_variables
from communications.models import MessageTemplate
from communications.rendering import render, template_problem
from communications.tips import TipPicker
from loyalty.common.links import site_hostname
from partners.constants import MemberStatus
from partners.models import Member

PREVIEW_SOURCE = "preview"


def preview_member(email: str) -> Member | None:
    """The membership of the person with this e-mail address a preview is for: their active one if any."""
    email = email.strip()
    if not email:
        return None
    return (
        Member.objects.select_related("user", "partner")
        .filter(user__email__iexact=email)
        .order_by(Case(When(status=MemberStatus.ACTIVE, then=Value(0)), default=Value(1), output_field=IntegerField()))
        .first()
    )


def template_problems(template: MessageTemplate) -> list[str]:
    """Why the (unsaved) template cannot be shown: a syntax error or an unknown variable, per field."""
    problems = []
    for label, text in ((_("Subject"), template.subject), (_("Body"), template.body)):
        problem = template_problem(template.kind, text)
        if problem:
            problems.append(f"{label}: {problem}")
    return problems


def preview_text(template: MessageTemplate, member: Member | None) -> tuple[str, str]:
    """The template's subject and body for `member` (their name, company and tip) or a sample person; the other
    variables are shown as [their name]. The template must be free of problems (template_problems)."""
    variables = {name: f"[{name}]" for name in allowed_variables(template.kind)}
    if member is not None:
        variables.update(first_name=member.user.get_short_name(), partner_name=member.partner.name)
        if "tip" in variables:
            variables["tip"] = TipPicker().lazy_tip(member=member, source_key=PREVIEW_SOURCE)
    language = template.language or (member.language if member else "en")
    return render(template.subject, variables, language=language), render(template.body, variables, language=language)


def template_send_test(*, template: MessageTemplate, member: Member | None, to: str) -> None:
    """E-mail the preview to `to` (the program manager), whatever the template's channel, marked as a test."""
    subject, body = preview_text(template, member)
    EmailMessage(
        subject=_("[Test] %(subject)s") % {"subject": subject or template.get_kind_display()},
        body=body,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[to],
        headers={"Message-ID": make_msgid(domain=site_hostname())},
    ).send()
