from django.urls import path

from compliance.consent import views

urlpatterns = [
    path("send-decisions", views.SendDecisionsView.as_view(), name="send-decisions"),
]
