"""Member-site pages of sales claims: my claims, a new claim, a claim, correcting and withdrawing one, its
invoice file, and the product suggestions of the claim form.

Thin views over loyalty.selectors.claims (reads, scoped by partners.visibility) and loyalty.services.claims
(writes). A claim the viewer may not see is a 404, its invoice file included; a refused action is an
ApplicationError shown next to the field it concerns, or as a message.
"""

from functools import partial

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_http_methods

from loyalty.common.errors import ApplicationError
from loyalty.common.htmx import render_page_or_partial
from loyalty.common.storage import private_file_response
from loyalty.constants import ClaimFlag, ClaimStatus
from loyalty.forms.claims import BaseClaimLineFormSet, ClaimForm, ClaimLineFormSet, plain_number, product_text
from loyalty.models import SalesClaim
from loyalty.selectors import catalog as catalog_selectors
from loyalty.selectors import claims as selectors
from loyalty.selectors.one_sale import claim_paid_notes
from loyalty.selectors.programs import current_program
from loyalty.services import claim_checks as checks
from loyalty.services import claim_explanations
from loyalty.services import claims as services
from loyalty.views.decorators import member_in_program_required
from loyalty.views.shortcuts import get_or_404
from partners.constants import MemberStatus
from partners.forms import StatusFilterForm
from partners.visibility import viewer_for

PAGE_SIZE = 20
LINE_FIELDS = ("product", "quantity", "amount")


claimant_required = member_in_program_required(gettext_lazy("Sales claims are for partner members."))


def _get_claim(request, claim_id: int) -> SalesClaim:
    return get_or_404(SalesClaim, selectors.claim_get, "No such claim.", viewer=viewer_for(request.user), pk=claim_id)


# Lists ----------------------------------------------------------------------------------------------


@login_required
@require_GET
def claim_list(request):
    program = current_program(request)
    viewer = viewer_for(request.user)
    form = StatusFilterForm(request.GET, statuses=ClaimStatus.choices)
    status = form.filters()["status"]
    claims = selectors.claim_list(viewer=viewer, program=program, status=status)
    context = {
        "program": program,
        "filter_form": form,
        "status": status,
        "page": Paginator(claims, PAGE_SIZE).get_page(request.GET.get("page")),
        "can_claim": viewer.member is not None and program is not None,
    }
    return render_page_or_partial(request, "loyalty/claims/claim_list.html", "claim-table", context)


@login_required
@require_GET
def product_search(request):
    """Suggestions for a line's product box (htmx): the <option>s of the shared datalist. htmx sends the box's
    value under its own name (form-N-product); `q` works too."""
    term = request.GET.get("q") or next((v for k, v in request.GET.items() if k.endswith("-product")), "")
    products = catalog_selectors.product_search(term=term[:100])
    return render(request, "loyalty/claims/claim_form.html#product-options", {"products": products})


# Claiming -------------------------------------------------------------------------------------------


def _forms_from_post(request, *, colleagues, document_required: bool, extra_line: bool = False):
    """The claim form and its lines, bound to the request. With `extra_line` (the "Add line" button without
    JavaScript) they are rebuilt unbound, with what was typed as initial values and one more empty line."""
    if not extra_line:
        form = ClaimForm(request.POST, request.FILES, colleagues=colleagues, document_required=document_required)
        return form, ClaimLineFormSet(request.POST, currency=request.program.money_currency)
    post = request.POST
    initial = {
        "invoice_number": post.get("invoice_number", ""),
        "invoice_date": post.get("invoice_date") or timezone.localdate(),
        "colleagues": post.getlist("colleagues"),
    }
    form = ClaimForm(initial=initial, colleagues=colleagues, document_required=document_required)
    try:
        count = min(int(post.get("form-TOTAL_FORMS", "1")), ClaimLineFormSet.max_num)
    except ValueError:
        count = 1
    lines = [{name: post.get(f"form-{i}-{name}", "") for name in LINE_FIELDS} for i in range(count)]
    lines = [line for line in lines if any(line.values())]
    lines.append({})
    return form, ClaimLineFormSet(initial=lines[: ClaimLineFormSet.max_num], currency=request.program.money_currency)


def _add_service_error(form: ClaimForm, formset, exc: ApplicationError) -> None:
    field = services.ERROR_FIELDS.get(exc.code)  # the field the refusal concerns; the others go above the form
    form.add_error(field if field in form.fields else None, exc.message)


def _form_context(request, form, formset, **extra) -> dict:
    return {
        "form": form,
        "formset": formset,
        "program": request.program,
        "member": request.member,
        # A chosen file cannot be put back into a form shown again: say so when one was sent.
        "file_dropped": bool(request.FILES) and not form.errors.get("document"),
        **extra,
    }


def _send(
    request, send, *, colleagues, document_required: bool
) -> tuple[ClaimForm, BaseClaimLineFormSet, SalesClaim | None]:
    """A POST of the claim form: the claim, sent with `send` (the service, given the invoice, its file, the lines
    and the colleagues), or None with the forms to show again: after "Add line", or with what was refused."""
    adding = "add_line" in request.POST
    form, formset = _forms_from_post(
        request, colleagues=colleagues, document_required=document_required, extra_line=adding
    )
    if adding or not form.is_valid() & formset.is_valid():
        return form, formset, None
    try:
        claim = send(
            invoice_number=form.cleaned_data["invoice_number"],
            invoice_date=form.cleaned_data["invoice_date"],
            document=form.cleaned_data["document"],
            lines=formset.lines(),
            colleagues=list(form.cleaned_data["colleagues"]),
        )
    except ApplicationError as exc:
        _add_service_error(form, formset, exc)
        return form, formset, None
    return form, formset, claim


def _done_message(claim: SalesClaim, *, again: bool = False) -> str:
    if claim.status == ClaimStatus.APPROVED:
        return _("Claim %(claim)s is approved: the points are in your statement.") % {"claim": claim.pk}
    if again:
        message = _("Claim %(claim)s was sent again. The program team reviews it; the decision will show here.")
    else:
        message = _("Claim %(claim)s was sent. The program team reviews it; the decision will show here.")
    return message % {"claim": claim.pk}


@claimant_required
@require_http_methods(["GET", "POST"])
def claim_new(request):
    member = request.member
    if member.status != MemberStatus.ACTIVE:
        return render(request, "loyalty/claims/claim_form.html", {"inactive": True, "member": member})
    colleagues = selectors.colleague_choices(member=member)
    if request.method == "POST":
        send = partial(services.claim_submit, member=member, program=request.program)
        form, formset, claim = _send(request, send, colleagues=colleagues, document_required=True)
        if claim is not None:
            messages.success(request, _done_message(claim))
            return redirect("claim_detail", claim_id=claim.pk)
    else:
        form = ClaimForm(colleagues=colleagues)
        formset = ClaimLineFormSet(currency=request.program.money_currency)
    return render(request, "loyalty/claims/claim_form.html", _form_context(request, form, formset))


@claimant_required
@require_http_methods(["GET", "POST"])
def claim_resubmit(request, claim_id: int):
    claim = _get_claim(request, claim_id)
    member = request.member
    if not checks.can_resubmit(claim=claim, member=member):
        if claim.member_id != member.pk:
            raise Http404("Only the member who made the claim can correct it.")
        messages.error(request, _why_not_resubmit(claim))
        return redirect("claim_detail", claim_id=claim.pk)
    colleagues = selectors.colleague_choices(member=member)
    if request.method == "POST":
        send = partial(services.claim_resubmit, claim=claim, member=member)
        form, formset, sent = _send(request, send, colleagues=colleagues, document_required=False)
        if sent is not None:
            messages.success(request, _done_message(sent, again=True))
            return redirect("claim_detail", claim_id=sent.pk)
    else:
        form = ClaimForm(
            initial={
                "invoice_number": claim.invoice_number,
                "invoice_date": claim.invoice_date,
                "colleagues": [c.pk for c in claim.colleagues.all()],
            },
            colleagues=colleagues,
            document_required=False,
        )
        formset = ClaimLineFormSet(
            initial=[
                {"product": product_text(line.product), "quantity": plain_number(line.quantity), "amount": line.amount}
                for line in claim.lines.all()
            ],
            currency=request.program.money_currency,
        )
    context = _form_context(request, form, formset, claim=claim, deadline=_deadline(claim))
    return render(request, "loyalty/claims/claim_form.html", context)


def _deadline(claim: SalesClaim):
    return checks.claim_deadline(program=claim.program, invoice_date=claim.invoice_date)


def _why_not_resubmit(claim: SalesClaim) -> str:
    if claim.status != ClaimStatus.REJECTED:
        return _("Claim %(claim)s is %(status)s; only a rejected claim can be corrected.") % {
            "claim": claim.pk,
            "status": claim.get_status_display().lower(),
        }
    return _(
        "The claim window for this invoice closed on %(day)s; "
        "the claim can no longer be corrected. Ask the program team if something is wrong."
    ) % {"day": date_format(_deadline(claim), "d M Y")}


# One claim ------------------------------------------------------------------------------------------


@login_required
@require_GET
def claim_detail(request, claim_id: int):
    claim = _get_claim(request, claim_id)
    viewer = viewer_for(request.user)
    member = viewer.member
    is_own = member is not None and claim.member_id == member.pk
    # A colleague the claimant tagged reads the claim and their share of it, and changes nothing.
    is_tagged = member is not None and not is_own and any(c.pk == member.pk for c in claim.colleagues.all())
    entries, unpaid = {}, {}
    paid_notes = claim_paid_notes(claim)  # lines that paid for less: another report of the sale was paid
    if claim.status == ClaimStatus.APPROVED:
        entries = selectors.claim_entries(viewer=viewer, claim=claim)
        unpaid = claim_explanations.unpaid_reasons(
            claim=claim,
            lines=[line for line in claim.lines.all() if not entries.get(line.pk) and line.pk not in paid_notes],
            member=member if is_own or is_tagged else None,
        )
    lines = [
        {
            "line": line,
            "quantity": plain_number(line.quantity),
            "entries": entries.get(line.pk, []),
            "unpaid": unpaid.get(line.pk, ""),
            "paid_note": paid_notes.get(line.pk),
        }
        for line in claim.lines.all()
    ]
    context = {
        "claim": claim,
        "lines": lines,
        "points_total": sum(entry.points for rows in entries.values() for entry in rows),
        "is_own": is_own,
        "is_tagged": is_tagged,
        "show_flags": viewer.is_program_manager,
        "flags": [ClaimFlag(flag).label for flag in claim.flags],
        "history": selectors.claim_history(viewer=viewer, claim=claim),
        "can_resubmit": checks.can_resubmit(claim=claim, member=member),
        "can_withdraw": checks.can_withdraw(claim=claim, member=member),
        "deadline": _deadline(claim),
        "today": timezone.localdate(),
    }
    return render(request, "loyalty/claims/claim_detail.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def claim_withdraw(request, claim_id: int):
    """GET asks for confirmation (works without JavaScript); POST withdraws."""
    claim = _get_claim(request, claim_id)
    member = viewer_for(request.user).member
    if member is None or claim.member_id != member.pk:
        raise Http404("Only the member who made the claim can withdraw it.")
    if request.method == "POST":
        try:
            services.claim_withdraw(claim=claim, member=member)
        except ApplicationError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, _("Claim %(claim)s is withdrawn.") % {"claim": claim.pk})
        return redirect("claim_detail", claim_id=claim.pk)
    return render(
        request,
        "loyalty/claims/claim_withdraw.html",
        {"claim": claim, "can_withdraw": checks.can_withdraw(claim=claim, member=member)},
    )


@login_required
@require_GET
def claim_document(request, claim_id: int):
    """The invoice file, to those who may see the claim only."""
    claim = selectors.claims_for(viewer_for(request.user)).only("pk", "document").filter(pk=claim_id).first()
    if claim is None:
        raise Http404("No such claim.")
    return private_file_response(claim.document, download_name=f"claim-{claim.pk}-invoice")
