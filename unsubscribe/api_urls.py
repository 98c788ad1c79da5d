from django.urls import path

from unsubscribe.api import UnsubscribeLinksView

urlpatterns = [
    path("unsubscribe-links", UnsubscribeLinksView.as_view(), name="unsubscribe-links"),
]
