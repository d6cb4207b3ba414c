from django.urls import path

from communications import views

urlpatterns = [
    path("", views.inbox_page, name="inbox"),
    path("read/", views.inbox_read_all, name="inbox_read_all"),
    path("<int:delivery_id>/read/", views.message_read, name="message_read"),
    path("<int:delivery_id>/open/", views.message_open, name="message_open"),
    path("preferences/", views.preferences_page, name="message_preferences"),
    path("unsubscribe/<str:token>/", views.unsubscribe, name="unsubscribe"),
]
