from django.urls import path

from loyalty.views import claims as views

urlpatterns = [
    path("", views.claim_list, name="claim_list"),
    path("new/", views.claim_new, name="claim_new"),
    path("products/", views.product_search, name="claim_product_search"),
    path("<int:claim_id>/", views.claim_detail, name="claim_detail"),
    path("<int:claim_id>/correct/", views.claim_resubmit, name="claim_resubmit"),
    path("<int:claim_id>/withdraw/", views.claim_withdraw, name="claim_withdraw"),
    path("<int:claim_id>/invoice/", views.claim_document, name="claim_document"),
]
