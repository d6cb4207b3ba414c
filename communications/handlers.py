"""What communications does when partners calls its hooks (partners may not import communications)."""

from communications.constants import Kind
from communications.services import notify


def member_approved(*, member, actor) -> None:
    notify(kind=Kind.MEMBER_APPROVED, member=member, source_key=f"member:{member.pk}:approved", variables={})


def member_left(*, member, actor) -> None:
    notify(kind=Kind.MEMBER_DEACTIVATED, member=member, source_key=f"member:{member.pk}:left", variables={"reason": ""})
