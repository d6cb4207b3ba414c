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
from django.views.decorators.http import require_http_methods, require_POST

from loyalty.common.errors import ApplicationError
from loyalty.common.htmx import render_page_or_partial
from loyalty.models import PointsAccount
from loyalty.views.decorators import member_in_program_required
from partners.visibility import Viewer, viewer_kind
from rewards import selectors, services
from rewards.constants import OrderStatus, PaidBy
from rewards.forms import CancelOrderForm, CatalogueFilterForm, CheckoutForm, QuantityForm
from rewards.models import RedemptionOrder, Reward, RewardCategory

CATALOGUE_PAGE_SIZE = 24
ORDER_PAGE_SIZE = 25


member_required = member_in_program_required("The rewards catalogue is for partner members.")


def _balances(member, program) -> dict[str, int | None]:
    """Available points per payer: the member's own, and the company's for a partner owner."""
    accounts = PointsAccount.objects.filter(program=program)
    balances = {
        PaidBy.MEMBER: accounts.filter(member=member).values_list("available", flat=True).first() or 0,
        PaidBy.COMPANY: None,
    }
    if viewer_kind(member.user) == Viewer.OWNER:
        balances[PaidBy.COMPANY] = (
            accounts.filter(partner=member.partner_id).values_list("available", flat=True).first() or 0
        )
    return balances


@member_required
def catalogue(request):
    categories = list(RewardCategory.objects.all())
    form = CatalogueFilterForm(request.GET or None, categories=categories)
    filters = form.filters() if request.GET else {"search": "", "category": "", "affordable": False}
    balances = _balances(request.member, request.program)
    rewards = selectors.catalogue(
        member=request.member,
        program=request.program,
        category=filters["category"],
        search=filters["search"],
        max_points=balances[PaidBy.MEMBER] if filters["affordable"] else None,
        max_company_points=balances[PaidBy.COMPANY] if filters["affordable"] else None,
    )
    page = Paginator(rewards, CATALOGUE_PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "filter_form": form,
        "page": page,
        "balances": balances,
        "is_filtered": any(filters.values()),
        "cart_count": request.member.cart_items.count(),
    }
    return render_page_or_partial(request, "rewards/catalogue.html", "reward-grid", context)


@member_required
def reward_detail(request, reward_id: int):
    try:
        reward = selectors.reward_get(member=request.member, program=request.program, pk=reward_id, free_codes=True)
    except Reward.DoesNotExist:
        raise Http404("This reward is not in your catalogue.") from None
    in_cart = request.member.cart_items.filter(reward=reward).values_list("quantity", flat=True).first()
    balances = _balances(request.member, request.program)
    limit_left = selectors.limit_left(reward=reward, member=request.member)
    # Offer one-tap redemption only when it can succeed: nothing to ship, affordable, in stock, within limits.
    can_redeem_now = (
        not reward.ships
        and (balances[reward.paid_by] or 0) >= reward.points_price
        and (reward.free_codes > 0 if reward.uses_codes else reward.stock is None or reward.stock > 0)
        and (limit_left is None or limit_left > 0)
    )
    context = {
        "reward": reward,
        "form": QuantityForm(initial={"quantity": in_cart or 1}),
        "in_cart": in_cart,
        "balances": balances,
        "limit_left": limit_left,
        "can_redeem_now": can_redeem_now,
        "checkout_key": uuid.uuid4().hex,
    }
    return render(request, "rewards/reward_detail.html", context)


@member_required
@require_POST
def cart_update(request, reward_id: int):
    try:
        reward = selectors.reward_get(member=request.member, program=request.program, pk=reward_id)
    except Reward.DoesNotExist:
        raise Http404("This reward is not in your catalogue.") from None
    form = QuantityForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Enter a quantity from 0 to 50.")
        return redirect("reward_detail", reward_id=reward.pk)
    quantity = form.cleaned_data["quantity"]
    try:
        services.cart_set(member=request.member, reward=reward, quantity=quantity)
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return redirect("reward_detail", reward_id=reward.pk)
    if quantity:
        messages.success(request, f"{reward.name} × {quantity} is in your cart.")
    else:
        messages.success(request, f"{reward.name} was removed from your cart.")
    return redirect(request.POST.get("next") if request.POST.get("next") == reverse("cart") else "cart")


def _cart_groups(member, balances) -> list[dict]:
    groups = []
    items = selectors.cart(member=member)
    for paid_by in (PaidBy.MEMBER, PaidBy.COMPANY):
        lines = [item for item in items if item.reward.paid_by == paid_by]
        if not lines:
            continue
        total = sum(item.reward.points_price * item.quantity for item in lines)
        available = balances[paid_by]
        groups.append(
            {
                "paid_by": paid_by,
                "label": "Paid from my points" if paid_by == PaidBy.MEMBER else "Paid from the company account",
                "items": [{"item": item, "total": item.reward.points_price * item.quantity} for item in lines],
                "total": total,
                "available": available,
                "can_pay": available is not None and available >= total,
                "ships": any(item.reward.ships for item in lines),
            }
        )
    return groups


@member_required
@require_POST
def redeem_now(request, reward_id: int):
    """One tap on a phone: redeem one reward without the cart. Shipped items still need the checkout's
    address form, so they go through the cart."""
    try:
        reward = selectors.reward_get(member=request.member, program=request.program, pk=reward_id)
    except Reward.DoesNotExist:
        raise Http404("This reward is not in your catalogue.") from None
    form = QuantityForm(request.POST)
    key = request.POST.get("checkout_key", "")
    if reward.ships or not form.is_valid() or not form.cleaned_data["quantity"] or not 8 <= len(key) <= 64:
        messages.error(request, "Choose a quantity from 1 to 50, then redeem again.")
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


def _placed_message(order: RedemptionOrder) -> str:
    if order.status == OrderStatus.PLACED:
        return f"Order {order.pk} is placed and waits for the program team's approval."
    return f"Order {order.pk} is confirmed."


@member_required
def cart(request):
    balances = _balances(request.member, request.program)
    return render(request, "rewards/cart.html", {"groups": _cart_groups(request.member, balances)})


@member_required
@require_http_methods(["GET", "POST"])
def checkout(request, paid_by: str):
    if paid_by not in PaidBy.values:
        raise Http404("Unknown account.")
    balances = _balances(request.member, request.program)
    group = next((g for g in _cart_groups(request.member, balances) if g["paid_by"] == paid_by), None)
    if group is None:
        messages.info(request, "Your cart has nothing to check out from that account.")
        return redirect("cart")
    if request.method == "POST":
        form = CheckoutForm(request.POST, ships=group["ships"])
        if form.is_valid():
            try:
                order = services.order_place(
                    member=request.member,
                    program=request.program,
                    items=[(line["item"].reward, line["item"].quantity) for line in group["items"]],
                    paid_by=paid_by,
                    checkout_key=f"{request.member.pk}:{form.cleaned_data['checkout_key']}",
                    address=form.address() if group["ships"] else None,
                )
            except ApplicationError as exc:
                form.add_error(None, exc.message)
            else:
                messages.success(request, _placed_message(order))
                return redirect("order_detail", order_id=order.pk)
    else:
        user = request.user
        form = CheckoutForm(
            initial={"checkout_key": uuid.uuid4().hex, "name": user.full_name, "phone": request.member.phone},
            ships=group["ships"],
        )
    return render(request, "rewards/checkout.html", {"form": form, "group": group})


@login_required
def order_list(request):
    status = request.GET.get("status", "")
    if status not in OrderStatus.values:
        status = ""
    orders = selectors.order_list(viewer=request.user, status=status)
    page = Paginator(orders, ORDER_PAGE_SIZE).get_page(request.GET.get("page"))
    context = {"page": page, "status": status, "statuses": OrderStatus.choices}
    return render_page_or_partial(request, "rewards/order_list.html", "order-table", context)


def _get_order(request, order_id: int) -> RedemptionOrder:
    try:
        return selectors.order_get(viewer=request.user, pk=order_id)
    except RedemptionOrder.DoesNotExist:
        raise Http404("No such order.") from None


@login_required
def order_detail(request, order_id: int):
    order = _get_order(request, order_id)
    # Codes are as good as money: only the person who ordered sees them.
    show_codes = order.member.user_id == request.user.pk and order.status in (
        OrderStatus.FULFILLED,
        OrderStatus.DELIVERED,
    )
    can_cancel = order.can_cancel() and order.status == OrderStatus.PLACED and order.member.user_id == request.user.pk
    return render(
        request, "rewards/order_detail.html", {"order": order, "show_codes": show_codes, "can_cancel": can_cancel}
    )


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
            messages.success(request, f"Order {order.pk} is cancelled and its points are back in the account.")
        return redirect("order_detail", order_id=order.pk)
    return render(request, "rewards/order_cancel.html", {"order": order, "form": form})
