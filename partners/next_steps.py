"""The home page's "What I can do next": the real next steps for the person's role and state, gathered from
every app (partners here; the apps above register theirs through partners.hooks.provides_next_steps)."""

from dataclasses import dataclass

from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from partners import hooks, selectors
from partners.constants import MemberStatus

# Priorities: lower comes first. Work waiting for this person, then what they came for, then housekeeping.
WAITING, EARN, SPEND, SETUP, BROWSE, HOUSEKEEPING = 10, 20, 30, 40, 60, 90


@dataclass(frozen=True)
class NextStep:
    title: str
    text: str
    url: str
    link: str
    priority: int


def next_steps(*, request, viewer) -> list[NextStep]:
    """Every app's steps for the viewer, most urgent first."""
    steps = [step for provider in hooks.next_step_providers for step in provider(request=request, viewer=viewer)]
    return sorted(steps, key=lambda step: step.priority)


@hooks.provides_next_steps
def partner_steps(*, request, viewer) -> list[NextStep]:
    steps = []
    member = viewer.member
    if viewer.is_owner:
        waiting = selectors.team_counts(viewer=viewer, partner=viewer.partner)[MemberStatus.PENDING_APPROVAL]
        if waiting:
            steps.append(
                NextStep(
                    title=ngettext("Approve a new colleague", "Approve %(count)d new colleagues", waiting)
                    % {"count": waiting},
                    text=ngettext(
                        "%(count)d person of your company waits for your approval before they can take part.",
                        "%(count)d people of your company wait for your approval before they can take part.",
                        waiting,
                    )
                    % {"count": waiting},
                    url=reverse("team") + f"?status={MemberStatus.PENDING_APPROVAL}",
                    link=_("Review them"),
                    priority=WAITING,
                )
            )
        else:
            steps.append(
                NextStep(
                    title=_("My team"),
                    text=_("Invite colleagues, change their roles, or see who left."),
                    url=reverse("team"),
                    link=_("Manage my team"),
                    priority=BROWSE,
                )
            )
        steps.append(
            NextStep(
                title=_("Company settings"),
                text=_("Staff bonuses: %(policy)s.") % {"policy": viewer.partner.get_payout_policy_display()},
                url=reverse("company"),
                link=_("Open company settings"),
                priority=HOUSEKEEPING,
            )
        )
    if viewer.is_account_manager:
        count = selectors.partner_count(viewer=viewer)
        steps.append(
            NextStep(
                title=_("My partners"),
                text=ngettext("%(count)d partner in your portfolio.", "%(count)d partners in your portfolio.", count)
                % {"count": count}
                if count
                else _("No partners are assigned to you yet."),
                url=reverse("partner_list"),
                link=_("See my partners"),
                priority=EARN,
            )
        )
    if viewer.is_program_manager:
        count = selectors.partner_count(viewer=viewer)
        steps.append(
            NextStep(
                title=_("Back office"),
                text=_("Programs, rules, rewards, claims and approvals."),
                url=reverse("admin:index"),
                link=_("Open the back office"),
                priority=EARN,
            )
        )
        steps.append(
            NextStep(
                title=_("Partners"),
                text=ngettext("%(count)d partner in the program.", "%(count)d partners in the program.", count)
                % {"count": count},
                url=reverse("partner_list"),
                link=_("See all partners"),
                priority=BROWSE,
            )
        )
    if member is not None and not (request.user.full_name and member.phone):
        steps.append(
            NextStep(
                title=_("Finish my profile"),
                text=_("Add your name and phone number so that your company and the program team can reach you."),
                url=reverse("profile"),
                link=_("Finish my profile"),
                priority=SETUP,
            )
        )
    else:
        steps.append(
            NextStep(
                title=_("My profile"),
                text=_("Keep your phone number, language and how we reach you up to date.")
                if member is not None
                else _("Your name, e-mail and password."),
                url=reverse("profile"),
                link=_("Open my profile"),
                priority=HOUSEKEEPING,
            )
        )
    return steps
