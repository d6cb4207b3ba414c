"""Writes for partners, members and invitations. Views, admin actions, commands and tasks call these."""

import hashlib
import secrets
from datetime import date, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from loyalty.common.errors import ApplicationError

from . import hooks, tasks
from .constants import (
    CURRENT_MEMBER_STATUSES,
    MEMBER_TRANSITIONS,
    PARTNER_TRANSITIONS,
    MemberStatus,
    PartnerStatus,
    PayoutPolicy,
)
from .lock_objects import member_lock, partner_lock
from .models import Invitation, Member, MemberStatusChange, Partner, PartnerStatusChange, Region, Role, User
from .visibility import can_manage_team


def _validate(obj) -> None:
    try:
        obj.full_clean()
    except ValidationError as exc:
        raise ApplicationError("; ".join(exc.messages), code="invalid") from exc


# Partners -------------------------------------------------------------------------------------------


@transaction.atomic
def partner_create(
    *,
    name: str,
    legal_id: str,
    kind: str,
    region: Region,
    parent: Partner | None = None,
    status: str = PartnerStatus.PROSPECT,
    account_manager: User | None = None,
    joined_on: date | None = None,
    payout_policy: str = PayoutPolicy.INDIVIDUAL,
) -> Partner:
    legal_id = legal_id.strip().upper()
    existing = Partner.objects.filter(legal_id=legal_id).first()
    if existing:
        raise ApplicationError(f"Legal id {legal_id} already belongs to {existing.name}.", code="duplicate_legal_id")
    partner = Partner(
        name=name.strip(),
        legal_id=legal_id,
        kind=kind,
        region=region,
        parent=parent,
        status=status,
        account_manager=account_manager,
        joined_on=joined_on,
        payout_policy=payout_policy,
    )
    _validate(partner)
    partner.save()
    return partner


@transaction.atomic
def partner_transition(*, partner: Partner, to: str, actor: User | None, reason: str = "") -> Partner:
    locked = partner_lock(partner.pk)
    if to not in PARTNER_TRANSITIONS[locked.status]:
        raise ApplicationError(
            f"{locked.name} is {locked.get_status_display().lower()} and cannot become "
            f"{PartnerStatus(to).label.lower()}.",
            code="bad_transition",
        )
    from_status = locked.status
    locked.status = to
    update_fields = ["status", "updated_at"]
    if to == PartnerStatus.ACTIVE and locked.joined_on is None:
        locked.joined_on = timezone.localdate()
        update_fields.append("joined_on")
    locked.save(update_fields=update_fields)
    PartnerStatusChange.objects.create(
        partner=locked, from_status=from_status, to_status=to, actor=actor, reason=reason
    )
    partner.status, partner.joined_on = locked.status, locked.joined_on
    return locked


@transaction.atomic
def partner_assign_account_manager(*, partner: Partner, account_manager: User | None) -> Partner:
    if account_manager is not None and not account_manager.is_account_manager:
        raise ApplicationError(f"{account_manager} is not an account manager.", code="not_account_manager")
    Partner.objects.filter(pk=partner.pk).update(account_manager=account_manager, updated_at=timezone.now())
    partner.account_manager = account_manager
    return partner


# Members --------------------------------------------------------------------------------------------


def _member_move(*, member: Member, to: str, actor: User | None, reason: str = "") -> Member:
    """Lock the membership, check the move against MEMBER_TRANSITIONS, save it and record it."""
    locked = member_lock(member.pk)
    if to not in MEMBER_TRANSITIONS[locked.status]:
        raise ApplicationError(
            f"{locked.user.email} is {locked.get_status_display().lower()} and cannot become "
            f"{MemberStatus(to).label.lower()}.",
            code="bad_transition",
        )
    from_status = locked.status
    locked.status = to
    now = timezone.now()
    if to == MemberStatus.ACTIVE:
        locked.joined_at = now
    if to == MemberStatus.LEFT:
        locked.left_at = now
    try:
        with transaction.atomic():
            locked.save(update_fields=["status", "joined_at", "left_at", "updated_at"])
    except IntegrityError as exc:
        raise ApplicationError(
            f"{locked.user.email} already belongs to another partner's team. They must leave it first.",
            code="already_member_elsewhere",
        ) from exc
    MemberStatusChange.objects.create(member=locked, from_status=from_status, to_status=to, actor=actor, reason=reason)
    if to == MemberStatus.LEFT and from_status in CURRENT_MEMBER_STATUSES:
        for handler in hooks.member_left_handlers:
            handler(member=locked, actor=actor)
    member.status, member.joined_at, member.left_at = locked.status, locked.joined_at, locked.left_at
    return locked


def _require_team_manager(actor: User, partner: Partner) -> None:
    if not can_manage_team(actor, partner):
        raise ApplicationError("Only the partner's owner or a program manager can do this.", code="forbidden")


@transaction.atomic
def member_approve(*, member: Member, actor: User) -> Member:
    _require_team_manager(actor, member.partner)
    if not member.can_approve():
        raise ApplicationError(
            f"{member.user.email} is {member.get_status_display().lower()}; only people waiting for approval "
            "can be approved.",
            code="bad_transition",
        )
    return _member_move(member=member, to=MemberStatus.ACTIVE, actor=actor)


@transaction.atomic
def member_deactivate(*, member: Member, actor: User, reason: str = "") -> Member:
    _require_team_manager(actor, member.partner)
    if member.user_id == actor.pk:
        raise ApplicationError("You cannot deactivate yourself.", code="self_deactivate")
    if member.status == MemberStatus.INVITED:
        raise ApplicationError("This person has not joined yet; cancel the invitation instead.", code="bad_transition")
    return _member_move(member=member, to=MemberStatus.LEFT, actor=actor, reason=reason)


@transaction.atomic
def member_update_profile(
    *, member: Member, full_name: str, phone: str, language: str, preferred_channel: str
) -> Member:
    member.phone, member.language, member.preferred_channel = phone.strip(), language, preferred_channel
    _validate(member)
    member.save(update_fields=["phone", "language", "preferred_channel", "updated_at"])
    if full_name.strip() != member.user.full_name:
        member.user.full_name = full_name.strip()
        member.user.save(update_fields=["full_name"])
    return member


# Invitations ----------------------------------------------------------------------------------------


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _issue_link(*, member: Member, invited_by: User | None) -> Invitation:
    """Replace any open link of this membership with a fresh one and e-mail it after commit."""
    now = timezone.now()
    Invitation.objects.filter(member=member, accepted_at=None, revoked_at=None).update(revoked_at=now)
    token = secrets.token_urlsafe(32)
    invitation = Invitation.objects.create(
        member=member,
        token_hash=_token_hash(token),
        invited_by=invited_by,
        expires_at=now + timedelta(days=settings.INVITATION_VALID_DAYS),
    )
    transaction.on_commit(lambda: tasks.send_invitation_email.delay(invitation.pk, token))
    invitation.token = token  # only the caller that issued it ever sees the raw token
    return invitation


@transaction.atomic
def invitation_send(*, partner: Partner, email: str, role: Role, invited_by: User) -> Invitation:
    """Invite a person to join a partner in a role. A repeated invitation sends a fresh link."""
    _require_team_manager(invited_by, partner)
    email = User.objects.normalize_email(email.strip()).lower()
    if not email or "@" not in email:
        raise ApplicationError("Enter a valid e-mail address.", code="invalid_email")
    partner = partner_lock(partner.pk)
    if partner.status == PartnerStatus.CLOSED:
        raise ApplicationError(f"{partner.name} is closed; nobody can be invited.", code="partner_closed")
    user, _ = User.objects.get_or_create(email=email, defaults={"password": "!"})
    member = Member.objects.filter(user=user, partner=partner).exclude(status=MemberStatus.LEFT).first()
    if member and member.status in CURRENT_MEMBER_STATUSES:
        raise ApplicationError(
            f"{email} is already on the team of {partner.name} ({member.get_status_display().lower()}).",
            code="already_member",
        )
    if member is None:
        member = Member(user=user, partner=partner, role=role, status=MemberStatus.INVITED)
        _validate(member)
        member.save()
        MemberStatusChange.objects.create(
            member=member, from_status=MemberStatus.INVITED, to_status=MemberStatus.INVITED, actor=invited_by
        )
    elif member.role_id != role.pk:
        member.role = role
        member.save(update_fields=["role", "updated_at"])
    return _issue_link(member=member, invited_by=invited_by)


@transaction.atomic
def invitation_resend(*, member: Member, actor: User) -> Invitation:
    _require_team_manager(actor, member.partner)
    if member.status != MemberStatus.INVITED:
        raise ApplicationError(_not_invited_message(member), code="not_invited")
    return _issue_link(member=member, invited_by=actor)


@transaction.atomic
def invitation_cancel(*, member: Member, actor: User) -> Member:
    _require_team_manager(actor, member.partner)
    if member.status != MemberStatus.INVITED:
        raise ApplicationError(_not_invited_message(member), code="not_invited")
    Invitation.objects.filter(member=member, accepted_at=None, revoked_at=None).update(revoked_at=timezone.now())
    return _member_move(member=member, to=MemberStatus.LEFT, actor=actor, reason="Invitation cancelled")


def _not_invited_message(member: Member) -> str:
    if member.status == MemberStatus.LEFT:
        return f"The invitation of {member.user.email} was cancelled or they have left; send a new invitation."
    return f"{member.user.email} has already accepted the invitation."


def invitation_get_by_token(token: str) -> Invitation:
    """The usable invitation behind a link, or an ApplicationError that says what is wrong with it."""
    invitation = (
        Invitation.objects.select_related("member__user", "member__partner", "member__role", "invited_by")
        .filter(token_hash=_token_hash(token))
        .first()
    )
    if invitation is None:
        raise ApplicationError("This invitation link is not valid. Check that you copied all of it.", code="unknown")
    if invitation.accepted_at is not None:
        raise ApplicationError("This invitation has already been used. Sign in instead.", code="used")
    if invitation.revoked_at is not None or invitation.member.status != MemberStatus.INVITED:
        raise ApplicationError(
            "This invitation link has been replaced or cancelled. Use the newest e-mail, or ask for a new one.",
            code="revoked",
        )
    if invitation.expires_at <= timezone.now():
        raise ApplicationError(
            f"This invitation expired on {timezone.localtime(invitation.expires_at):%d %b %Y}. "
            "Ask whoever invited you to send a new one.",
            code="expired",
        )
    return invitation


@transaction.atomic
def invitation_accept(*, token: str, user: User) -> Member:
    """Join the partner. Invitations from a program manager activate at once; a partner owner's
    invitations wait for the owner's approval."""
    invitation = invitation_get_by_token(token)
    invitation = Invitation.objects.select_for_update().get(pk=invitation.pk)
    if invitation.accepted_at is not None:
        raise ApplicationError("This invitation has already been used. Sign in instead.", code="used")
    member = invitation.member
    if member.user_id != user.pk:
        raise ApplicationError(
            f"This invitation is for {member.user.email}. Sign out and open the link again.",
            code="wrong_user",
        )
    inviter = invitation.invited_by
    to = MemberStatus.ACTIVE if inviter is not None and inviter.is_program_manager else MemberStatus.PENDING_APPROVAL
    member = _member_move(member=member, to=to, actor=user, reason="Invitation accepted")
    invitation.accepted_at = timezone.now()
    invitation.save(update_fields=["accepted_at", "updated_at"])
    return member
