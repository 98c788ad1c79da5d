from django.urls import path

from compliance.consent import pages

app_name = "consent"

urlpatterns = [
    path("confirm/<str:token>", pages.confirm, name="confirm"),
]
