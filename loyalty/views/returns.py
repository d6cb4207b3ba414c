"""Member-site pages of equipment returns: my returns (a partner owner: the team's), registering a return, and for
a collecting partner's people the returns waiting for confirmation at their collection points, each confirmed or
rejected with a reason.

Thin views over loyalty.selectors.returns (reads, scoped by partners.visibility) and loyalty.services.returns
(writes). A return the viewer may not decide is a 404; a refused action is an ApplicationError shown next to the
field it concerns, or as a message.
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.formats import number_format
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from loyalty.common.errors import ApplicationError
from loyalty.common.htmx import render_page_or_partial
from loyalty.constants import ReturnStatus
from loyalty.forms.returns import RejectForm, ReturnForm
from loyalty.models import EquipmentReturn
from loyalty.selectors import returns as selectors
from loyalty.selectors.programs import current_program
from loyalty.services import returns as services
from loyalty.views.decorators import member_in_program_required
from partners.constants import MemberStatus
from partners.forms import StatusFilterForm
from partners.visibility import viewer_for

PAGE_SIZE = 20

returner_required = member_in_program_required(gettext_lazy("Equipment returns are for partner members."))


@login_required
@require_GET
def return_list(request):
    program = current_program(request)
    viewer = viewer_for(request.user)
    form = StatusFilterForm(request.GET, statuses=ReturnStatus.choices)
    status = form.filters()["status"]
    returns = selectors.return_list(viewer=viewer, program=program, status=status)
    context = {
        "program": program,
        "filter_form": form,
        "status": status,
        "page": Paginator(returns, PAGE_SIZE).get_page(request.GET.get("page")),
        "can_register": viewer.member is not None and program is not None,
        "collects": selectors.collects(viewer=viewer, program=program),
        "ReturnStatus": ReturnStatus,
    }
    return render_page_or_partial(request, "loyalty/returns/return_list.html", "return-table", context)


def _form(request, data=None) -> ReturnForm:
    program = request.program
    return ReturnForm(
        data,
        return_types=selectors.return_type_choices(program),
        collection_points=selectors.collection_point_choices(program),
    )


@returner_required
@require_http_methods(["GET", "POST"])
def return_new(request):
    member = request.member
    if member.status != MemberStatus.ACTIVE:
        return render(request, "loyalty/returns/return_form.html", {"inactive": True, "member": member})
    form = _form(request, request.POST if request.method == "POST" else None)
    if form.is_bound and form.is_valid():
        data = form.cleaned_data
        try:
            equipment_return = services.return_register(
                member=member,
                program=request.program,
                return_type=data["return_type"],
                collection_point=data["collection_point"],
                quantity=data["quantity"],
                returned_on=data["returned_on"],
                serials=data["serials"],
            )
        except ApplicationError as exc:
            field = services.ERROR_FIELDS.get(exc.code)
            form.add_error(field if field in form.fields else None, exc.message)
        else:
            messages.success(
                request,
                _("Return %(return)s is registered: %(units)s × %(type)s. You earn its points once it is confirmed.")
                % {
                    "return": equipment_return.pk,
                    "units": number_format(equipment_return.quantity, force_grouping=True),
                    "type": equipment_return.return_type.name,
                },
            )
            return redirect("return_list")
    context = {
        "form": form,
        "program": request.program,
        "member": member,
        "nothing_to_return": not form.fields["return_type"].queryset.exists()
        or not form.fields["collection_point"].queryset.exists(),
    }
    return render(request, "loyalty/returns/return_form.html", context)


@returner_required
@require_GET
def return_to_confirm(request):
    returns = selectors.returns_to_confirm(viewer=viewer_for(request.user), program=request.program)
    context = {
        "program": request.program,
        "page": Paginator(returns, PAGE_SIZE).get_page(request.GET.get("page")),
        "collects": selectors.collects(viewer=viewer_for(request.user), program=request.program),
        "reject_form": RejectForm(),
    }
    return render(request, "loyalty/returns/return_to_confirm.html", context)


def _to_decide(request, return_id: int) -> EquipmentReturn:
    try:
        return selectors.return_to_confirm_get(viewer=viewer_for(request.user), program=request.program, pk=return_id)
    except EquipmentReturn.DoesNotExist:
        raise Http404("No such return to confirm.") from None


@returner_required
@require_POST
def return_confirm(request, return_id: int):
    equipment_return = _to_decide(request, return_id)
    try:
        confirmed, payout = services.return_confirm(return_id=equipment_return.pk, actor=request.user)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        message = _("Return %(return)s confirmed: %(points)s points paid to %(name)s.") % {
            "return": confirmed.pk,
            "points": number_format(payout.points, force_grouping=True),
            "name": confirmed.member.user.get_full_name(),
        }
        if payout.limited:
            message += " " + services.limited_note(payout)
        messages.success(request, message)
    return redirect("return_to_confirm")


@returner_required
@require_POST
def return_reject(request, return_id: int):
    equipment_return = _to_decide(request, return_id)
    form = RejectForm(request.POST)
    if not form.is_valid():
        messages.error(request, " ".join(form.errors["reason"]))
        return redirect("return_to_confirm")
    try:
        services.return_reject(return_id=equipment_return.pk, actor=request.user, reason=form.cleaned_data["reason"])
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(
            request,
            _("Return %(return)s rejected; its serial numbers are free again.") % {"return": equipment_return.pk},
        )
    return redirect("return_to_confirm")
