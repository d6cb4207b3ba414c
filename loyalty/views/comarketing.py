"""Member-site pages of co-marketing funds (MDF): the partner's fund and requests, asking for money for an
activity, a request with its history, claiming it with proof, withdrawing it, and its proof files.

Thin views over loyalty.selectors.comarketing (reads, scoped by partners.visibility) and
loyalty.services.comarketing (writes). The fund and the forms are for the partner's owner and its sales and
purchasing people; the program's staff read the requests they may see. A request or a file the viewer may not see
is a 404; a refused action is an ApplicationError shown above the form or as a message.
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from loyalty.common.errors import ApplicationError
from loyalty.common.htmx import render_page_or_partial
from loyalty.common.storage import private_file_response
from loyalty.constants import MDF_TRANSITIONS, MdfStatus
from loyalty.forms.comarketing import MarketingClaimForm, MarketingRequestForm
from loyalty.models import MarketingProof, MarketingRequest
from loyalty.selectors import comarketing as selectors
from loyalty.selectors.programs import current_program
from loyalty.services import comarketing as services
from loyalty.views.shortcuts import get_or_404
from partners.forms import StatusFilterForm
from partners.visibility import viewer_for

PAGE_SIZE = 20


def _get_request(request, pk: int) -> MarketingRequest:
    return get_or_404(
        MarketingRequest, selectors.request_get, "No such co-marketing request.", viewer=viewer_for(request.user), pk=pk
    )


def _may_act(viewer, item: MarketingRequest) -> bool:
    """The requester, or an owner of the request's partner (who may ask for money themselves)."""
    member = viewer.member
    return (
        member is not None
        and member.partner_id == item.partner_id
        and selectors.can_request(member)
        and (member.pk == item.member_id or member.role.is_owner)
    )


@login_required
@require_GET
def mdf_overview(request):
    """The partner's fund of today (amount, pre-approved, reimbursed, left) and its requests; staff see the
    requests of their partners."""
    viewer = viewer_for(request.user)
    asks = selectors.can_request(viewer.member)
    if not (asks or viewer.is_manager):
        raise Http404("Co-marketing funds are for the partner's owner, sales and purchasing people.")
    program = current_program(request)
    form = StatusFilterForm(request.GET, statuses=MdfStatus.choices)
    status = form.filters()["status"]
    rows = selectors.request_list(viewer=viewer, program=program, status=status)
    context = {
        "program": program,
        "fund": selectors.fund_overview(viewer=viewer, program=program, today=timezone.localdate()) if asks else None,
        "can_ask": asks and program is not None,
        "filter_form": form,
        "status": status,
        "page": Paginator(rows, PAGE_SIZE).get_page(request.GET.get("page")),
        "MdfStatus": MdfStatus,
    }
    return render_page_or_partial(request, "loyalty/comarketing/overview.html", "request-table", context)


@login_required
@require_http_methods(["GET", "POST"])
def mdf_request_new(request):
    viewer = viewer_for(request.user)
    program = current_program(request)
    if program is None or not selectors.can_request(viewer.member):
        raise Http404("Co-marketing money is asked for by the partner's owner, sales and purchasing people.")
    currency = program.money_currency
    fund = selectors.fund_overview(viewer=viewer, program=program, today=timezone.localdate())
    form = MarketingRequestForm(request.POST or None, currency=currency)
    if form.is_bound and form.is_valid():
        try:
            made = services.request_submit(member=viewer.member, program=program, **form.cleaned_data)
        except ApplicationError as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(request, _("Your request was sent. The program team decides on it; you will hear."))
            return redirect("mdf_request_detail", request_id=made.pk)
    return render(request, "loyalty/comarketing/request_form.html", {"form": form, "fund": fund, "program": program})


@login_required
@require_GET
def mdf_request_detail(request, request_id: int):
    item = _get_request(request, request_id)
    viewer = viewer_for(request.user)
    may_act = _may_act(viewer, item)
    context = {
        "item": item,
        "currency": item.fund.program.money_currency,
        "history": selectors.request_history(request=item),
        "can_claim": may_act and MdfStatus.CLAIMED in MDF_TRANSITIONS[item.status],
        "can_withdraw": may_act and MdfStatus.WITHDRAWN in MDF_TRANSITIONS[item.status],
        "MdfStatus": MdfStatus,
    }
    return render(request, "loyalty/comarketing/request_detail.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def mdf_request_claim(request, request_id: int):
    item = _get_request(request, request_id)
    viewer = viewer_for(request.user)
    if not _may_act(viewer, item):
        raise Http404("Only the person who asked, or the partner's owner, can claim this request.")
    if MdfStatus.CLAIMED not in MDF_TRANSITIONS[item.status]:
        messages.error(
            request,
            _("This request cannot be claimed now: it is %(status)s.") % {"status": item.get_status_display().lower()},
        )
        return redirect("mdf_request_detail", request_id=item.pk)
    currency = item.fund.program.money_currency
    kept = selectors.has_proof(item)
    form = MarketingClaimForm(request.POST or None, request.FILES or None, currency=currency, kept=kept)
    if form.is_bound and form.is_valid():
        try:
            services.request_claim(
                request=item,
                member=viewer.member,
                actual_cost=form.cleaned_data["actual_cost"],
                other_brands=form.cleaned_data["other_brands"],
                proofs=form.proofs(),
            )
        except ApplicationError as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(request, _("Your claim was sent. The program team checks the proof and reimburses it."))
            return redirect("mdf_request_detail", request_id=item.pk)
    context = {"item": item, "form": form, "currency": currency, "file_dropped": bool(request.FILES) and form.errors}
    context["MdfStatus"] = MdfStatus
    return render(request, "loyalty/comarketing/claim_form.html", context)


@login_required
@require_POST
def mdf_request_withdraw(request, request_id: int):
    item = _get_request(request, request_id)
    viewer = viewer_for(request.user)
    if not _may_act(viewer, item):
        raise Http404("Only the person who asked, or the partner's owner, can withdraw this request.")
    try:
        services.request_withdraw(request=item, member=viewer.member)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("The request is withdrawn."))
    return redirect("mdf_request_detail", request_id=item.pk)


@login_required
@require_GET
def mdf_proof(request, proof_id: int):
    """A proof file, to those who may see its request only."""
    proof = get_or_404(
        MarketingProof, selectors.proof_get, "No such file.", viewer=viewer_for(request.user), pk=proof_id
    )
    return private_file_response(proof.file, download_name=f"co-marketing-{proof.request_id}-{proof.kind}-{proof.pk}")
