from django.urls import path

from loyalty.views import returns as views

urlpatterns = [
    path("", views.return_list, name="return_list"),
    path("new/", views.return_new, name="return_new"),
    path("to-confirm/", views.return_to_confirm, name="return_to_confirm"),
    path("<int:return_id>/confirm/", views.return_confirm, name="return_confirm"),
    path("<int:return_id>/reject/", views.return_reject, name="return_reject"),
]
