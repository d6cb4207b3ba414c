"""Writes for partners, members and invitations. Views, admin actions, API views, commands and tasks call these.

Memberships publish domain events (loyalty.common.events) as they move: "member.joined" when one becomes active,
"member.left" when an active one ends. An invitation cancelled, or a person let go before they were approved,
publishes nothing: they never joined."""

import hashlib
import logging
import secrets
from datetime import date, timedelta

from allauth.account.models import EmailAddress
from django.conf import settings
from django.contrib.auth import password_validation
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from loyalty.common import events
from loyalty.common.errors import ApplicationError
from loyalty.common.keys import matching_key
from loyalty.common.statuses import require_transition
from partners import hooks
from partners.constants import (
    CURRENT_MEMBER_STATUSES,
    MEMBER_TRANSITIONS,
    PARTNER_START_STATUSES,
    PARTNER_TRANSITIONS,
    MemberStatus,
    PartnerStatus,
    PayoutPolicy,
)
from partners.error_codes import ErrorCode
from partners.lock_objects import invitation_lock, member_lock, partner_lock
from partners.models import Invitation, Member, MemberStatusChange, Partner, PartnerStatusChange, Region, Role, User
from partners.visibility import can_manage_team

logger = logging.getLogger(__name__)


def _validate(obj) -> None:
    try:
        obj.full_clean()
    except ValidationError as exc:
        fields = [name for name in getattr(exc, "error_dict", {}) if name != NON_FIELD_ERRORS]
        extra = {"field": fields[0]} if fields else {}
        raise ApplicationError("; ".join(exc.messages), code=ErrorCode.INVALID, extra=extra) from exc


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
    external_id: str = "",
) -> Partner:
    legal_id = legal_id.strip().upper()
    existing = Partner.objects.filter(legal_id_key=matching_key(legal_id)).first()
    if existing:
        raise ApplicationError(
            f"Legal id {legal_id} already belongs to {existing.name}.",
            code=ErrorCode.DUPLICATE_LEGAL_ID,
            extra={"field": "legal_id"},
        )
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
        external_id=external_id,
    )
    _validate(partner)
    partner.save()
    return partner


@transaction.atomic
def partner_transition(*, partner: Partner, to: str, actor: User | None, reason: str = "") -> Partner:
    locked = partner_lock(partner.pk)
    require_transition(locked, to, PARTNER_TRANSITIONS, PartnerStatus, name=locked.name, code=ErrorCode.BAD_TRANSITION)
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
        raise ApplicationError(
            f"{account_manager} is not an account manager.",
            code=ErrorCode.NOT_ACCOUNT_MANAGER,
            extra={"field": "account_manager"},
        )
    Partner.objects.filter(pk=partner.pk).update(account_manager=account_manager, updated_at=timezone.now())
    partner.account_manager = account_manager
    return partner


@transaction.atomic
def partner_set_payout_policy(*, partner: Partner, policy: str, actor: User) -> Partner:
    """The partner's owner (or a program manager) decides whether staff bonuses are paid to each employee
    or pooled to the company account. Choosing the current policy again changes nothing."""
    _require_team_manager(actor, partner)
    if policy not in PayoutPolicy.values:
        choices = " or ".join(f"“{label.lower()}”" for label in PayoutPolicy.labels)
        raise ApplicationError(f"Choose how staff bonuses are paid: {choices}.", code=ErrorCode.INVALID_POLICY)
    locked = partner_lock(partner.pk)
    if locked.payout_policy != policy:
        from_policy = locked.payout_policy
        locked.payout_policy = policy
        locked.save(update_fields=["payout_policy", "updated_at"])
        logger.info(
            "Payout policy of partner %s changed from %s to %s by user %s", locked.pk, from_policy, policy, actor.pk
        )
    partner.payout_policy, partner.updated_at = locked.payout_policy, locked.updated_at
    return locked


# What partner_update may change; the status moves only through partner_transition, which records it.
PARTNER_EDITABLE_FIELDS = (
    "name",
    "legal_id",
    "kind",
    "parent",
    "region",
    "joined_on",
    "payout_policy",
    "account_manager",
)


@transaction.atomic
def partner_update(*, partner: Partner, actor: User, **fields) -> Partner:
    """Change a partner's details (program managers only). Only the given fields that differ are written,
    under the partner's lock, after the checks of partner_create; the payout policy goes through
    partner_set_payout_policy. Returns the saved partner and copies the result onto `partner`."""
    unknown = sorted(set(fields) - set(PARTNER_EDITABLE_FIELDS))
    if unknown:
        raise TypeError(
            f"partner_update() cannot change {', '.join(unknown)}; statuses move with partner_transition()."
        )
    if not getattr(actor, "is_program_manager", False):
        raise ApplicationError("Only program managers can edit a partner's details.", code=ErrorCode.FORBIDDEN)
    locked = partner_lock(partner.pk)
    policy = fields.pop("payout_policy", None)
    if "name" in fields:
        fields["name"] = fields["name"].strip()
    if "legal_id" in fields:
        fields["legal_id"] = legal_id = fields["legal_id"].strip().upper()
        clash = Partner.objects.filter(legal_id_key=matching_key(legal_id)).exclude(pk=locked.pk).only("name").first()
        if clash is not None:
            raise ApplicationError(
                f"Legal id {legal_id} already belongs to {clash.name}.",
                code=ErrorCode.DUPLICATE_LEGAL_ID,
                extra={"field": "legal_id"},
            )
    parent, manager = fields.get("parent"), fields.get("account_manager")
    if parent is not None and parent.pk == locked.pk:
        raise ApplicationError(
            "A partner cannot be its own parent distributor.", code=ErrorCode.OWN_PARENT, extra={"field": "parent"}
        )
    if manager is not None and not manager.is_account_manager:
        raise ApplicationError(
            f"{manager} is not an account manager.",
            code=ErrorCode.NOT_ACCOUNT_MANAGER,
            extra={"field": "account_manager"},
        )
    changed = [name for name, value in fields.items() if _field_value(locked, name) != _field_value(value)]
    for name in changed:
        setattr(locked, name, fields[name])
    if changed:
        _validate(locked)
        try:
            with transaction.atomic():
                keys = ["legal_id_key"] if "legal_id" in changed else []
                locked.save(update_fields=[*changed, *keys, "updated_at"])
        except IntegrityError as exc:  # a legal id taken by another partner since the check above
            raise ApplicationError(
                f"Legal id {locked.legal_id} already belongs to another partner.",
                ErrorCode.DUPLICATE_LEGAL_ID,
                extra={"field": "legal_id"},
            ) from exc
    if policy is not None:
        partner_set_payout_policy(partner=locked, policy=policy, actor=actor)
    for name in (*PARTNER_EDITABLE_FIELDS, "updated_at"):
        setattr(partner, name, getattr(locked, name))
    return locked


def _field_value(obj, name: str | None = None):
    """A field's value to compare: the primary key for a related object."""
    value = obj if name is None else getattr(obj, Partner._meta.get_field(name).attname)
    return getattr(value, "pk", value)


# What partner_upsert may be told besides the required fields; a field it is not told keeps its value.
PARTNER_UPSERT_OPTIONAL_FIELDS = ("parent", "status", "account_manager", "payout_policy")


@transaction.atomic
def partner_upsert(
    *,
    external_id: str,
    actor: User,
    name: str,
    legal_id: str,
    kind: str,
    region: Region,
    only_dealers_of: Partner | None = None,
    reason: str = "",
    **optional,
) -> tuple[Partner, bool]:
    """Create or update the partner a CRM knows by `external_id` (program managers only, as in the back office):
    (the partner, True when it was created). `optional` may hold PARTNER_UPSERT_OPTIONAL_FIELDS (parent and
    account_manager may be None); a field not given keeps its value (a new partner: a prospect, no parent or account
    manager, paid individually).

    - A partner with that external id gets the details through partner_update (only what differs is written) and its
      status through partner_transition (recorded with `reason`); the same details again change nothing.
    - A partner without an external id whose legal id matches is adopted: it gets the external id. A legal id that
      belongs to a partner under another external id is refused (duplicate_legal_id, field legal_id): there is never
      a second partner with one legal id.
    - Otherwise it is created through partner_create, as a prospect or active (joined today).
    - `only_dealers_of` (a distributor's own system): only that distributor's dealers may be created or changed, so
      the parent must be that distributor, before and after; anything else is refused with code forbidden.
    """
    unknown = sorted(set(optional) - set(PARTNER_UPSERT_OPTIONAL_FIELDS))
    if unknown:
        raise TypeError(f"partner_upsert() got unexpected fields: {', '.join(unknown)}")
    if not getattr(actor, "is_program_manager", False):
        raise ApplicationError("Only program managers can create or edit partners.", code=ErrorCode.FORBIDDEN)
    legal_id = legal_id.strip().upper()
    existing = _partner_for_upsert(external_id=external_id, legal_id=legal_id)
    if existing is None:
        try:
            with transaction.atomic():
                partner = _partner_upsert_create(
                    external_id=external_id, name=name, legal_id=legal_id, kind=kind, region=region,
                    only_dealers_of=only_dealers_of, **optional,
                )  # fmt: skip
            return partner, True
        except (IntegrityError, ApplicationError) as exc:
            # Refused, or the same partner just made by a request that ran at the same time: then update it.
            existing = _partner_for_upsert(external_id=external_id, legal_id=legal_id)
            if existing is None and isinstance(exc, ApplicationError):
                raise
            if existing is None:
                raise ApplicationError(
                    f"Legal id {legal_id} was just given to another partner.",
                    code=ErrorCode.DUPLICATE_LEGAL_ID,
                    extra={"field": "legal_id"},
                ) from None
    fields = {"name": name, "legal_id": legal_id, "kind": kind, "region": region, **optional}
    status = fields.pop("status", None)
    if only_dealers_of is not None:
        _require_dealer_of(only_dealers_of, existing.parent_id, what=f"{existing.name} is not")
        _require_dealer_of(only_dealers_of, _field_value(fields.get("parent", existing.parent_id)))
    if existing.external_id != external_id:  # adopted by its legal id
        try:
            with transaction.atomic():
                Partner.objects.filter(pk=existing.pk).update(external_id=external_id, updated_at=timezone.now())
        except IntegrityError:  # another partner got this external id at the same moment
            raise ApplicationError(
                f"External id {external_id} was just given to another partner.",
                code=ErrorCode.INVALID,
                extra={"field": "external_id"},
            ) from None
        existing.external_id = external_id
    partner = partner_update(partner=existing, actor=actor, **fields)
    if status is not None and status != partner.status:
        partner = partner_transition(partner=partner, to=status, actor=actor, reason=reason)
    return partner, False


def _partner_for_upsert(*, external_id: str, legal_id: str) -> Partner | None:
    """The partner with this external id, else one without an external id with this legal id (to adopt)."""
    found = Partner.objects.filter(external_id=external_id).first()
    if found is None:
        found = Partner.objects.filter(legal_id_key=matching_key(legal_id), external_id="").first()
    return found


def _partner_upsert_create(
    *,
    external_id: str,
    name: str,
    legal_id: str,
    kind: str,
    region: Region,
    only_dealers_of: Partner | None,
    parent: Partner | None = None,
    status: str = PartnerStatus.PROSPECT,
    account_manager: User | None = None,
    payout_policy: str = PayoutPolicy.INDIVIDUAL,
) -> Partner:
    if only_dealers_of is not None:
        _require_dealer_of(only_dealers_of, getattr(parent, "pk", None))
    if status not in PARTNER_START_STATUSES:
        raise ApplicationError(
            f"A new partner starts as a prospect or active, not {PartnerStatus(status).label.lower()}.",
            code=ErrorCode.BAD_TRANSITION,
            extra={"field": "status"},
        )
    if account_manager is not None and not account_manager.is_account_manager:
        raise ApplicationError(
            f"{account_manager} is not an account manager.",
            code=ErrorCode.NOT_ACCOUNT_MANAGER,
            extra={"field": "account_manager"},
        )
    return partner_create(
        name=name, legal_id=legal_id, kind=kind, region=region, parent=parent, status=status,
        account_manager=account_manager, payout_policy=payout_policy, external_id=external_id,
        joined_on=timezone.localdate() if status == PartnerStatus.ACTIVE else None,
    )  # fmt: skip


def _require_dealer_of(distributor: Partner, parent_id: int | None, *, what: str = "The partner would not be") -> None:
    if parent_id != distributor.pk:
        raise ApplicationError(
            f"{what} a dealer of {distributor.name}: this client may only create and update that distributor's "
            "dealers (parent: the distributor).",
            code=ErrorCode.FORBIDDEN,
            extra={"field": "parent"},
        )


# Members --------------------------------------------------------------------------------------------


def _member_move(*, member: Member, to: str, actor: User | None, reason: str = "") -> Member:
    """Lock the membership, check the move against MEMBER_TRANSITIONS, save it and record it."""
    locked = member_lock(member.pk)
    require_transition(
        locked, to, MEMBER_TRANSITIONS, MemberStatus, name=locked.user.email, code=ErrorCode.BAD_TRANSITION
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
            code=ErrorCode.ALREADY_MEMBER_ELSEWHERE,
        ) from exc
    MemberStatusChange.objects.create(member=locked, from_status=from_status, to_status=to, actor=actor, reason=reason)
    if to == MemberStatus.LEFT and from_status in CURRENT_MEMBER_STATUSES:
        for handler in hooks.member_left_handlers:
            handler(member=locked, actor=actor)
    if to == MemberStatus.ACTIVE or (to == MemberStatus.LEFT and from_status == MemberStatus.ACTIVE):
        events.publish(
            "member.joined" if to == MemberStatus.ACTIVE else "member.left",
            program_id=None,
            data={"member_id": locked.pk, "partner_id": locked.partner_id, "role": locked.role.code},
        )
    member.status, member.joined_at, member.left_at = locked.status, locked.joined_at, locked.left_at
    return locked


def _require_team_manager(actor: User, partner: Partner) -> None:
    if not can_manage_team(actor, partner):
        raise ApplicationError("Only the partner's owner or a program manager can do this.", code=ErrorCode.FORBIDDEN)


@transaction.atomic
def member_approve(*, member: Member, actor: User) -> Member:
    _require_team_manager(actor, member.partner)
    if not member.can_approve():
        raise ApplicationError(
            f"{member.user.email} is {member.get_status_display().lower()}; only people waiting for approval "
            "can be approved.",
            code=ErrorCode.BAD_TRANSITION,
        )
    moved = _member_move(member=member, to=MemberStatus.ACTIVE, actor=actor)
    for handler in hooks.member_approved_handlers:
        handler(member=moved, actor=actor)
    return moved


@transaction.atomic
def member_deactivate(*, member: Member, actor: User, reason: str = "") -> Member:
    _require_team_manager(actor, member.partner)
    if member.user_id == actor.pk:
        raise ApplicationError("You cannot deactivate yourself.", code=ErrorCode.SELF_DEACTIVATE)
    if member.status == MemberStatus.INVITED:
        raise ApplicationError(
            "This person has not joined yet; cancel the invitation instead.", code=ErrorCode.BAD_TRANSITION
        )
    return _member_move(member=member, to=MemberStatus.LEFT, actor=actor, reason=reason)


@transaction.atomic
def member_update_profile(
    *,
    member: Member,
    full_name: str,
    phone: str,
    language: str,
    preferred_channel: str,
    time_zone: str = "",
    show_name_on_leaderboards: bool | None = None,
) -> Member:
    """Save what a person says about themselves. `show_name_on_leaderboards`: their consent to others seeing their
    name on leaderboards (None: unchanged)."""
    member.phone, member.language, member.preferred_channel = phone.strip(), language, preferred_channel
    member.time_zone = time_zone
    if show_name_on_leaderboards is not None:
        member.show_name_on_leaderboards = show_name_on_leaderboards
    _validate(member)
    member.save(
        update_fields=["phone", "language", "preferred_channel", "time_zone", "show_name_on_leaderboards", "updated_at"]
    )
    if full_name.strip() != member.user.full_name:
        member.user.full_name = full_name.strip()
        member.user.save(update_fields=["full_name"])
    return member


@transaction.atomic
def member_change_role(*, member: Member, role: Role, actor: User) -> Member:
    """Give a person another role at their partner: its owners and program managers may. Nobody takes away
    their own owner role (they would lose the team), and a person who has left keeps the role they had."""
    _require_team_manager(actor, member.partner)
    locked = member_lock(member.pk)
    if locked.status == MemberStatus.LEFT:
        raise ApplicationError(
            f"{locked.user.email} has left {locked.partner.name}; their role no longer changes.", code=ErrorCode.LEFT
        )
    if locked.user_id == actor.pk and locked.role.is_owner and not role.is_owner:
        raise ApplicationError(
            "You cannot give up your own owner role; ask another owner or a program manager.",
            code=ErrorCode.SELF_DEMOTE,
        )
    if locked.role_id != role.pk:
        from_role = locked.role
        locked.role = role
        locked.save(update_fields=["role", "updated_at"])
        logger.info(
            "Role of member %s changed from %s to %s by user %s", locked.pk, from_role.code, role.code, actor.pk
        )
    member.role, member.updated_at = locked.role, locked.updated_at
    return locked


@transaction.atomic
def member_upsert(
    *,
    external_id: str,
    partner: Partner,
    email: str,
    role: Role,
    actor: User,
    full_name: str | None = None,
    phone: str | None = None,
    language: str | None = None,
) -> tuple[Member, bool]:
    """Create or update the membership a CRM knows by `external_id`: (the membership, True when it was created).
    None for `full_name`, `phone` or `language` keeps what the membership has (a new one: the defaults).

    - A new one goes through invitation_send (the person gets the invitation e-mail and joins as on the site) and
      then gets the external id, phone and language. An open membership of the person at the partner without an
      external id is adopted instead, and nobody is invited again.
    - An existing one stays the same person's at the same partner (another e-mail address or partner is refused,
      fields email and partner); its role changes through member_change_role, its phone and language through
      member_update_profile, only when they differ, so the same details again change and send nothing.
    - `full_name` names the person until they sign up; from then on their name is their own (their profile).
    The partner's row is locked first, so two requests for one membership take turns.
    """
    email = User.objects.normalize_email(email.strip()).lower()
    partner_lock(partner.pk)
    member = Member.objects.select_related("user", "partner", "role").filter(external_id=external_id).first()
    created = False
    if member is None:
        member = (
            Member.objects.select_related("user", "partner", "role")
            .filter(user__email__iexact=email, partner=partner)
            .exclude(status=MemberStatus.LEFT)
            .first()
        )
        if member is not None and member.external_id:
            raise ApplicationError(
                f"{email} already has a membership of {partner.name}, under external id {member.external_id}.",
                code=ErrorCode.ALREADY_MEMBER,
                extra={"field": "email"},
            )
        if member is None:
            member = invitation_send(partner=partner, email=email, role=role, invited_by=actor).member
            created = True
        member.external_id = external_id
        try:
            with transaction.atomic():
                member.save(update_fields=["external_id", "updated_at"])
        except IntegrityError:  # another membership got this external id at the same moment
            raise ApplicationError(
                f"External id {external_id} was just given to another membership.",
                code=ErrorCode.INVALID,
                extra={"field": "external_id"},
            ) from None
    else:
        if member.partner_id != partner.pk:
            raise ApplicationError(
                f"Membership {external_id} is of {member.partner.name}; a membership never moves to another partner. "
                "Deactivate it and send the new one under a new external id.",
                code=ErrorCode.INVALID,
                extra={"field": "partner"},
            )
        if member.user.email.lower() != email:
            raise ApplicationError(
                f"Membership {external_id} is {member.user.email}'s; a membership never passes to another person.",
                code=ErrorCode.INVALID,
                extra={"field": "email"},
            )
    if member.role_id != role.pk and not created:
        member = member_change_role(member=member, role=role, actor=actor)
    user = member.user
    name = user.full_name
    if full_name is not None and full_name.strip() != name and not user.has_usable_password():
        name = full_name.strip()
    new_phone = member.phone if phone is None else phone.strip()
    new_language = member.language if language is None else language
    if (name, new_phone, new_language) != (user.full_name, member.phone, member.language):
        member_update_profile(
            member=member,
            full_name=name,
            phone=new_phone,
            language=new_language,
            preferred_channel=member.preferred_channel,
            time_zone=member.time_zone,
        )
    return member, created


# Invitations ----------------------------------------------------------------------------------------


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _issue_link(*, member: Member, invited_by: User | None) -> Invitation:
    """Replace any open link of this membership with a fresh one and send it: the invitation-issued handlers
    (communications stores the message in this transaction and sends it after commit)."""
    now = timezone.now()
    Invitation.objects.filter(member=member, accepted_at=None, revoked_at=None).update(revoked_at=now)
    token = secrets.token_urlsafe(32)
    invitation = Invitation.objects.create(
        member=member,
        token_hash=_token_hash(token),
        invited_by=invited_by,
        expires_at=now + timedelta(days=settings.INVITATION_VALID_DAYS),
    )
    for handler in hooks.invitation_issued_handlers:
        handler(invitation=invitation, token=token)
    invitation.token = token  # only the caller that issued it ever sees the raw token
    return invitation


def _refuse_staff(user: User) -> None:
    """The manufacturer's staff decide on partners' claims and orders: they never join a partner's team."""
    if user.staff_role or user.is_staff or user.is_superuser:
        raise ApplicationError(
            _("%(email)s belongs to the program's staff, who cannot join a partner's team.") % {"email": user.email},
            code=ErrorCode.STAFF_CANNOT_JOIN,
            extra={"field": "email"},
        )


@transaction.atomic
def invitation_send(*, partner: Partner, email: str, role: Role, invited_by: User) -> Invitation:
    """Invite a person to join a partner in a role. A repeated invitation sends a fresh link."""
    _require_team_manager(invited_by, partner)
    email = User.objects.normalize_email(email.strip()).lower()
    if not email or "@" not in email:
        raise ApplicationError("Enter a valid e-mail address.", code=ErrorCode.INVALID_EMAIL, extra={"field": "email"})
    partner = partner_lock(partner.pk)
    if partner.status == PartnerStatus.CLOSED:
        raise ApplicationError(
            f"{partner.name} is closed; nobody can be invited.",
            code=ErrorCode.PARTNER_CLOSED,
            extra={"field": "partner"},
        )
    user, _created = User.objects.get_or_create(email=email, defaults={"password": "!"})
    _refuse_staff(user)
    member = Member.objects.filter(user=user, partner=partner).exclude(status=MemberStatus.LEFT).first()
    if member and member.status in CURRENT_MEMBER_STATUSES:
        raise ApplicationError(
            f"{email} is already on the team of {partner.name} ({member.get_status_display().lower()}).",
            code=ErrorCode.ALREADY_MEMBER,
            extra={"field": "email"},
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
    _require_open_invitation(member, actor)
    return _issue_link(member=member, invited_by=actor)


@transaction.atomic
def invitation_cancel(*, member: Member, actor: User) -> Member:
    _require_open_invitation(member, actor)
    Invitation.objects.filter(member=member, accepted_at=None, revoked_at=None).update(revoked_at=timezone.now())
    return _member_move(member=member, to=MemberStatus.LEFT, actor=actor, reason="Invitation cancelled")


def _require_open_invitation(member: Member, actor: User) -> None:
    """The actor manages the member's team, and the member is still invited (not joined, not gone)."""
    _require_team_manager(actor, member.partner)
    if member.status == MemberStatus.INVITED:
        return
    if member.status == MemberStatus.LEFT:
        message = f"The invitation of {member.user.email} was cancelled or they have left; send a new invitation."
    else:
        message = f"{member.user.email} has already accepted the invitation."
    raise ApplicationError(message, code=ErrorCode.NOT_INVITED)


def invitation_get_by_token(token: str) -> Invitation:
    """The usable invitation behind a link, or an ApplicationError that says what is wrong with it."""
    invitation = (
        Invitation.objects.select_related("member__user", "member__partner", "member__role", "invited_by")
        .filter(token_hash=_token_hash(token))
        .first()
    )
    if invitation is None:
        raise ApplicationError(
            "This invitation link is not valid. Check that you copied all of it.", code=ErrorCode.UNKNOWN
        )
    if invitation.accepted_at is not None:
        raise ApplicationError("This invitation has already been used. Sign in instead.", code=ErrorCode.USED)
    if invitation.revoked_at is not None or invitation.member.status != MemberStatus.INVITED:
        raise ApplicationError(
            "This invitation link has been replaced or cancelled. Use the newest e-mail, or ask for a new one.",
            code=ErrorCode.REVOKED,
        )
    if invitation.expires_at <= timezone.now():
        raise ApplicationError(
            f"This invitation expired on {timezone.localtime(invitation.expires_at):%d %b %Y}. "
            "Ask whoever invited you to send a new one.",
            code=ErrorCode.EXPIRED,
        )
    return invitation


@transaction.atomic
def invitation_accept(*, token: str, user: User) -> Member:
    """Join the partner. Invitations from a program manager activate at once; a partner owner's
    invitations wait for the owner's approval."""
    invitation = invitation_get_by_token(token)
    invitation = invitation_lock(invitation.pk)
    if invitation.accepted_at is not None:
        raise ApplicationError("This invitation has already been used. Sign in instead.", code=ErrorCode.USED)
    member = invitation.member
    _refuse_staff(user)
    if member.user_id != user.pk:
        raise ApplicationError(
            f"This invitation is for {member.user.email}. Sign out and open the link again.",
            code=ErrorCode.WRONG_USER,
        )
    inviter = invitation.invited_by
    to = MemberStatus.ACTIVE if inviter is not None and inviter.is_program_manager else MemberStatus.PENDING_APPROVAL
    member = _member_move(member=member, to=to, actor=user, reason="Invitation accepted")
    invitation.accepted_at = timezone.now()
    invitation.save(update_fields=["accepted_at", "updated_at"])
    return member


def _verify_primary_email(user: User) -> None:
    """Mark the user's login address as verified and primary in allauth (and no other address primary)."""
    EmailAddress.objects.filter(user=user).exclude(email__iexact=user.email).update(primary=False)
    address = EmailAddress.objects.filter(user=user, email__iexact=user.email).first()
    if address is None:
        EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)
    elif not (address.verified and address.primary):
        address.verified, address.primary = True, True
        address.save(update_fields=["verified", "primary"])


@transaction.atomic
def invitation_register(*, token: str, full_name: str, password: str) -> Member:
    """A person without an account yet joins through their invitation: they choose their name and password,
    their e-mail address counts as verified (the e-mailed link reached them there), and the invitation is
    accepted (invitation_accept). All or nothing: when any step is refused, nothing of it is kept.

    Refusals are ApplicationErrors: the codes of invitation_get_by_token for an unusable link, `has_account`,
    `invalid_name`, `invalid_password` (extra["messages"] lists what the password validators said), and those
    of invitation_accept.
    """
    invitation = invitation_get_by_token(token)
    # Wait for a sign-up through the same link running at the same time, then judge the link as it is now.
    invitation_lock(invitation.pk)
    invitation = invitation_get_by_token(token)
    user = invitation.member.user
    if user.has_usable_password():
        raise ApplicationError(
            f"There is already an account for {user.email}. Sign in with it to accept the invitation.",
            code=ErrorCode.HAS_ACCOUNT,
        )
    name = full_name.strip()
    max_length = User._meta.get_field("full_name").max_length
    if not name or len(name) > max_length:
        message = "Enter your name." if not name else f"Enter a name of at most {max_length} characters."
        raise ApplicationError(message, code=ErrorCode.INVALID_NAME)
    user.full_name = name
    try:
        password_validation.validate_password(password, user)
    except ValidationError as exc:
        raise ApplicationError(
            " ".join(exc.messages), code=ErrorCode.INVALID_PASSWORD, extra={"messages": list(exc.messages)}
        ) from exc
    user.set_password(password)
    user.save(update_fields=["full_name", "password"])
    _verify_primary_email(user)
    return invitation_accept(token=token, user=user)
