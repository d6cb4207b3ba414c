from django.urls import path

from communications import views_surveys as views

urlpatterns = [
    path("surveys/", views.survey_list, name="survey_list"),
    path("surveys/<int:survey_id>/", views.survey_page, name="survey_answer"),
    path("surveys/<int:survey_id>/thanks/", views.survey_thanks, name="survey_thanks"),
    path("feedback/", views.feedback_page, name="feedback"),
    path("feedback/<int:feedback_id>/photo/", views.feedback_photo, name="feedback_photo"),
]
