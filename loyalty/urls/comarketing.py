from django.urls import path

from loyalty.views import comarketing as views

urlpatterns = [
    path("", views.mdf_overview, name="mdf_overview"),
    path("new/", views.mdf_request_new, name="mdf_request_new"),
    path("<int:request_id>/", views.mdf_request_detail, name="mdf_request_detail"),
    path("<int:request_id>/claim/", views.mdf_request_claim, name="mdf_request_claim"),
    path("<int:request_id>/withdraw/", views.mdf_request_withdraw, name="mdf_request_withdraw"),
    path("proofs/<int:proof_id>/", views.mdf_proof, name="mdf_proof"),
]
