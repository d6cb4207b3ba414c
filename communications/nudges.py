"""Nudges, sent by the daily task communications.tasks.send_nudges:

- `remind_invited`: a person invited INVITATION_REMINDER_DAYS ago or more who has not joined, and whose link still
  works, is reminded once per invitation (kind INVITATION with `reminder`); a fresh invitation is reminded again.
- `nudge_inactive`: an active member who has earned, claimed and redeemed nothing in any active program for
  INACTIVE_DAYS days (and joined before that) is nudged (kind NUDGE_INACTIVE, a marketing topic: the member's
  opt-out and the weekly frequency cap apply), at most once in INACTIVE_DAYS days.

What members did comes from loyalty and rewards through communications.hooks."""

from datetime import datetime, timedelta
from itertools import batched

from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from communications import hooks
from communications.campaigns import BATCH, capped_members
from communications.constants import INACTIVE_DAYS, INVITATION_REMINDER_DAYS, Kind
from communications.models import Campaign, Delivery
from communications.services import Notice, notify_many
from partners.constants import MemberStatus, PartnerStatus
from partners.models import Invitation, Member


def remind_invited(*, days: int = INVITATION_REMINDER_DAYS, now: datetime | None = None) -> int:
    """Remind the people whose open invitation is `days` old or older and still usable; returns how many notices
    were made (reminded before or not: the source key names the invitation, so each is reminded once)."""
    now = now or timezone.now()
    invitations = (
        Invitation.objects.filter(
            member__status=MemberStatus.INVITED,
            member__partner__status=PartnerStatus.ACTIVE,
            accepted_at=None,
            revoked_at=None,
            created_at__lte=now - timedelta(days=days),
            expires_at__gt=now,
        )
        .select_related("invited_by", "member__partner")
        .order_by("pk")
    )
    made = 0
    for batch in batched(invitations.iterator(chunk_size=BATCH), BATCH):
        notices = [
            Notice(
                invitation.member_id,
                f"invitation:{invitation.pk}:reminder",
                {
                    # Nobody named (the inviter's account is gone): the company invited them.
                    "invited_by": str(invitation.invited_by or invitation.member.partner.name),
                    "reminder": True,
                    "expires_on": timezone.localdate(invitation.expires_at),
                },
            )
            for invitation in batch
        ]
        notify_many(kind=Kind.INVITATION, notices=notices)
        made += len(notices)
    return made


def _active_program_ids() -> list[int]:
    # communications may not import loyalty: the programs are read through the model a campaign points at.
    programs = Campaign._meta.get_field("program").related_model
    return list(programs.objects.filter(is_active=True).order_by("pk").values_list("pk", flat=True))


def inactive_members(*, days: int = INACTIVE_DAYS, now: datetime | None = None):
    """The ids of the active members (of active partners, joined `days` ago or more) who did nothing in any active
    program in the last `days` days, were not nudged in that time and are under the frequency cap (a QuerySet);
    none when no program runs."""
    now = now or timezone.now()
    since = now - timedelta(days=days)
    program_ids = _active_program_ids()
    if not program_ids:
        return Member.objects.none().values_list("pk", flat=True)
    members = Member.objects.filter(
        Q(joined_at__isnull=True) | Q(joined_at__lte=since),
        status=MemberStatus.ACTIVE,
        partner__status=PartnerStatus.ACTIVE,
    )
    for program_id in program_ids:
        for activity in (hooks.EARNED, hooks.CLAIMED, hooks.REDEEMED):
            did = hooks.members_who(activity, program_id=program_id, since=since)
            if did is not None:
                members = members.exclude(pk__in=did)
    nudged = Delivery.objects.filter(kind=Kind.NUDGE_INACTIVE, queued_at__gte=since).values("member_id")
    return members.exclude(pk__in=nudged).exclude(pk__in=capped_members()).order_by("pk").values_list("pk", flat=True)


def nudge_inactive(*, days: int = INACTIVE_DAYS, now: datetime | None = None) -> int:
    """Nudge the inactive members (`inactive_members`); returns how many notices were made. The source key names
    the day, so a second run the same day stores nothing more; on later days the nudged are left out."""
    now = now or timezone.now()
    key = f"nudge:inactive:{timezone.localdate(now).isoformat()}"
    made = 0
    for member_ids in batched(list(inactive_members(days=days, now=now)), BATCH):
        notify_many(
            kind=Kind.NUDGE_INACTIVE,
            notices=[Notice(member_id, key, {"days": days}) for member_id in member_ids],
            link_path=reverse("home"),
        )
        made += len(member_ids)
    return made
