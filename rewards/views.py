"""The rewards pages of the member site: catalogue, cart, checkout and orders.

Thin views over rewards.selectors (reads, scoped by partners.visibility) and rewards.services (writes).
"""

import uuid

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods, require_POST

from loyalty.common.errors import ApplicationError
from loyalty.common.htmx import render_page_or_partial
from loyalty.views.decorators import member_in_program_required
from loyalty.views.shortcuts import get_or_404
from partners.forms import StatusFilterForm
from partners.visibility import viewer_for
from rewards import selectors, services
from rewards.constants import OrderStatus, PaidBy
from rewards.forms import CancelOrderForm, CatalogueFilterForm, CheckoutForm, QuantityForm, checkout_lines
from rewards.models import RedemptionOrder, Reward

CATALOGUE_PAGE_SIZE = 24
EVENTS_SHOWN = 6
ORDER_PAGE_SIZE = 25


member_required = member_in_program_required(gettext_lazy("The rewards catalogue is for partner members."))


def _get_reward(request, reward_id: int, **options) -> Reward:
    """A reward of the member's catalogue; `options` go to the selector."""
    message = _("This reward is not in your catalogue.")
    lookup = {"member": request.member, "program": request.program, "pk": reward_id, **options}
    return get_or_404(Reward, selectors.reward_get, message, **lookup)


@member_required
def catalogue(request):
    form = CatalogueFilterForm(request.GET or None, categories=selectors.category_list())
    filters = form.filters() if request.GET else {"search": "", "category": "", "affordable": False}
    balances = selectors.balances(viewer=viewer_for(request.user), program=request.program)
    rewards = selectors.catalogue(
        member=request.member,
        program=request.program,
        category=filters["category"],
        search=filters["search"],
        max_points=balances[PaidBy.MEMBER] if filters["affordable"] else None,
        max_company_points=balances[PaidBy.COMPANY] if filters["affordable"] else None,
    )
    page = Paginator(selectors.with_seats(rewards), CATALOGUE_PAGE_SIZE).get_page(request.GET.get("page"))
    # The next dated events and sessions come first, on the unfiltered catalogue's first page.
    show_events = not request.GET and not request.htmx
    events = selectors.upcoming_events(rewards=rewards, limit=EVENTS_SHOWN)
    context = {
        "filter_form": form,
        "page": page,
        "events": list(events) if show_events else [],
        "balances": balances,
        "is_filtered": any(filters.values()),
        "cart_count": selectors.cart_count(member=request.member),
    }
    return render_page_or_partial(request, "rewards/catalogue.html", "reward-grid", context)


@member_required
def reward_detail(request, reward_id: int):
    reward = _get_reward(request, reward_id, free_codes=True)
    if reward.event_starts_at is not None:
        reward.seat_capacity = selectors.seat_capacity(reward=reward)
    in_cart = selectors.cart_quantity(member=request.member, reward=reward)
    balances = selectors.balances(viewer=viewer_for(request.user), program=request.program)
    limit_left = selectors.limit_left(reward=reward, member=request.member)
    context = {
        "reward": reward,
        "form": QuantityForm(initial={"quantity": in_cart or 1}),
        "in_cart": in_cart,
        "balances": balances,
        "limit_left": limit_left,
        # "Redeem now" is offered only when it can succeed (in one tap, or through the address step).
        "can_redeem_now": selectors.can_redeem_now(reward=reward, balances=balances, limit_left=limit_left),
        "checkout_key": uuid.uuid4().hex,
    }
    return render(request, "rewards/reward_detail.html", context)


@member_required
@require_POST
def cart_update(request, reward_id: int):
    form = QuantityForm(request.POST)
    quantity = form.cleaned_data["quantity"] if form.is_valid() else None
    # Any line of the cart can be removed, also one whose reward has left the catalogue since.
    in_cart = selectors.cart_reward(member=request.member, pk=reward_id) if quantity == 0 else None
    reward = in_cart or _get_reward(request, reward_id)
    if quantity is None:
        messages.error(request, _("Enter a quantity from 0 to 50."))
        return redirect("reward_detail", reward_id=reward.pk)
    try:
        services.cart_set(member=request.member, reward=reward, quantity=quantity)
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return redirect("reward_detail", reward_id=reward.pk)
    if quantity:
        messages.success(
            request, _("%(reward)s × %(quantity)d is in your cart.") % {"reward": reward.name, "quantity": quantity}
        )
    else:
        messages.success(request, _("%(reward)s was removed from your cart.") % {"reward": reward.name})
    # Back to the page the change was made on: the cart, or the checkout (which can remove lines too).
    pages = {reverse("cart"), reverse("checkout", args=[reward.paid_by])}
    return redirect(request.POST["next"] if request.POST.get("next") in pages else "cart")


@member_required
@require_http_methods(["GET", "POST"])
def redeem_now(request, reward_id: int):
    """One tap on a phone: redeem one reward without the cart. A reward that is shipped or set up on site needs an
    address, so it goes through the address step instead: the checkout page of that one reward."""
    reward = _get_reward(request, reward_id)
    if reward.needs_address:
        return _address_step(request, reward)
    if request.method == "GET":
        return redirect("reward_detail", reward_id=reward.pk)
    form = QuantityForm(request.POST)
    key = request.POST.get("checkout_key", "")
    if not form.is_valid() or not form.cleaned_data["quantity"] or not 8 <= len(key) <= 64:
        messages.error(request, _("Choose a quantity from 1 to 50, then redeem again."))
        return redirect("reward_detail", reward_id=reward.pk)
    try:
        order = services.order_place(
            member=request.member,
            program=request.program,
            items=[(reward, form.cleaned_data["quantity"])],
            paid_by=reward.paid_by,
            checkout_key=f"{request.member.pk}:{key}",
        )
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return redirect("reward_detail", reward_id=reward.pk)
    messages.success(request, _placed_message(order))
    return redirect("order_detail", order_id=order.pk)


def _address_step(request, reward: Reward):
    if request.method == "POST":  # a one-tap post (an old page, say): the address comes first
        message = _("Where should %(reward)s go? Enter the address to redeem it.") % {"reward": reward.name}
        messages.info(request, message)
        return redirect("redeem_now", reward_id=reward.pk)
    balances = selectors.balances(viewer=viewer_for(request.user), program=request.program)
    lines = [(reward.pk, 1)]
    group = selectors.checkout_group(
        member=request.member, program=request.program, paid_by=reward.paid_by, lines=lines, balances=balances
    )
    return _checkout_page(request, group)


def _placed_message(order: RedemptionOrder) -> str:
    if order.status == OrderStatus.PLACED:
        return _("Order %(order)s is placed and waits for the program team's approval.") % {"order": order.pk}
    return _("Order %(order)s is confirmed.") % {"order": order.pk}


@member_required
def cart(request):
    balances = selectors.balances(viewer=viewer_for(request.user), program=request.program)
    groups = selectors.cart_groups(member=request.member, program=request.program, balances=balances)
    return render(request, "rewards/cart.html", {"groups": groups})


@member_required
@require_http_methods(["GET", "POST"])
def checkout(request, paid_by: str):
    """Check out one account's lines: on GET the cart's; on POST the lines the page showed (the cart's, or the one
    reward of a "Redeem now" address step), so that a repeated post asks for the very same order."""
    if paid_by not in PaidBy.values:
        raise Http404("Unknown account.")
    balances = selectors.balances(viewer=viewer_for(request.user), program=request.program)
    if request.method == "GET":
        groups = selectors.cart_groups(member=request.member, program=request.program, balances=balances)
        group = next((g for g in groups if g.paid_by == paid_by), None)
        if group is None:
            messages.info(request, _("Your cart has nothing to check out from that account."))
            return redirect("cart")
        return _checkout_page(request, group)
    group = selectors.checkout_group(
        member=request.member,
        program=request.program,
        paid_by=paid_by,
        lines=checkout_lines(request.POST.get("lines", "")),
        balances=balances,
    )
    if group is None:
        messages.error(request, _("Your cart changed during the checkout. Check it, then check out again."))
        return redirect("checkout", paid_by=paid_by)
    form = CheckoutForm(request.POST, needs_address=group.needs_address)
    if form.is_valid():
        try:
            order = services.order_place(
                member=request.member,
                program=request.program,
                items=group.items,
                paid_by=paid_by,
                checkout_key=f"{request.member.pk}:{form.cleaned_data['checkout_key']}",
                address=form.address() if group.needs_address else None,
            )
        except ApplicationError as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(request, _placed_message(order))
            return redirect("order_detail", order_id=order.pk)
    return _checkout_page(request, group, form)


def _checkout_page(request, group: selectors.CheckoutGroup, form: CheckoutForm | None = None):
    """The checkout page of `group`; a new form, prefilled with the member's last delivery address, unless given."""
    if form is None:
        initial = {"checkout_key": uuid.uuid4().hex, "name": request.user.full_name, "phone": request.member.phone}
        if group.needs_address:
            last = selectors.last_delivery_address(member=request.member)
            initial.update({field: value for field, value in last.items() if value})
        form = CheckoutForm(initial=initial, needs_address=group.needs_address)
    return render(request, "rewards/checkout.html", {"form": form, "group": group})


@login_required
def order_list(request):
    form = StatusFilterForm(request.GET, statuses=OrderStatus.choices)
    status = form.filters()["status"]
    orders = selectors.order_list(viewer=viewer_for(request.user), status=status)
    page = Paginator(orders, ORDER_PAGE_SIZE).get_page(request.GET.get("page"))
    context = {"page": page, "status": status, "filter_form": form}
    if not request.htmx:
        context["upcoming_seats"] = list(selectors.upcoming_seats(viewer=viewer_for(request.user)))
    return render_page_or_partial(request, "rewards/order_list.html", "order-table", context)


def _get_order(request, order_id: int) -> RedemptionOrder:
    return get_or_404(
        RedemptionOrder, selectors.order_get, _("No such order."), viewer=viewer_for(request.user), pk=order_id
    )


@login_required
def order_detail(request, order_id: int):
    order = _get_order(request, order_id)
    viewer = viewer_for(request.user)
    context = {
        "order": order,
        "history": selectors.order_history(order=order),
        "show_codes": selectors.can_see_codes(viewer=viewer, order=order),
        "can_cancel": services.can_cancel(viewer=viewer, order=order),
    }
    return render(request, "rewards/order_detail.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def order_cancel(request, order_id: int):
    order = _get_order(request, order_id)
    form = CancelOrderForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.order_transition(
                order=order, to=OrderStatus.CANCELLED, actor=request.user, note=form.cleaned_data["reason"]
            )
        except ApplicationError as exc:
            messages.error(request, exc.message)
        else:
            message = _("Order %(order)s is cancelled and its points are back in the account.") % {"order": order.pk}
            messages.success(request, message)
        return redirect("order_detail", order_id=order.pk)
    context = {
        "order": order,
        "form": form,
        "can_cancel": services.can_cancel(viewer=viewer_for(request.user), order=order),
    }
    return render(request, "rewards/order_cancel.html", context)
