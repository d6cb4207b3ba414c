"""Extension points for the apps above communications, which communications itself may not import.

An app registers a handler in its AppConfig.ready(); communications calls it inside the same transaction as the
change, so the whole step succeeds or fails together.
"""

from collections.abc import Callable

survey_answered_handlers: list[Callable] = []


def on_survey_answered(handler: Callable) -> Callable:
    """`handler(*, survey, member, response)` runs when a member has answered a survey (once per member): loyalty
    posts the "survey answered" event, which the program's rules pay."""
    if handler not in survey_answered_handlers:
        survey_answered_handlers.append(handler)
    return handler


survey_points_providers: dict[str, Callable] = {}
OFFERED, PAID = "offered", "paid"


def provides_survey_points(which: str, provider: Callable) -> Callable:
    """`provider(*, survey, member)` returns the points answering pays the member: what the program's rules would
    pay now (OFFERED, shown before answering), or what was paid (PAID, shown after)."""
    survey_points_providers[which] = provider
    return provider


def survey_points(which: str, *, survey, member) -> int:
    """0 when no app provides them: the pages then promise nothing."""
    provider = survey_points_providers.get(which)
    return 0 if provider is None or member is None else provider(survey=survey, member=member)


tier_name_providers: list[Callable] = []


def provides_tier_names(provider: Callable) -> Callable:
    """`provider(*, program_id, partner_ids)` returns {partner id: the name of its current tier in the program},
    for the survey results by tier."""
    if provider not in tier_name_providers:
        tier_name_providers.append(provider)
    return provider


def tier_names(*, program_id: int, partner_ids: list[int]) -> dict[int, str]:
    names: dict[int, str] = {}
    for provider in tier_name_providers:
        names.update(provider(program_id=program_id, partner_ids=partner_ids))
    return names


# What members did, for campaign segments and reach. Each provider returns a QuerySet of member ids (one column,
# usable as a subquery), so a segment of 100,000 members stays one SQL statement.
EARNED, CLAIMED, REDEEMED = "earned", "claimed", "redeemed"
activity_providers: dict[str, Callable] = {}


def provides_activity(activity: str, provider: Callable) -> Callable:
    """`provider(*, program_id, since, until)` returns the ids of the members who did `activity` (EARNED, CLAIMED,
    REDEEMED) in the program between `since` and `until` (either may be None: no bound)."""
    activity_providers[activity] = provider
    return provider


def members_who(activity: str, *, program_id: int, since=None, until=None):
    """The ids of the members who did `activity` (a QuerySet), or None when no app provides it."""
    provider = activity_providers.get(activity)
    return None if provider is None else provider(program_id=program_id, since=since, until=until)


tier_partner_providers: list[Callable] = []


def provides_tier_partners(provider: Callable) -> Callable:
    """`provider(*, tier_ids)` returns the ids of the partners whose current tier is one of `tier_ids` (a QuerySet
    of partner ids), for the campaign segments by tier."""
    if provider not in tier_partner_providers:
        tier_partner_providers.append(provider)
    return provider
