"""Member-site pages of challenges and leaderboards: my challenges, a challenge with its leaderboard, and the program
period's leaderboard for people and for companies.

Thin views over loyalty.selectors.challenges and loyalty.selectors.leaderboards. A challenge whose audience the
member is not in is a 404, like a page for someone who is not a partner's member (the manufacturer's staff follow
challenges in the back office). The boards' toggles are plain links; an htmx request gets only the board.
"""

from django import forms
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET

from loyalty.common.htmx import render_page_or_partial
from loyalty.models import Challenge
from loyalty.selectors import challenges as selectors
from loyalty.selectors import leaderboards
from loyalty.selectors.programs import current_program
from loyalty.services.tiers import period_end
from loyalty.views.decorators import member_in_program_required
from loyalty.views.shortcuts import get_or_404
from partners.constants import MemberStatus
from partners.visibility import viewer_for

challenges_required = member_in_program_required(gettext_lazy("Challenges are for partner members."))

PEOPLE, COMPANIES = "people", "companies"


class BoardForm(forms.Form):
    """Which board a page shows: people or companies, and companies by their total or per active member."""

    board = forms.ChoiceField(choices=[(PEOPLE, PEOPLE), (COMPANIES, COMPANIES)], required=False)
    per_member = forms.TypedChoiceField(choices=[("1", "1"), ("0", "0")], coerce=int, required=False, empty_value=None)

    def choice(self, name: str):
        """The field's value, or None when it is missing or invalid: an invalid field is ignored on its own (the
        others keep what the user asked for)."""
        self.is_valid()
        return self.cleaned_data.get(name)

    @property
    def companies(self) -> bool:
        return self.choice("board") == COMPANIES

    def per_active_member(self, *, default: bool) -> bool:
        chosen = self.choice("per_member")
        return default if chosen is None else bool(chosen)


def _toggle(url: str, text: str, active: bool, **query) -> dict:
    return {
        "text": text,
        "url": f"{url}?{'&'.join(f'{k}={v}' for k, v in query.items())}" if query else url,
        "active": active,
    }


@challenges_required
@require_GET
def challenge_list(request):
    lists = selectors.challenge_list(viewer=viewer_for(request.user), program=request.program)
    return render_page_or_partial(
        request, "loyalty/challenges/challenge_list.html", "challenges", {"lists": lists, "program": request.program}
    )


@challenges_required
@require_GET
def challenge_detail(request, challenge_id: int):
    viewer = viewer_for(request.user)
    challenge = get_or_404(
        Challenge,
        selectors.challenge_get,
        _("No such challenge."),
        viewer=viewer,
        program=request.program,
        pk=challenge_id,
    )
    form = BoardForm(request.GET)
    by_size = form.per_active_member(default=challenge.rank_companies_by_size)
    board = leaderboards.challenge_board(viewer=viewer, challenge=challenge, by_size=by_size)
    url = reverse("challenge_detail", args=[challenge.pk])
    size_toggles = []
    if board.companies and challenge.rank_companies_by_size and challenge.results_at is None:
        size_toggles = [
            _toggle(url, _("Per active member"), board.by_size, per_member=1),
            _toggle(url, _("Total"), not board.by_size, per_member=0),
        ]
    context = {
        "challenge": challenge,
        "card": selectors.challenge_card(viewer=viewer, challenge=challenge, entry=board.own),
        "board": board,
        "toggles": [],
        "size_toggles": size_toggles,
        "program": request.program,
    }
    return render_page_or_partial(request, "loyalty/challenges/challenge_detail.html", "board", context)


@challenges_required
@require_GET
def leaderboard(request):
    viewer, program = viewer_for(request.user), request.program
    form = BoardForm(request.GET)
    companies = form.companies
    start = leaderboards.current_period_start(program=program)
    board = leaderboards.board(
        viewer=viewer,
        program=program,
        period_start=start,
        companies=companies,
        by_size=companies and form.per_active_member(default=False),
    )
    url = reverse("leaderboard")
    toggles = [
        _toggle(url, _("People"), not companies),
        _toggle(url, _("Companies"), companies, board=COMPANIES),
    ]
    size_toggles = []
    if companies:
        size_toggles = [
            _toggle(url, _("Total"), not board.by_size, board=COMPANIES),
            _toggle(url, _("Per active member"), board.by_size, board=COMPANIES, per_member=1),
        ]
    context = {
        "board": board,
        "toggles": toggles,
        "size_toggles": size_toggles,
        "period_start": start,
        "period_end": period_end(period=program.tier_period, today=start),
        "program": program,
    }
    return render_page_or_partial(request, "loyalty/challenges/leaderboard.html", "board", context)


def home_panel(*, request, viewer) -> list:
    """The home page's "My challenges" (partners.hooks.provides_home_panels): a bar per running challenge of the
    member's, the ones ending soonest; nothing when none runs. One query."""
    member = viewer.member
    if member is None or member.status != MemberStatus.ACTIVE:
        return []
    program = current_program(request)
    panel = selectors.home_challenges(viewer=viewer, program=program)
    if not panel.challenges:
        return []
    return [("loyalty/challenges/_home_panel.html", {"panel": panel, "program": program})]
