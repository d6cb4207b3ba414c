"""What communications does when partners calls its hooks (partners may not import communications)."""

from django.urls import reverse
from django.utils import timezone

from communications.constants import Kind
from communications.services import notify


def member_approved(*, member, actor) -> None:
    notify(kind=Kind.MEMBER_APPROVED, member=member, source_key=f"member:{member.pk}:approved", variables={})


def member_left(*, member, actor) -> None:
    notify(kind=Kind.MEMBER_DEACTIVATED, member=member, source_key=f"member:{member.pk}:left", variables={"reason": ""})


def invitation_issued(*, invitation, token: str) -> None:
    """The invitation with its sign-up link (the message's `link`), once per invitation: a resend is a new invitation,
    so it is told again. The raw token lives only in the stored message (the delivery log masks it) and the link."""
    member = invitation.member
    notify(
        kind=Kind.INVITATION,
        member=member,
        source_key=f"invitation:{invitation.pk}",
        variables={
            "invited_by": str(invitation.invited_by or member.partner.name),
            "reminder": False,
            "expires_on": timezone.localdate(invitation.expires_at),
        },
        link_path=reverse("invitation_accept", args=[token]),
    )
