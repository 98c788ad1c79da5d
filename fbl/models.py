"""Inbound mail kept as received: reports, bounces, auto-replies and mailto unsubscribes."""

import gzip

from django.conf import settings
from django.db import models
from django.utils import timezone


# A count or alert may belong to no tenant or stream (a report nobody could attribute). NULLs are
# distinct in a unique constraint, and `nulls_distinct=False` exists on PostgreSQL 15+ only (not
# on SQLite), so the uniqueness is kept on generated columns that read 0 for "none" instead:
# the foreign keys stay true nullable keys, the database derives the keys, and
# `INSERT ... ON CONFLICT` names them on SQLite and PostgreSQL alike.
def _key_of(field: str) -> models.GeneratedField:
    return models.GeneratedField(
        expression=models.functions.Coalesce(field, 0),
        output_field=models.BigIntegerField(),
        db_persist=True,
    )


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
        PENDING_REVIEW = "pending_review", "Untrusted report: waiting for staff review"
        REJECTED = "rejected", "Rejected by staff"

    received_at = models.DateTimeField(default=timezone.now, db_index=True)
    source = models.CharField(max_length=10, choices=Source.choices)
    # The tenant of the key that posted it (None: the operator's own MTA or an unbound key).
    # Everything the message makes acts for this tenant only, and the same bytes posted by two
    # tenants are two messages: one tenant never learns of the other's.
    tenant = models.ForeignKey(
        "compliance.Tenant", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    operator_level = models.BooleanField(
        default=True,
        help_text="Posted by a source the operator trusts with entries shared by every tenant "
        "(fbl/provenance.py).",
    )
    envelope_sender = models.CharField(max_length=320, blank=True)
    envelope_recipient = models.CharField(max_length=320, blank=True)
    raw_gzip = models.BinaryField(help_text="The message as received, gzip-compressed.")
    size = models.PositiveIntegerField(help_text="Bytes as received, before any truncation.")
    truncated = models.BooleanField(default=False)
    sha256 = models.CharField(
        max_length=64,
        help_text="Of the bytes received: the same report twice from one source is one row.",
    )
    times_received = models.PositiveIntegerField(default=1)
    kind = models.CharField(
        max_length=20,
        blank=True,
        help_text="arf, dsn, autoreply, unsubscribe or unknown, once processed",
    )
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.RECEIVED)
    note = models.TextField(blank=True, help_text="What processing found or why it stopped.")
    feedback_type = models.CharField(max_length=40, blank=True)
    parsed = models.JSONField(
        null=True, blank=True, help_text="The parser's result (the parse_report --json shape)."
    )
    dkim_domain = models.CharField(
        max_length=255,
        blank=True,
        help_text="The feedback-loop domain whose DKIM signature verified; empty if none did.",
    )
    dkim_results = models.TextField(blank=True, help_text="Every DKIM signature's result.")
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)

    tenant_key = _key_of("tenant")

    class Meta:
        ordering = ["-received_at"]
        verbose_name = "inbound message"
        indexes = [models.Index(fields=["status", "received_at"])]
        constraints = [
            models.UniqueConstraint(fields=["sha256", "tenant_key"], name="inbound_once_per_tenant")
        ]

    def __str__(self) -> str:
        return f"{self.get_source_display()} message #{self.pk} ({self.kind or self.status})"

    def raw(self) -> bytes:
        """The message as received (up to INBOUND_MAX_BYTES)."""
        return gzip.decompress(bytes(self.raw_gzip))


class RelayEvent(models.Model):
    """One relay or ESP event as received (KumoMTA log records, anymail tracking events): the
    evidence a suppression or a count points to. The same record posted twice is one row."""

    source = models.CharField(max_length=50, help_text='"kumomta", or "anymail:<esp>"')
    source_id = models.CharField(max_length=255)
    # The tenant of the key that posted it (None: an unbound key or the operator's ESP secret).
    # Duplicates are recognised per tenant, so one tenant cannot pre-empt another's events.
    tenant = models.ForeignKey(
        "compliance.Tenant", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    kind = models.CharField(max_length=20)
    received_at = models.DateTimeField(default=timezone.now, db_index=True)
    occurred_at = models.DateTimeField(null=True, blank=True)
    record = models.JSONField(null=True, blank=True)
    outcome = models.CharField(max_length=40, blank=True)
    tenant_key = _key_of("tenant")

    class Meta:
        ordering = ["-received_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["source", "tenant_key", "source_id"], name="relay_event_once_per_tenant"
            )
        ]

    def __str__(self) -> str:
        return f"{self.source} {self.kind} #{self.pk}"


class SoftBounce(models.Model):
    """A transient failure for one address, counted towards the soft-bounce threshold."""

    address_hash = models.BinaryField(max_length=32)
    occurred_at = models.DateTimeField()
    status = models.CharField(max_length=20, blank=True)
    # Whose input it was (None: an operator-level source). A tenant's soft bounces count
    # towards that tenant's threshold only.
    tenant = models.ForeignKey(
        "compliance.Tenant", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        indexes = [models.Index(fields=["address_hash", "occurred_at"])]

    def __str__(self) -> str:
        return f"soft bounce at {self.occurred_at} ({self.status or 'no status'})"


# --- complaint rates ---------------------------------------------------------------------------
class DailyCount(models.Model):
    """Deliveries and feedback of one day, for one tenant, stream, campaign and mailbox provider:
    the numerator and denominator of complaint rates. Written only by
    fbl.services.complaint_rates."""

    day = models.DateField()
    tenant = models.ForeignKey(
        "compliance.Tenant", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    stream = models.ForeignKey(
        "compliance.Stream", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    campaign = models.CharField(max_length=255, blank=True, help_text="Empty for none.")
    provider = models.CharField(
        max_length=253, help_text="gmail, yahoo, microsoft, apple or a domain."
    )
    deliveries = models.PositiveBigIntegerField(default=0)
    complaints = models.PositiveBigIntegerField(default=0, help_text="abuse and fraud reports")
    other_feedback = models.PositiveBigIntegerField(
        default=0, help_text="not-spam, auth-failure, virus and other reports"
    )
    tenant_key = _key_of("tenant")
    stream_key = _key_of("stream")

    class Meta:
        ordering = ["-day", "tenant_key", "stream_key", "campaign", "provider"]
        verbose_name = "complaint rate"
        verbose_name_plural = "complaint rates"
        constraints = [
            models.UniqueConstraint(
                fields=["day", "tenant_key", "stream_key", "campaign", "provider"],
                name="daily_count_once",
            )
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.provider}: {self.complaints}/{self.deliveries}"


class RateAlert(models.Model):
    """A complaint rate over a line on one day, for one grouping. One row per (day, key, level):
    staff are told once."""

    class Grouping(models.TextChoices):
        TENANT = "tenant", "Tenant"
        STREAM = "stream", "Stream"
        CAMPAIGN = "campaign", "Campaign"
        PROVIDER = "provider", "Mailbox provider"

    class Level(models.TextChoices):
        WARNING = "warning", "Warning"
        ALERT = "alert", "Alert"

    day = models.DateField(db_index=True)
    grouping = models.CharField(max_length=10, choices=Grouping.choices)
    tenant = models.ForeignKey(
        "compliance.Tenant", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    stream = models.ForeignKey(
        "compliance.Stream", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    campaign = models.CharField(max_length=255, blank=True)
    provider = models.CharField(max_length=253, blank=True)
    level = models.CharField(max_length=10, choices=Level.choices)
    rate = models.DecimalField(max_digits=20, decimal_places=10)
    deliveries = models.PositiveBigIntegerField()
    complaints = models.PositiveBigIntegerField()
    created = models.DateTimeField(auto_now_add=True)
    notified_at = models.DateTimeField(null=True, blank=True)
    tenant_key = _key_of("tenant")
    stream_key = _key_of("stream")

    class Meta:
        ordering = ["-day", "-created"]
        verbose_name = "complaint rate alert"
        constraints = [
            models.UniqueConstraint(
                fields=[
                    "day",
                    "grouping",
                    "tenant_key",
                    "stream_key",
                    "campaign",
                    "provider",
                    "level",
                ],
                name="rate_alert_once",
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_level_display()} {self.day} {self.grouping}"


class DeliveryBatch(models.Model):
    """A batch of delivery totals a relay posted (POST /api/v1/delivery-counts): its id is kept
    so that the same batch posted again changes nothing."""

    tenant = models.ForeignKey("compliance.Tenant", on_delete=models.PROTECT, related_name="+")
    batch_id = models.CharField(max_length=200)
    day = models.DateField()
    stream = models.ForeignKey("compliance.Stream", on_delete=models.PROTECT, related_name="+")
    campaign = models.CharField(max_length=255, blank=True)
    deliveries = models.PositiveBigIntegerField()
    digest = models.CharField(max_length=64, help_text="SHA-256 of the batch's counts.")
    received_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-received_at"]
        verbose_name = "delivery batch"
        verbose_name_plural = "delivery batches"
        constraints = [
            models.UniqueConstraint(fields=["tenant", "batch_id"], name="delivery_batch_once")
        ]

    def __str__(self) -> str:
        return f"batch {self.batch_id} ({self.deliveries} deliveries on {self.day})"


class Mention(models.Model):
    """A stored message or relay event that names an address, by the address's hash: how an
    erasure finds what to redact without reading every stored body (README, erasure). Written
    with the message or event (fbl.services.mentions); removed once that address is erased."""

    address_hash = models.BinaryField(max_length=32)
    # Read by hash only: no index (nor constraint) on the references, so ingestion pays for one.
    message = models.ForeignKey(
        InboundMessage,
        null=True,
        on_delete=models.DO_NOTHING,
        db_index=False,
        db_constraint=False,
        related_name="+",
    )
    relay_event = models.ForeignKey(
        RelayEvent,
        null=True,
        on_delete=models.DO_NOTHING,
        db_index=False,
        db_constraint=False,
        related_name="+",
    )

    class Meta:
        indexes = [models.Index(fields=["address_hash"], name="fbl_mention_hash")]

    def __str__(self) -> str:
        return f"mention in {'message' if self.message_id else 'relay event'}"
