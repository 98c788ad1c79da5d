"""Downstream systems (ESPs, CRMs, marketing platforms) that must apply opt-outs too, the events
they are sent and each delivery's state.

Events are written in the transaction of the change they announce (an outbox), so none is lost
and none is sent for a change that rolled back. A delivery is one event for one endpoint.
"""

from django.db import models

from compliance.models import OptOutRequest, Tenant


class DownstreamEndpoint(models.Model):
    url = models.URLField(max_length=500, help_text="HTTPS; receives signed POSTs.")
    secret = models.CharField(
        max_length=100,
        help_text="Standard Webhooks secret (whsec_…): the receiver verifies with it.",
    )
    event_types = models.JSONField(default=list, help_text="The event types it wants.")
    tenant = models.ForeignKey(
        Tenant,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="Only this tenant's events; empty: every tenant's and the shared ones.",
    )
    description = models.CharField(max_length=200, blank=True)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["pk"]
        verbose_name = "downstream endpoint"

    def __str__(self) -> str:
        return self.url


class WebhookEvent(models.Model):
    """One event, as sent to every endpoint that wants it."""

    public_id = models.CharField(max_length=40, unique=True, help_text="The webhook-id header.")
    event_type = models.CharField(max_length=40)
    occurred_at = models.DateTimeField()
    tenant = models.ForeignKey(Tenant, null=True, on_delete=models.PROTECT, related_name="+")
    address_hash = models.BinaryField(
        max_length=32, help_text="Events for one address go in order."
    )
    body = models.TextField(help_text="The JSON sent, signed as it is stored.")
    opt_out = models.ForeignKey(
        OptOutRequest,
        null=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The opt-out this event propagates: its clock stops when all are delivered.",
    )

    class Meta:
        ordering = ["pk"]
        indexes = [models.Index(fields=["address_hash"], name="webhook_event_by_hash")]

    def __str__(self) -> str:
        return f"{self.event_type} {self.public_id}"


class WebhookDelivery(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        DELIVERED = "delivered", "Delivered"
        DEAD = "dead", "Dead letter"

    endpoint = models.ForeignKey(DownstreamEndpoint, on_delete=models.CASCADE, related_name="+")
    event = models.ForeignKey(WebhookEvent, on_delete=models.CASCADE, related_name="deliveries")
    # The event's address hash, copied so "is an earlier event for this address still pending"
    # is answered from this table's index alone.
    order_key = models.BinaryField(max_length=32)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["pk"]
        verbose_name = "webhook delivery"
        verbose_name_plural = "webhook deliveries"
        constraints = [
            models.UniqueConstraint(fields=["endpoint", "event"], name="delivery_once_per_endpoint")
        ]
        indexes = [
            models.Index(
                fields=["endpoint", "next_attempt_at"],
                condition=models.Q(status="pending"),
                name="delivery_due",
            ),
            models.Index(
                fields=["endpoint", "order_key", "event"],
                condition=models.Q(status="pending"),
                name="delivery_pending_in_order",
            ),
            models.Index(
                fields=["endpoint", "event"],
                condition=models.Q(status="pending"),
                name="delivery_pending_by_event",
            ),
            models.Index(fields=["endpoint", "status"], name="delivery_by_status"),
        ]

    def __str__(self) -> str:
        return f"{self.event} → {self.endpoint}"


class DeadLetter(WebhookDelivery):
    """The deliveries that ran out of tries, listed on their own for staff to retry."""

    class Meta:
        proxy = True
        verbose_name = "dead letter"
