from django.urls import path

from loyalty.views import draws as views

urlpatterns = [
    path("", views.draw_list, name="draw_list"),
    path("<int:draw_id>/", views.draw_detail, name="draw_detail"),
    path("<int:draw_id>/buy/", views.draw_buy, name="draw_buy"),
    path("<int:draw_id>/free-entry/", views.draw_free_entry, name="draw_free_entry"),
    path("<int:draw_id>/verify/", views.draw_verify, name="draw_verify"),
    path("<int:draw_id>/entries.txt", views.draw_entry_list, name="draw_entry_list"),
]
