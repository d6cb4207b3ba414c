"""A message's short link: `https://<site>/m/<code>` stands for the delivery's link, short enough for an SMS, and
counts as the member's click on the message. Opened by someone not signed in within SIGN_IN_LINK_HOURS of the
sending, it also signs the member in, once: one tap on a phone instead of a password. Never for staff, for an
account with two-factor authentication, or for a membership or user that is not active (docs/decisions.md #16).

The code (`secrets.token_urlsafe`, 96 random bits, unique) is the only credential; it names one delivery and leads
only to that delivery's page on this site."""

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from urllib.parse import urlsplit, urlunsplit

from allauth.mfa.utils import is_mfa_enabled
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme

from communications.lock_objects import delivery_lock
from communications.models import Delivery
from communications.tracking import delivery_clicked
from loyalty.common.links import absolute_url
from partners.constants import MemberStatus
from partners.models import User
from partners.security import must_use_totp


def tracked_link(delivery: Delivery) -> str:
    """The absolute short link standing for `delivery.link` ("" when the message links nowhere). Gives the delivery
    its code the first time; the sender saves `link_code` with the sent message, and a resend keeps it."""
    if not delivery.link:
        return ""
    if not delivery.link_code:
        delivery.link_code = secrets.token_urlsafe(12)  # 16 characters
    return absolute_url("delivery_link", delivery.link_code)


def local_path(link: str) -> str:
    """The path, query and fragment of `link`, to redirect to on this site; "/" if what is left is no path of ours
    ("//other.example/", "/\\other.example", "javascript:...")."""
    parts = urlsplit(link)
    path = urlunsplit(("", "", parts.path or "/", parts.query, parts.fragment))
    local = path.startswith("/") and url_has_allowed_host_and_scheme(path, allowed_hosts=None)
    return path if local else "/"


class Opening(StrEnum):
    """What opening a short link does besides counting the click."""

    SIGN_IN = "sign_in"  # sign the member in, then go to the page
    GO = "go"  # the visitor is signed in already (as anyone): just go to the page
    USED = "used"  # the link signed someone in before: sign in as usual
    EXPIRED = "expired"  # sent too long ago to sign in: sign in as usual
    NOT_ALLOWED = "not_allowed"  # staff, two-factor, not active: sign in as usual


@dataclass(frozen=True)
class LinkOpened:
    path: str
    opening: Opening
    user: User | None = None  # whom to sign in (SIGN_IN only)


def delivery_link_open(*, code: str, visitor) -> LinkOpened | None:
    """Open the short link `code` for `visitor` (the request's user, maybe anonymous): the delivery counts as
    clicked, and a one-tap sign-in is decided and, if granted, spent. None for a code that names no delivery."""
    now = timezone.now()
    with transaction.atomic():
        delivery_id = Delivery.objects.filter(link_code=code).values_list("pk", flat=True).first()
        if delivery_id is None:
            return None
        delivery = delivery_lock(delivery_id)  # one opening at a time: a link signs in once
        changed = delivery_clicked(delivery, now)
        opening = _opening(delivery, visitor, now)
        if opening == Opening.SIGN_IN:
            delivery.link_used_at = now
            changed.append("link_used_at")
        if changed:
            delivery.save(update_fields=[*changed, "updated_at"])
    user = delivery.member.user if opening == Opening.SIGN_IN else None
    return LinkOpened(path=local_path(delivery.link), opening=opening, user=user)


def _opening(delivery: Delivery, visitor, now: datetime) -> Opening:
    if visitor.is_authenticated:
        return Opening.GO  # never switch who is signed in
    member, user = delivery.member, delivery.member.user
    if member.status != MemberStatus.ACTIVE or not user.is_active or must_use_totp(user) or is_mfa_enabled(user):
        return Opening.NOT_ALLOWED
    if delivery.link_used_at is not None:
        return Opening.USED
    if delivery.sent_at is None or now - delivery.sent_at >= timedelta(hours=settings.SIGN_IN_LINK_HOURS):
        return Opening.EXPIRED
    return Opening.SIGN_IN
