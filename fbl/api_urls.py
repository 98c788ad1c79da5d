"""The API of inbound reports and relay events, under /api/v1/."""

from django.urls import path

from fbl.views import counts, esp, events, reports

urlpatterns = [
    path("reports", reports.ReportsView.as_view(), name="reports"),
    path("delivery-counts", counts.DeliveryCountsView.as_view(), name="delivery-counts"),
    path("events/kumomta", events.KumoMtaEventsView.as_view(), name="events-kumomta"),
    # ESP tracking webhooks (django-anymail), for the ESPs named in ESP_WEBHOOKS
    path(
        "events/esp/<slug:esp>/tracking/",
        esp.EspTrackingWebhookView.as_view(),
        name="events-esp-tracking",
    ),
]
