from django.urls import path

from compliance.consent.api import ConsentsView

urlpatterns = [
    path("consents", ConsentsView.as_view(), name="consents"),
]
