from django.urls import path

from compliance.dsr import pages

urlpatterns = [
    path("dsr/<str:token>", pages.verify, name="dsr-verify"),
    path("dsr/<str:token>/export", pages.export, name="dsr-export"),
]
