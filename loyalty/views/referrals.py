"""Member-site pages of referrals: the referrals the viewer may see (their own; an owner's team's) with status and
the reason of a rejection, and "Refer a company".

Thin views over loyalty.selectors.referrals (reads, scoped by partners.visibility) and loyalty.services.referrals
(writes). A refusal (a prospect that is already a partner, an inactive membership) is shown above the form, with
what was typed kept.
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_http_methods

from loyalty.common.errors import ApplicationError
from loyalty.common.htmx import render_page_or_partial
from loyalty.constants import ReferralStatus
from loyalty.forms.referrals import ReferralForm
from loyalty.selectors import referrals as selectors
from loyalty.selectors.programs import current_program
from loyalty.services import referrals as services
from loyalty.views.decorators import member_in_program_required
from partners.constants import MemberStatus
from partners.forms import StatusFilterForm
from partners.visibility import viewer_for

PAGE_SIZE = 20

referrer_required = member_in_program_required(gettext_lazy("Referrals are for partner members."))


@login_required
@require_GET
def referral_list(request):
    program = current_program(request)
    viewer = viewer_for(request.user)
    form = StatusFilterForm(request.GET, statuses=ReferralStatus.choices)
    status = form.filters()["status"]
    referrals = selectors.referral_list(viewer=viewer, program=program, status=status)
    context = {
        "program": program,
        "filter_form": form,
        "status": status,
        "page": Paginator(referrals, PAGE_SIZE).get_page(request.GET.get("page")),
        "can_refer": viewer.member is not None and program is not None,
        "ReferralStatus": ReferralStatus,
    }
    return render_page_or_partial(request, "loyalty/referrals/referral_list.html", "referral-table", context)


@referrer_required
@require_http_methods(["GET", "POST"])
def referral_new(request):
    member = request.member
    if member.status != MemberStatus.ACTIVE:
        return render(request, "loyalty/referrals/referral_form.html", {"inactive": True, "member": member})
    form = ReferralForm(request.POST or None)
    if form.is_bound and form.is_valid():
        try:
            referral = services.referral_submit(member=member, program=request.program, **form.cleaned_data)
        except ApplicationError as exc:
            form.add_error(None, exc.message)
        else:
            level = messages.WARNING if referral.duplicate_of_id else messages.SUCCESS
            messages.add_message(request, level, services.submitted_message(referral))
            return redirect("referral_list")
    return render(request, "loyalty/referrals/referral_form.html", {"form": form, "program": request.program})
