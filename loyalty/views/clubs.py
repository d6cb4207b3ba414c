"""Member-site pages of paid club membership: the club page (the tier the company holds, whether it is paid and
until when, the tiers it can join for a yearly fee with their benefits, its paid years) and the confirmation step of
a join or renewal, which states exactly what will be charged and the new last day.

Thin views over loyalty.selectors.clubs (reads) and loyalty.services.clubs (writes). Every person of a partner sees
the club page of their own partner; only its active owners join and renew (for anyone else the confirmation page is
a 404). Staff without a partner get a 404, as on the other member pages. A refusal is a message on the club page.
"""

from dataclasses import dataclass

from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_http_methods

from loyalty.common.errors import ApplicationError
from loyalty.forms.clubs import ClubJoinForm
from loyalty.models import Tier
from loyalty.selectors import clubs as selectors
from loyalty.services import clubs as services
from loyalty.views.decorators import member_in_program_required
from loyalty.views.shortcuts import get_or_404
from partners.visibility import viewer_for

club_member_required = member_in_program_required(gettext_lazy("The club page is for partner members."))


@dataclass(frozen=True)
class Offer:
    """A joinable tier on the club page: its yearly fee as read, and what joining it now would be (`quote`) or why
    it cannot be joined now (`refusal`)."""

    tier: Tier
    fee: str
    quote: services.ClubQuote | None
    refusal: str


def _offers(overview: selectors.ClubOverview, program, today) -> list[Offer]:
    held = overview.held.tier if overview.held is not None else None
    offers = []
    for tier in overview.tiers:
        fee = services.fee_text(program, points=tier.join_fee_points, money=tier.join_fee_money)
        try:
            quote = services.club_quote(
                program=program, partner=overview.partner, tier=tier, latest=overview.latest, held=held, today=today
            )
        except ApplicationError as exc:
            offers.append(Offer(tier, fee, None, exc.message))
        else:
            offers.append(Offer(tier, fee, quote, ""))
    return offers


@club_member_required
@require_GET
def club(request):
    today = timezone.localdate()
    viewer = viewer_for(request.user)
    overview = selectors.club_overview(viewer=viewer, program=request.program, today=today)
    context = {
        "program": request.program,
        "overview": overview,
        "offers": _offers(overview, request.program, today),
        "can_pay": viewer.is_owner,
        "today": today,
    }
    return render(request, "loyalty/clubs/club.html", context)


@club_member_required
@require_http_methods(["GET", "POST"])
def club_join(request, tier_id: int):
    """GET: what joining (or renewing) the tier would charge and until when, to confirm. POST: pay it."""
    viewer = viewer_for(request.user)
    if not viewer.is_owner:
        raise Http404("Only the company's owner can join or renew its club membership.")
    program, partner = request.program, request.member.partner
    tier = get_or_404(Tier, selectors.joinable_tier_get, "No such club tier.", program=program, tier_id=tier_id)
    if request.method == "POST":
        return _pay(request, program, partner, tier)
    today = timezone.localdate()
    try:
        quote = services.club_quote(
            program=program,
            partner=partner,
            tier=tier,
            latest=selectors.latest_membership(program=program, partner=partner),
            held=selectors.held_tier(program=program, partner=partner),
            today=today,
        )
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return redirect("club")
    context = {
        "program": program,
        "quote": quote,
        "form": ClubJoinForm(initial={"renews_until": quote.renews_until}),
        "available": selectors.company_available(program=program, partner=partner)
        if quote.fee_points is not None
        else None,
    }
    return render(request, "loyalty/clubs/club_confirm.html", context)


def _pay(request, program, partner, tier):
    form = ClubJoinForm(request.POST)
    if not form.is_valid():
        messages.error(request, " ".join(form.errors.get("renews_until", [])))
        return redirect("club")
    try:
        membership = services.club_join(
            program=program,
            partner=partner,
            tier=tier,
            member=request.member,
            renews_until=form.cleaned_data["renews_until"],
        )
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        words = {"tier": tier.name, "until": date_format(membership.ends_on, services.DAY_FORMAT)}
        if membership.renews_id is not None:
            done = _("Renewed: your company's %(tier)s membership now runs until %(until)s.")
        else:
            done = _("Welcome to %(tier)s: your company's membership runs until %(until)s.")
        messages.success(request, done % words)
    return redirect("club")
