"""Member-site pages of prize draws: the list (with the entries the member holds), a draw's page (buy entries, take
the free entry where the region requires it, the results once drawn), its verification page, and its entry list as
plain text (exactly the text whose SHA-256 the draw published).

Thin views over loyalty.selectors.draws (reads) and loyalty.services.draws (writes). The pages are for partner members
of a running program (others get a 404, as on the other member pages); a draw of another program or still a draft is
a 404; a refusal is a message.
"""

import uuid

from django import forms
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django.views.decorators.http import require_GET, require_POST

from loyalty.common.errors import ApplicationError
from loyalty.constants import DrawStatus
from loyalty.models import PrizeDraw
from loyalty.selectors import draws as selectors
from loyalty.services import draws as services
from loyalty.services.ledger import member_account
from loyalty.views.decorators import member_in_program_required
from loyalty.views.shortcuts import get_or_404

PAGE_SIZE = 20

entrant_required = member_in_program_required(gettext_lazy("Prize draws are for partner members."))


class BuyForm(forms.Form):
    count = forms.IntegerField(
        label=gettext_lazy("Entries to buy"),
        min_value=1,
        max_value=1000,
        error_messages={"required": gettext_lazy("Choose how many entries to buy.")},
        widget=forms.NumberInput(attrs={"class": "form-control", "inputmode": "numeric"}),
    )
    token = forms.CharField(min_length=8, max_length=64, widget=forms.HiddenInput)


def _draw(request, draw_id: int) -> PrizeDraw:
    return get_or_404(
        PrizeDraw,
        selectors.draw_get,
        "No such prize draw.",
        viewer=request.user,
        program=request.program,
        draw_id=draw_id,
    )


@entrant_required
@require_GET
def draw_list(request):
    draws = selectors.draw_list(viewer=request.user, program=request.program)
    context = {
        "program": request.program,
        "page": Paginator(draws, PAGE_SIZE).get_page(request.GET.get("page")),
        "now": timezone.now(),
    }
    return render(request, "loyalty/draws/draw_list.html", context)


def _detail_page(request, draw: PrizeDraw, form: BuyForm | None = None, status: int = 200):
    mine = selectors.my_draw(viewer=request.user, draw=draw)
    now = timezone.now()
    is_open = draw.status == DrawStatus.OPEN and draw.opens_at <= now < draw.closes_at
    context = {
        "draw": draw,
        "program": request.program,
        "mine": mine,
        "prizes": selectors.prize_list(draw),
        "is_open": is_open,
        "not_yet_open": draw.status == DrawStatus.OPEN and now < draw.opens_at,
        "can_buy": is_open and bool(draw.entry_price_points) and mine.held < draw.max_entries_per_member,
        "left": max(draw.max_entries_per_member - mine.held, 0),
        "form": form or BuyForm(initial={"count": 1, "token": uuid.uuid4().hex}),
        "available": member_account(program=request.program, member=request.member).available
        if is_open and draw.entry_price_points
        else None,
    }
    return render(request, "loyalty/draws/draw_detail.html", context, status=status)


@entrant_required
@require_GET
def draw_detail(request, draw_id: int):
    return _detail_page(request, _draw(request, draw_id))


@entrant_required
@require_POST
def draw_buy(request, draw_id: int):
    draw = _draw(request, draw_id)
    form = BuyForm(request.POST)
    if not form.is_valid():
        return _detail_page(request, draw, form, status=400)
    try:
        entry = services.entries_buy(
            member=request.member,
            draw=draw,
            count=form.cleaned_data["count"],
            token=f"{request.member.pk}:{form.cleaned_data['token']}",
        )
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        bought = ngettext(
            "You bought %(count)d entry to %(draw)s.", "You bought %(count)d entries to %(draw)s.", entry.count
        )
        messages.success(request, bought % {"count": entry.count, "draw": draw.name})
    return redirect("draw_detail", draw_id=draw.pk)


@entrant_required
@require_POST
def draw_free_entry(request, draw_id: int):
    draw = _draw(request, draw_id)
    try:
        services.free_entry_take(member=request.member, draw=draw)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("Your free entry to %(draw)s is in.") % {"draw": draw.name})
    return redirect("draw_detail", draw_id=draw.pk)


@entrant_required
@require_GET
def draw_verify(request, draw_id: int):
    draw = _draw(request, draw_id)
    check = selectors.verification(draw=draw)
    return render(request, "loyalty/draws/draw_verify.html", {"draw": draw, "check": check})


@entrant_required
@require_GET
def draw_entry_list(request, draw_id: int):
    """The canonical entry list as plain text, byte for byte what entries_hash is the SHA-256 of."""
    draw = _draw(request, draw_id)
    check = selectors.verification(draw=draw)
    response = HttpResponse(check.entry_list, content_type="text/plain; charset=utf-8")
    response["Content-Disposition"] = f'inline; filename="draw-{draw.pk}-entries.txt"'
    return response
