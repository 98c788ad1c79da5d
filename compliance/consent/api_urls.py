from django.urls import path

from compliance.consent import views
from compliance.consent.api import ConsentsView

urlpatterns = [
    path("send-decisions", views.SendDecisionsView.as_view(), name="send-decisions"),
    path("consents", ConsentsView.as_view(), name="consents"),
]
