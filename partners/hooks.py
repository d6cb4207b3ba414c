"""Extension points for the apps above partners, which partners itself may not import.

An app registers a handler in its AppConfig.ready(); partners calls it inside the same transaction as
the change, so the whole move succeeds or fails together.
"""

from collections.abc import Callable
from dataclasses import dataclass

member_left_handlers: list[Callable] = []


def on_member_left(handler: Callable) -> Callable:
    """`handler(*, member, actor)` runs when a membership that had joined becomes `left`."""
    if handler not in member_left_handlers:
        member_left_handlers.append(handler)
    return handler


next_step_providers: list[Callable] = []


def provides_next_steps(provider: Callable) -> Callable:
    """`provider(*, request, viewer)` returns the partners.next_steps.NextStep items its app offers the viewer on
    the home page ("What I can do next"): only the steps that make sense for their role and state now."""
    if provider not in next_step_providers:
        next_step_providers.append(provider)
    return provider


member_approved_handlers: list[Callable] = []


def on_member_approved(handler: Callable) -> Callable:
    """`handler(*, member, actor)` runs when a partner's owner (or a program manager) approves a membership."""
    if handler not in member_approved_handlers:
        member_approved_handlers.append(handler)
    return handler


email_unreachable_providers: list[Callable] = []


def provides_email_unreachable(provider: Callable) -> Callable:
    """`provider()` returns a boolean query expression over partners.User rows (it may use OuterRef("email")): true
    when e-mail to the user's address no longer arrives (a hard bounce, a complaint). The team tables show such
    people as "not reachable by e-mail" to their owner and account manager."""
    if provider not in email_unreachable_providers:
        email_unreachable_providers.append(provider)
    return provider


invitation_issued_handlers: list[Callable] = []


def on_invitation_issued(handler: Callable) -> Callable:
    """`handler(*, invitation, token)` runs when an invitation link is issued (a first invitation or a resend; each a
    new Invitation): the raw `token` exists only now, so the handler sends the person their sign-up link."""
    if handler not in invitation_issued_handlers:
        invitation_issued_handlers.append(handler)
    return handler


home_panel_providers: list[Callable] = []


def provides_home_panels(provider: Callable) -> Callable:
    """`provider(*, request, viewer)` returns the panels its app shows on the home page, below the person's points and
    tier and above "What I can do next": a list of (template name, context) pairs, or of HTML already rendered (a
    SafeString: plain text is escaped). Only the panels that make sense for the viewer now (none is an empty list);
    each costs its app's queries, so keep them few and constant."""
    if provider not in home_panel_providers:
        home_panel_providers.append(provider)
    return provider


@dataclass(frozen=True)
class MemberCell:
    """One person's value in a column an app adds: its text (formatted already) and, optionally, a link."""

    text: str
    url: str = ""


@dataclass(frozen=True)
class MemberColumn:
    """A column an app adds to the tables of a partner's people: its heading and each person's cell, by member id
    (a person without one shows a dash). `numeric` columns are aligned to the end."""

    heading: str
    cells: dict[int, MemberCell]
    numeric: bool = False


member_column_providers: list[Callable] = []


def provides_member_columns(provider: Callable) -> Callable:
    """`provider(*, request, viewer, partner, members)` returns the MemberColumns its app adds to the tables of a
    partner's people (the owner's team page, the partner page) for the `members` of one page (all of them visible to
    the viewer): what each person earned, say. Only what the viewer may see (none is an empty list), in a fixed
    number of queries whatever the page's size."""
    if provider not in member_column_providers:
        member_column_providers.append(provider)
    return provider
