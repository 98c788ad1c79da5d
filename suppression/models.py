"""The suppression list and its append-only history.

Only `suppression/services/` and the bulk paths in `suppression/sql.py` write these models.
"""

import datetime

from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.db.models import BigIntegerField, Func, Q
from django.utils import timezone

from compliance.models import ActorStamped, Stream, Tenant, Topic
from suppression import rules


class Reason(models.TextChoices):
    HARD_BOUNCE = rules.HARD_BOUNCE, "Hard bounce"
    INVALID = rules.INVALID, "Invalid address"
    COMPLAINT = rules.COMPLAINT, "Complaint"
    UNSUBSCRIBE = rules.UNSUBSCRIBE, "Unsubscribe"
    OBJECTION = rules.OBJECTION, "Objection (GDPR Art. 21)"
    ERASURE = rules.ERASURE, "Erasure (GDPR Art. 17)"
    MANUAL = rules.MANUAL, "Manual"
    LEGAL = rules.LEGAL, "Legal"
    SOFT_BOUNCE = rules.SOFT_BOUNCE, "Soft-bounce threshold"


class Origin(models.TextChoices):
    RECIPIENT = "recipient", "Recipient"
    PROVIDER_REPORT = "provider_report", "Provider report"
    RELAY = "relay", "Relay"
    IMPORT = "import", "Import"
    STAFF = "staff", "Staff"
    API = "api", "API"


class ScopeKind(models.TextChoices):
    GLOBAL = rules.GLOBAL, "Global (never mail)"
    COMMERCIAL = rules.COMMERCIAL, "All commercial mail"
    STREAM = rules.STREAM, "One stream"
    TOPIC = rules.TOPIC, "One topic"


class CurrentTransactionId(Func):
    """The writing transaction's id, so the change feed can be read in commit-safe order.

    SQLite serialises writers, so there the row id alone is in commit order and this is 0.
    """

    output_field = BigIntegerField()

    def as_sql(self, compiler, connection, **extra_context):
        return "0", []

    def as_postgresql(self, compiler, connection, **extra_context):
        return "(pg_current_xact_id()::text::bigint)", []


WITHHELD = "[shared by every tenant]"


class Suppression(models.Model):
    """One address that must not get some mail: one row per (tenant, scope, address hash)."""

    # The (tenant, reason) index serves tenant lookups too.
    tenant = models.ForeignKey(
        Tenant,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        db_index=False,
        related_name="+",
        help_text="Empty: shared by every tenant.",
    )
    scope = models.CharField(max_length=12, choices=ScopeKind.choices)
    # Indexed only where set (see Meta): most entries have no stream or topic, and each index on
    # a ten-million-row table slows every insert.
    stream = models.ForeignKey(
        Stream, null=True, blank=True, on_delete=models.PROTECT, db_index=False, related_name="+"
    )
    topic = models.ForeignKey(
        Topic, null=True, blank=True, on_delete=models.PROTECT, db_index=False, related_name="+"
    )
    scope_key = models.CharField(max_length=64, editable=False)
    address_hash = models.BinaryField(max_length=32, editable=False)
    # NULL, not "", once erased: "no address kept" differs from an empty string.
    address = models.CharField(  # noqa: DJ001
        max_length=320, null=True, blank=True, help_text="Empty once erased: the hash remains."
    )
    reason = models.CharField(max_length=20, choices=Reason.choices)
    origin = models.CharField(max_length=20, choices=Origin.choices)
    evidence_type = models.ForeignKey(
        ContentType,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        db_index=False,
        related_name="+",
    )
    evidence_id = models.CharField(max_length=64, blank=True)
    evidence = GenericForeignKey("evidence_type", "evidence_id")
    evidence_note = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    updated_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True)
    lifted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        permissions = [
            ("lift_protected", "Can lift complaint, erasure, objection and legal entries"),
        ]
        constraints = [
            # Hash first: the check looks up by hash, then filters the few scope keys.
            models.UniqueConstraint(
                fields=["address_hash", "scope_key"],
                name="suppression_one_row_per_key",
            ),
        ]
        indexes = [
            models.Index(fields=["tenant", "reason"]),
            models.Index(
                fields=["stream"], condition=Q(stream__isnull=False), name="suppression_stream_set"
            ),
            models.Index(
                fields=["topic"], condition=Q(topic__isnull=False), name="suppression_topic_set"
            ),
        ]

    def __str__(self) -> str:
        # `withheld`: a shared entry as staff limited to tenants see it, blocked but without its
        # address (the admin annotates it: suppression/admin.py).
        if getattr(self, "withheld", False):
            shown = WITHHELD
        else:
            shown = self.address or "[erased]"
        return f"{shown} ({self.scope_label}, {self.reason})"

    @property
    def is_active(self) -> bool:
        return rules.is_active(
            lifted_at=self.lifted_at, expires_at=self.expires_at, now=timezone.now()
        )

    @property
    def scope_label(self) -> str:
        """The scope as the API and staff name it: global, commercial, stream:S, topic:S/T."""
        if self.scope == rules.STREAM:
            return f"stream:{self.stream.slug}"
        if self.scope == rules.TOPIC:
            return f"topic:{self.topic.stream.slug}/{self.topic.slug}"
        return self.scope


def active_q(*, now: datetime.datetime | None = None) -> Q:
    """Entries in force at `now` (default: now), `rules.is_active` for the ORM: not lifted and not
    past their expiry."""
    return Q(lifted_at__isnull=True) & (
        Q(expires_at__isnull=True) | Q(expires_at__gt=now or timezone.now())
    )


def blocking_q(keys: rules.BlockingKeys, *, now: datetime.datetime | None = None) -> Q:
    """Active entries that block a send under `keys`: `rules.blocking_sql` for the ORM (SQLite,
    and the mirror export on either database)."""
    return active_q(now=now) & (
        Q(scope_key__in=keys.any_reason)
        | Q(scope_key__in=keys.never_mail_only, reason__in=keys.never_mail)
    )


class SuppressionEvent(ActorStamped):
    """Append-only history: every add, re-add, new reason, lift and erasure."""

    class Action(models.TextChoices):
        ADD = "add", "Added"
        READD = "readd", "Added again"
        REASON = "reason", "New reason"
        LIFT = "lift", "Lifted"
        ERASE = "erase", "Address erased"

    # No foreign key in the database: the list is hash-partitioned (suppression/partitioning.py)
    # and a key pointing at a partitioned table needs a unique key with the partition key in
    # it, which `id` alone is not. Django still refuses to delete an entry with history
    # (PROTECT), and nothing deletes entries.
    suppression = models.ForeignKey(
        Suppression, on_delete=models.PROTECT, db_constraint=False, related_name="events"
    )
    action = models.CharField(max_length=10, choices=Action.choices)
    reason = models.CharField(max_length=20, choices=Reason.choices)
    origin = models.CharField(max_length=20, choices=Origin.choices)
    scope_key = models.CharField(max_length=64)
    address_hash = models.BinaryField(max_length=32)
    note = models.TextField(blank=True, help_text="Why (required when lifting).")
    evidence_type = models.ForeignKey(
        ContentType,
        null=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,
        related_name="+",
    )
    evidence_id = models.CharField(max_length=64, blank=True)
    evidence_note = models.CharField(max_length=500, blank=True)
    occurred_at = models.DateTimeField(default=timezone.now)
    txid = models.BigIntegerField(db_default=CurrentTransactionId(), editable=False)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["txid", "id"], name="suppression_event_feed")]

    def __str__(self) -> str:
        return f"{self.get_action_display()} {self.reason} at {self.occurred_at}"


class ImportJob(models.Model):
    """One uploaded CSV and its progress. The file itself is kept (compressed) in the database,
    the service's only state, so any worker can run it."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    tenant = models.ForeignKey(
        Tenant,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="Empty: entries shared by all.",
    )
    format_name = models.CharField(max_length=40)
    filename = models.CharField(max_length=255, blank=True)
    content = models.BinaryField(editable=False, help_text="gzip-compressed CSV")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    rows_total = models.PositiveIntegerField(default=0, help_text="Data lines in the file.")
    rows_done = models.PositiveIntegerField(default=0)
    rows_added = models.PositiveIntegerField(default=0)
    rows_existing = models.PositiveIntegerField(default=0)
    rows_bad = models.PositiveIntegerField(default=0)
    errors = models.JSONField(default=list, help_text="The first bad rows: line and reason.")
    message = models.TextField(blank=True)
    created_by_label = models.CharField(max_length=200)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "import"

    def __str__(self) -> str:
        return f"import #{self.pk} ({self.filename or self.format_name})"

    @property
    def percent(self) -> int:
        if self.status == self.Status.DONE:
            return 100
        if not self.rows_total:
            return 0
        return min(100, int(100 * self.rows_done / self.rows_total))
