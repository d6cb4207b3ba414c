from django.urls import path

from loyalty.views import training as views

urlpatterns = [
    path("", views.learn, name="learn"),
    path("modules/<int:module_id>/", views.module_detail, name="module_detail"),
    path("modules/<int:module_id>/quiz/", views.quiz_start, name="quiz_start"),
    path("quiz/<int:attempt_id>/", views.quiz_take, name="quiz_take"),
    path("quiz/<int:attempt_id>/result/", views.quiz_result, name="quiz_result"),
    path("courses/<int:course_id>/certificate/", views.certificate_download, name="certificate_download"),
]
