from django.urls import path

from loyalty.views import earning as views

urlpatterns = [
    path("", views.how_to_earn, name="how_to_earn"),
]
