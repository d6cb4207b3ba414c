from django.urls import path

from rewards import views

urlpatterns = [
    path("", views.catalogue, name="catalogue"),
    path("<int:reward_id>/", views.reward_detail, name="reward_detail"),
    path("<int:reward_id>/cart/", views.cart_update, name="cart_update"),
    path("<int:reward_id>/redeem/", views.redeem_now, name="redeem_now"),
    path("cart/", views.cart, name="cart"),
    path("checkout/<str:paid_by>/", views.checkout, name="checkout"),
    path("orders/", views.order_list, name="order_list"),
    path("orders/<int:order_id>/", views.order_detail, name="order_detail"),
    path("orders/<int:order_id>/cancel/", views.order_cancel, name="order_cancel"),
]
