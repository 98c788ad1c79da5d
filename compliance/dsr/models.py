"""A data-subject request and every step of its handling."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from compliance.models import ActorStamped, Tenant


class DataSubjectRequest(models.Model):
    class Kind(models.TextChoices):
        ACCESS = "access", "Access (Art. 15)"
        ERASURE = "erasure", "Erasure (Art. 17)"
        OBJECTION = "objection", "Objection to direct marketing (Art. 21)"
        RECTIFICATION = "rectification", "Rectification (Art. 16)"
        RESTRICTION = "restriction", "Restriction of processing (Art. 18)"

    class Status(models.TextChoices):
        AWAITING_VERIFICATION = "awaiting_verification", "Awaiting verification"
        VERIFIED = "verified", "Verified"
        IN_PROGRESS = "in_progress", "In progress"
        FULFILLED = "fulfilled", "Fulfilled"
        REFUSED = "refused", "Refused"
        EXPIRED = "expired", "Expired unverified"

    OPEN = (Status.AWAITING_VERIFICATION, Status.VERIFIED, Status.IN_PROGRESS)

    kind = models.CharField(max_length=20, choices=Kind.choices)
    tenant = models.ForeignKey(
        Tenant,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="Empty: every tenant of the operator.",
    )
    # NULL once an erasure is fulfilled: the request is then known by the hash alone.
    address = models.CharField(max_length=320, null=True, blank=True)  # noqa: DJ001
    address_hash = models.BinaryField(max_length=32, editable=False)
    received_at = models.DateTimeField()
    due = models.DateField(help_text="One month after receipt, by the calendar (Art. 12(3)).")
    extended_by_months = models.PositiveSmallIntegerField(default=0)
    extension_reason = models.TextField(blank=True)
    status = models.CharField(
        max_length=30, choices=Status.choices, default=Status.AWAITING_VERIFICATION
    )
    status_reason = models.TextField(blank=True, help_text="Why it was refused, or a note.")
    handled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    verification_token_hash = models.CharField(max_length=64, unique=True, editable=False)
    verification_expires_at = models.DateTimeField()
    verified_at = models.DateTimeField(null=True, blank=True)
    fulfilled_at = models.DateTimeField(null=True, blank=True)
    # Access: where the requester downloads the export, until when. Only a hash of the link's
    # token is kept.
    export_token_hash = models.CharField(max_length=64, null=True, blank=True, editable=False)  # noqa: DJ001
    export_expires_at = models.DateTimeField(null=True, blank=True)
    # Erasure: how far a resumable erasure has come (the steps done, by name).
    progress = models.JSONField(default=dict, blank=True, editable=False)
    # The last deadline state staff were told of (compliance.deadlines.RequestState); back to 0
    # when the request is extended, since its new due day is a new deadline.
    alert_state = models.PositiveSmallIntegerField(default=0, editable=False)

    class Meta:
        ordering = ["due", "received_at"]
        verbose_name = "data-subject request"
        indexes = [
            models.Index(fields=["status", "due"]),
            models.Index(fields=["address_hash"]),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.pk} ({self.get_status_display()})"

    @property
    def is_open(self) -> bool:
        return self.status in self.OPEN


class RequestStep(ActorStamped):
    """One thing that happened to a request: append-only, with who did it."""

    class Step(models.TextChoices):
        RECEIVED = "received", "Received"
        VERIFICATION_SENT = "verification_sent", "Verification mail sent"
        VERIFIED = "verified", "Verified"
        EXTENDED = "extended", "Deadline extended"
        STARTED = "started", "Work started"
        FULFILLED = "fulfilled", "Fulfilled"
        REFUSED = "refused", "Refused"
        EXPIRED = "expired", "Expired unverified"
        EXPORTED = "exported", "Export downloaded"
        NOTE = "note", "Note"

    request = models.ForeignKey(DataSubjectRequest, on_delete=models.PROTECT, related_name="steps")
    step = models.CharField(max_length=20, choices=Step.choices)
    note = models.TextField(blank=True)
    occurred_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["occurred_at", "id"]

    def __str__(self) -> str:
        return f"{self.get_step_display()} at {self.occurred_at:%Y-%m-%d %H:%M}"
