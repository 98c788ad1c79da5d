"""The API of inbound reports and relay events, under /api/v1/."""

from django.urls import include, path

from fbl.views import counts, events, reports

urlpatterns = [
    path("reports", reports.ReportsView.as_view(), name="reports"),
    path("delivery-counts", counts.DeliveryCountsView.as_view(), name="delivery-counts"),
    path("events/kumomta", events.KumoMtaEventsView.as_view(), name="events-kumomta"),
    # ESP tracking webhooks: /api/v1/events/esp/<esp>/tracking/ (django-anymail)
    path("events/esp/", include("anymail.urls")),
]
