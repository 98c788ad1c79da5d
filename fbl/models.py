"""Inbound mail kept as received: reports, bounces, auto-replies and mailto unsubscribes."""

from django.db import models
from django.utils import timezone


class InboundMessage(models.Model):
    """One message as it arrived (compressed), whatever it turns out to be. Nothing that arrives
    is dropped: unparseable mail is kept for staff review."""

    class Source(models.TextChoices):
        PIPE = "pipe", "MTA pipe"
        HTTP = "http", "HTTP"
        MBOX = "mbox", "mbox backfill"
        MAILDIR = "maildir", "Maildir backfill"

    class Status(models.TextChoices):
        RECEIVED = "received", "Received, not yet processed"
        PROCESSED = "processed", "Processed"
        IGNORED = "ignored", "Ignored (auto-reply)"
        UNRECOGNISED = "unrecognised", "Unrecognised: for staff review"

    received_at = models.DateTimeField(default=timezone.now, db_index=True)
    source = models.CharField(max_length=10, choices=Source.choices)
    envelope_sender = models.CharField(max_length=320, blank=True)
    envelope_recipient = models.CharField(max_length=320, blank=True)
    raw_gzip = models.BinaryField(help_text="The message as received, gzip-compressed.")
    size = models.PositiveIntegerField(help_text="Bytes as received, before any truncation.")
    truncated = models.BooleanField(default=False)
    sha256 = models.CharField(
        max_length=64,
        unique=True,
        help_text="Of the bytes received: the same report twice is one row.",
    )
    times_received = models.PositiveIntegerField(default=1)
    kind = models.CharField(
        max_length=20,
        blank=True,
        help_text="arf, dsn, autoreply, unsubscribe or unknown, once processed",
    )
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.RECEIVED)
    note = models.TextField(blank=True, help_text="What processing found or why it stopped.")

    class Meta:
        ordering = ["-received_at"]
        verbose_name = "inbound message"

    def __str__(self) -> str:
        return f"{self.get_source_display()} message #{self.pk} ({self.kind or self.status})"
