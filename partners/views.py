"""The member site: thin views over partners.selectors (reads) and partners.services (writes).

Who may open what is decided by partners.visibility. A page a viewer may not use is a 404 (so it does not
reveal that the page or the object exists); a refused action is an ApplicationError shown as a message.
"""

import enum
from collections.abc import Callable
from functools import partial
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpResponseNotAllowed, QueryDict
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from loyalty.common.errors import ApplicationError
from loyalty.common.htmx import render_page_or_partial
from partners import hooks, selectors, services
from partners.constants import MemberStatus, PayoutPolicy
from partners.decorators import viewer_passes
from partners.error_codes import ErrorCode
from partners.forms import (
    DeactivateForm,
    InvitationSignupForm,
    InviteForm,
    PartnerFilterForm,
    PayoutPolicyForm,
    ProfileForm,
    TeamFilterForm,
)
from partners.language import remember_language, remember_time_zone
from partners.models import Member
from partners.next_steps import next_steps
from partners.visibility import Viewer, viewer_for

PAGE_SIZE = 25
# Accepting an invitation signs the new person in with the password they have just chosen.
LOGIN_BACKEND = "django.contrib.auth.backends.ModelBackend"
# What an unusable invitation link answers: gone for good (410) or never existed (404). Any other refusal
# (say, the person is still on another partner's team) is a conflict (409).
INVITATION_ERROR_STATUS = {
    ErrorCode.UNKNOWN: 404,
    ErrorCode.USED: 410,
    ErrorCode.REVOKED: 410,
    ErrorCode.EXPIRED: 410,
}
# Refusals of the sign-up form's own input are shown on the form, next to the field.
SIGNUP_ERROR_FIELDS = {ErrorCode.INVALID_NAME: "full_name", ErrorCode.INVALID_PASSWORD: "password1"}


class InvitationStep(enum.StrEnum):
    """Which part of the invitation page a person sees (the template compares `step` with these)."""

    do_not_call_in_templates = enum.nonmember(True)  # a class is callable: let templates read its members
    WRONG_USER = "wrong_user"  # signed in as somebody else
    SIGN_IN = "sign_in"  # has an account: sign in first
    SIGN_UP = "sign_up"  # new: choose a name and a password
    JOIN = "join"  # signed in as the invited person


owner_only = viewer_passes(lambda viewer: viewer.is_owner)
managers_only = viewer_passes(lambda viewer: viewer.is_manager)  # the manufacturer's staff
owner_or_managers = viewer_passes(lambda viewer: viewer.is_owner or viewer.is_manager)


def owner_view(*methods: str):
    """A page or action of partner owners only: signed in, one of these HTTP methods, the owner."""

    def decorator(view):
        return login_required(require_http_methods(list(methods))(owner_only(view)))

    return decorator


def _name(member: Member) -> str:
    return member.user.full_name or member.user.email


# Home and profile -----------------------------------------------------------------------------------


@login_required
def home(request):
    viewer = viewer_for(request.user)
    if not viewer.in_program:
        last_membership = selectors.latest_membership(viewer=viewer)
        return render(request, "partners/no_membership.html", {"last_membership": last_membership})
    context = {
        "member": viewer.member,
        "next_steps": next_steps(request=request, viewer=viewer),
        "home_panels": _home_panels(request, viewer),
    }
    return render(request, "partners/home.html", context)


def _home_panels(request, viewer: Viewer) -> list[str]:
    """The panels the apps above partners show on the home page (partners.hooks.provides_home_panels), rendered."""
    panels = []
    for provider in hooks.home_panel_providers:
        for panel in provider(request=request, viewer=viewer):
            if isinstance(panel, str):
                panels.append(panel)
            else:
                template_name, panel_context = panel
                panels.append(render_to_string(template_name, panel_context, request=request))
    return panels


@login_required
@require_http_methods(["GET", "POST"])
def profile(request):
    member = viewer_for(request.user).member
    if member is None:
        # Staff and people without a partner have no member profile; show what we know, read-only.
        if request.method != "GET":
            return HttpResponseNotAllowed(["GET"])
        return render(request, "partners/profile.html", {"member": None})
    region_zone = member.partner.region.time_zone or settings.TIME_ZONE
    if request.method == "POST":
        form = ProfileForm(request.POST, default_zone=region_zone)
        if form.is_valid():
            try:
                services.member_update_profile(member=member, **form.cleaned_data)
            except ApplicationError as exc:
                form.add_error(None, exc.message)
            else:
                remember_language(request, member.language)
                remember_time_zone(request, member)
                messages.success(request, _("Your profile has been saved."))
                return redirect("profile")
    else:
        form = ProfileForm(
            default_zone=region_zone,
            initial={
                "full_name": request.user.full_name,
                "phone": member.phone,
                "language": member.language,
                "preferred_channel": member.preferred_channel,
                "time_zone": member.time_zone,
                "show_name_on_leaderboards": member.show_name_on_leaderboards,
            },
        )
    return render(request, "partners/profile.html", {"member": member, "form": form})


# Team (partner owners) ------------------------------------------------------------------------------


def _member_columns(request, viewer: Viewer, partner, page) -> list[hooks.MemberColumn]:
    """The columns the apps above partners add to a page of people (hooks.provides_member_columns: what each person
    earned, their last activity…). Each person of the page gets `extra_cells`: (column, their cell or None) pairs."""
    members = page.object_list = list(page.object_list)
    columns = [
        column
        for provider in hooks.member_column_providers
        for column in provider(request=request, viewer=viewer, partner=partner, members=members)
    ]
    for member in members:
        member.extra_cells = [(column, column.cells.get(member.pk)) for column in columns]
    return columns


def _team_context(request, *, invite_form: InviteForm | None = None) -> dict:
    viewer = viewer_for(request.user)
    roles = selectors.role_list()
    filter_form = TeamFilterForm(request.GET, roles=roles)
    members = selectors.team_list(viewer=viewer, partner=viewer.partner, **filter_form.filters())
    page = Paginator(members, PAGE_SIZE).get_page(request.GET.get("page"))
    return {
        "partner": viewer.partner,
        "filter_form": filter_form,
        "is_filtered": any(filter_form.filters().values()),
        "page": page,
        "member_columns": _member_columns(request, viewer, viewer.partner, page),
        "invite_form": invite_form or InviteForm(roles=roles),
        "return_query": request.GET.urlencode(),
    }


def _team_url(query: str) -> str:
    """The team page with the search, filters and page (`query`) an action was taken from."""
    return f"{reverse('team')}?{query}" if query else reverse("team")


def _back_to_team(request):
    return redirect(_team_url(QueryDict(request.POST.get("return_query", "")).urlencode()))


@login_required
@owner_only
def team(request):
    return render_page_or_partial(request, "partners/team.html", "member-table", _team_context(request))


@owner_view("POST")
def team_invite(request):
    partner = viewer_for(request.user).partner
    form = InviteForm(request.POST, roles=selectors.role_list())
    if not form.is_valid():
        return render(request, "partners/team.html", _team_context(request, invite_form=form))
    try:
        invitation = services.invitation_send(
            partner=partner,
            email=form.cleaned_data["email"],
            role=form.cleaned_data["role"],
            invited_by=request.user,
        )
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("Invitation sent to %(email)s") % {"email": invitation.member.user.email})
    return redirect("team")


def _team_member(request, member_id: int) -> Member:
    return selectors.member_get(viewer=viewer_for(request.user), pk=member_id)


def _act(request, action: Callable[[], object], done: str):
    """Does `action` (a service call), says `done` or why it was refused, and goes back to the team page."""
    try:
        action()
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, done)
    return _back_to_team(request)


def _refuse(request, why: str):
    messages.error(request, why)
    return redirect("team")


@owner_view("POST")
def member_approve(request, member_id: int):
    member = _team_member(request, member_id)
    approve = partial(services.member_approve, member=member, actor=request.user)
    return _act(request, approve, f"{_name(member)} is now an active member of the team.")


@owner_view("POST")
def invitation_resend(request, member_id: int):
    member = _team_member(request, member_id)
    resend = partial(services.invitation_resend, member=member, actor=request.user)
    return _act(request, resend, f"A new invitation link was sent to {member.user.email}. The old link stops working.")


@owner_view("GET", "POST")
def member_deactivate(request, member_id: int):
    """GET asks for confirmation (works without JavaScript); POST deactivates."""
    member = _team_member(request, member_id)
    if request.method == "POST":
        form = DeactivateForm(request.POST)
        if form.is_valid():
            deactivate = partial(
                services.member_deactivate, member=member, actor=request.user, reason=form.cleaned_data["reason"]
            )
            return _act(request, deactivate, f"{_name(member)} has been deactivated and is no longer on the team.")
    else:
        if member.user_id == request.user.pk:
            return _refuse(request, "You cannot deactivate yourself.")
        if not member.can_deactivate():
            if member.status == MemberStatus.INVITED:
                return _refuse(request, f"{member.user.email} has not joined yet; cancel the invitation instead.")
            return _refuse(request, f"{_name(member)} has already left the team.")
        form = DeactivateForm()
    return_query = request.POST.get("return_query", request.GET.urlencode())
    context = {"member": member, "form": form, "return_query": return_query, "team_url": _team_url(return_query)}
    return render(request, "partners/member_deactivate.html", context)


@owner_view("GET", "POST")
def invitation_cancel(request, member_id: int):
    """GET asks for confirmation (works without JavaScript); POST cancels the invitation."""
    member = _team_member(request, member_id)
    if request.method == "POST":
        cancel = partial(services.invitation_cancel, member=member, actor=request.user)
        return _act(request, cancel, f"The invitation for {member.user.email} was cancelled.")
    if not member.can_cancel_invitation():
        if member.status == MemberStatus.LEFT:
            return _refuse(request, f"The invitation for {member.user.email} is no longer open.")
        return _refuse(request, f"{member.user.email} has already accepted the invitation.")
    return_query = request.GET.urlencode()
    context = {"member": member, "return_query": return_query, "team_url": _team_url(return_query)}
    return render(request, "partners/invitation_cancel.html", context)


# Company settings (partner owners) ------------------------------------------------------------------


@owner_view("GET", "POST")
def company(request):
    """The owner's company settings: how staff bonuses are paid. A change is confirmed on a second page
    (works without JavaScript); a POST without `confirm` asks, a POST with it changes the policy."""
    partner = viewer_for(request.user).partner
    if request.method == "POST":
        form = PayoutPolicyForm(request.POST)
        if not form.is_valid():
            messages.error(request, form.errors["payout_policy"][0])
            return redirect("company")
        policy = PayoutPolicy(form.cleaned_data["payout_policy"])
        if policy == partner.payout_policy:
            messages.info(
                request, _("Nothing changed: staff bonuses are already %(policy)s.") % {"policy": policy.label.lower()}
            )
            return redirect("company")
        if not form.cleaned_data["confirm"]:
            current = PayoutPolicy(partner.payout_policy)
            context = {"partner": partner, "policy": policy, "current": current}
            return render(request, "partners/payout_policy_confirm.html", context)
        try:
            services.partner_set_payout_policy(partner=partner, policy=policy, actor=request.user)
        except ApplicationError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, _("Staff bonuses are now %(policy)s.") % {"policy": policy.label.lower()})
        return redirect("company")
    form = PayoutPolicyForm(initial={"payout_policy": partner.payout_policy})
    return render(request, "partners/company.html", {"partner": partner, "form": form})


# Invitations (public) -------------------------------------------------------------------------------


def _invitation_problem(request, exc: ApplicationError):
    status = INVITATION_ERROR_STATUS.get(exc.code, 409)
    return render(request, "partners/invitation_problem.html", {"message": exc.message}, status=status)


@require_http_methods(["GET", "POST"])
def invitation_accept(request, token: str):
    try:
        invitation = services.invitation_get_by_token(token)
    except ApplicationError as exc:
        return _invitation_problem(request, exc)
    invited = invitation.member.user
    partner = invitation.member.partner
    context = {
        "invitation": invitation,
        "invited": invited,
        "partner": partner,
        "role": invitation.member.role,
        "InvitationStep": InvitationStep,
    }

    if request.user.is_authenticated and request.user.pk != invited.pk:
        context["step"] = InvitationStep.WRONG_USER
        return render(request, "partners/invitation_accept.html", context, status=403)
    new_person = not invited.has_usable_password()
    if not new_person and not request.user.is_authenticated:
        login_url = f"{reverse('account_login')}?{urlencode({'next': request.get_full_path()})}"
        context.update(step=InvitationStep.SIGN_IN, login_url=login_url)
        return render(request, "partners/invitation_accept.html", context)

    form = None
    if new_person:
        data = request.POST if request.method == "POST" else None
        form = InvitationSignupForm(data, initial={"full_name": invited.full_name})
    if request.method == "POST" and (form is None or form.is_valid()):
        try:
            if form is None:
                member = services.invitation_accept(token=token, user=invited)
            else:
                member = services.invitation_register(
                    token=token, full_name=form.cleaned_data["full_name"], password=form.cleaned_data["password1"]
                )
        except ApplicationError as exc:
            field = SIGNUP_ERROR_FIELDS.get(exc.code) if form is not None else None
            if field is None:
                return _invitation_problem(request, exc)
            form.add_error(field, exc.extra.get("messages") or exc.message)
        else:
            if new_person:
                # The person the service signed up, with the password just set (the session keeps its hash).
                login(request, member.user, backend=LOGIN_BACKEND)
            if member.status == MemberStatus.PENDING_APPROVAL:
                messages.success(
                    request,
                    _("Welcome to %(partner)s. The owner will approve you shortly.") % {"partner": partner.name},
                )
            else:
                messages.success(request, _("Welcome to %(partner)s.") % {"partner": partner.name})
            return redirect("home")

    step = InvitationStep.SIGN_UP if new_person else InvitationStep.JOIN
    return render(request, "partners/invitation_accept.html", {**context, "step": step, "form": form})


# Partners (account and program managers; an owner sees their own partner) --------------------------


@login_required
@managers_only
def partner_list(request):
    filter_form = PartnerFilterForm(request.GET, regions=selectors.region_list())
    filters = filter_form.filters()
    partners = selectors.partner_list(viewer=viewer_for(request.user), **filters)
    context = {
        "filter_form": filter_form,
        "is_filtered": any(filters.values()),
        "page": Paginator(partners, PAGE_SIZE).get_page(request.GET.get("page")),
    }
    return render_page_or_partial(request, "partners/partner_list.html", "partner-table", context)


@login_required
@owner_or_managers
def partner_detail(request, partner_id: int):
    viewer = viewer_for(request.user)
    partner = selectors.partner_get(viewer=viewer, pk=partner_id)
    members = selectors.team_list(viewer=viewer, partner=partner)
    page = Paginator(members, PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "partner": partner,
        "counts": selectors.team_counts(viewer=viewer, partner=partner),
        "page": page,
        "member_columns": _member_columns(request, viewer, partner, page),
        "is_own_partner": viewer.is_owner,
    }
    return render_page_or_partial(request, "partners/partner_detail.html", "member-table", context)
