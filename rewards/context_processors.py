"""What the rewards templates compare with and look up, on every page: order statuses and who pays are compared
with these constants (`order.paid_by == PaidBy.COMPANY`), never with strings."""

from rewards.constants import OrderStatus, PaidBy

# The colour of each order status's badge (templates/includes/order_status_badge.html). Every status has one.
ORDER_STATUS_BADGES = {
    OrderStatus.PLACED: "text-bg-warning",
    OrderStatus.APPROVED: "text-bg-info",
    OrderStatus.FULFILLED: "text-bg-success",
    OrderStatus.DELIVERED: "text-bg-success",
    OrderStatus.REJECTED: "text-bg-secondary",
    OrderStatus.CANCELLED: "text-bg-secondary",
}


def constants(request):
    return {"OrderStatus": OrderStatus, "PaidBy": PaidBy, "ORDER_STATUS_BADGES": ORDER_STATUS_BADGES}
