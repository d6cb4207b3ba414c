"""Consent to marketing messages (campaigns, news, surveys, nudges: constants.MARKETING_TOPICS). A member's own choice
wins (Preference.opted_in True or False); while they have made none, their partner's region decides: where its law
asks for consent first (partners' MarketingConsent.OPT_IN) nothing is sent, elsewhere messages go until they opt
out. Transactional messages need no consent. One rule for a single member (`marketing_allowed`) and for a whole
audience in one query (`marketing_refusers`)."""

from django.db.models import Q, QuerySet

from communications.models import Preference
from partners.constants import MarketingConsent
from partners.models import Member


def consent_default(member: Member) -> bool:
    """Whether marketing reaches the member before they choose: not where their region asks for consent first."""
    return not member.partner.region.needs_opt_in


def marketing_allowed(member: Member, preference: Preference | None) -> bool:
    """Whether a marketing message of the preference's topic may reach the member (`preference`: theirs for the
    topic, or None)."""
    if preference is not None and preference.opted_in is not None:
        return preference.opted_in
    return consent_default(member)


def marketing_refusers(topic: str) -> QuerySet:
    """The ids of the members a marketing message of `topic` may not reach (a subquery): those who opted out, and
    those who did not opt in where their region asks for consent first."""
    chose = Preference.objects.filter(topic=topic)
    return Member.objects.filter(
        Q(pk__in=chose.filter(opted_in=False).values("member_id"))
        | (
            Q(partner__region__marketing_consent=MarketingConsent.OPT_IN)
            & ~Q(pk__in=chose.filter(opted_in=True).values("member_id"))
        )
    ).values("pk")
