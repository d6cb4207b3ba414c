"""The short links in messages, at the site's root (/m/<code>) to keep them short enough for an SMS."""

from django.urls import path

from communications import views_links

urlpatterns = [
    path("m/<str:code>", views_links.delivery_link, name="delivery_link"),
]
