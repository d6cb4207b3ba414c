from celery import shared_task
from django.core.mail import send_mail
from django.template.loader import render_to_string

from loyalty.common.links import absolute_url
from partners.models import Invitation


@shared_task(autoretry_for=(OSError,), retry_backoff=True, max_retries=5)
def send_invitation_email(invitation_id: int, token: str) -> None:
    invitation = Invitation.objects.select_related("member__partner", "member__role", "member__user", "invited_by").get(
        pk=invitation_id
    )
    if not invitation.is_usable:
        return  # replaced, cancelled or used before we got to it
    context = {
        "invitation": invitation,
        "member": invitation.member,
        "url": absolute_url("invitation_accept", token),
    }
    send_mail(
        subject=f"You are invited to join {invitation.member.partner.name} in the partner program",
        message=render_to_string("partners/email/invitation.txt", context),
        from_email=None,
        recipient_list=[invitation.member.user.email],
    )
