"""The consent ledger and what hangs off it.

- `ConsentText`: each version of a wording shown to people, stored once and referenced, so a
  million consents share a few texts.
- `ConsentRecord`: the ledger. Append-only: the database refuses UPDATE and DELETE (migration
  0002), except the erasure of the personal fields of a row (GDPR Art. 17).
- `ConsentState`: the current state per (tenant, address, purpose), kept by the service in the
  same transaction as the ledger row, so a send decision reads one indexed row per address.
- `PendingConfirmation`: a double opt-in waiting for its click.
"""

from __future__ import annotations

from django.db import models
from django.db.models.functions import Coalesce

from compliance.consent import rules
from compliance.models import ActorStamped, Stream, Tenant, Topic


def _key_of(field: str) -> models.GeneratedField:
    """0 for a NULL foreign key, so a unique key with it works the same on PostgreSQL and SQLite
    (and an upsert can name it)."""
    return models.GeneratedField(
        expression=Coalesce(field, 0), output_field=models.BigIntegerField(), db_persist=True
    )


class Action(models.TextChoices):
    GRANTED = rules.GRANTED, "Granted"
    WITHDRAWN = rules.WITHDRAWN, "Withdrawn"


class Basis(models.TextChoices):
    CONSENT = rules.CONSENT, "Consent (GDPR Art. 6(1)(a))"
    SOFT_OPT_IN = rules.SOFT_OPT_IN, "Soft opt-in (ePrivacy Art. 13(2))"
    CONTRACT = rules.CONTRACT, "Contract (Art. 6(1)(b))"
    LEGITIMATE_INTEREST = rules.LEGITIMATE_INTEREST, "Legitimate interest (Art. 6(1)(f))"


class Method(models.TextChoices):
    WEB_FORM = rules.WEB_FORM, "Web form"
    DOUBLE_OPT_IN = rules.DOUBLE_OPT_IN, "Double opt-in"
    IMPORT = rules.IMPORT, "Import"
    API = rules.API, "API"
    PREFERENCE_CENTRE = rules.PREFERENCE_CENTRE, "Preference centre"
    STAFF = rules.STAFF, "Staff"
    UNSUBSCRIBE = rules.UNSUBSCRIBE, "Unsubscribe"
    COMPLAINT = rules.COMPLAINT, "Complaint"


class ConsentText(models.Model):
    """One version of the wording a person was shown when asked."""

    tenant = models.ForeignKey(Tenant, null=True, on_delete=models.PROTECT, related_name="+")
    sha256 = models.CharField(max_length=64, editable=False)
    body = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)
    tenant_key = _key_of("tenant")

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "consent text"
        constraints = [
            models.UniqueConstraint(fields=["sha256", "tenant_key"], name="consent_text_once")
        ]

    def __str__(self) -> str:
        first = self.body.strip().splitlines()[0] if self.body.strip() else "(empty)"
        return f"#{self.pk}: {first[:80]}"


class ConsentRecord(ActorStamped):
    """One consent given or withdrawn, with its evidence (GDPR Art. 7(1)).

    Read by (address hash, tenant) only: the tenant, stream and topic columns carry no index of
    their own, which would slow every import for lookups nobody makes (deleting a stream that
    has consents is refused anyway)."""

    # Personal fields: an erasure blanks these and nothing else (the database allows only that).
    PERSONAL_FIELDS = ("address", "ip", "user_agent", "page_url", "confirmed_ip")

    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="+", db_index=False)
    stream = models.ForeignKey(Stream, on_delete=models.PROTECT, related_name="+", db_index=False)
    topic = models.ForeignKey(
        Topic, null=True, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    # NULL, not "", once erased: "no address" must not look like an address.
    address = models.CharField(max_length=320, null=True, help_text="Empty once erased.")  # noqa: DJ001
    address_hash = models.BinaryField(max_length=32)
    action = models.CharField(max_length=10, choices=Action.choices)
    basis = models.CharField(max_length=20, choices=Basis.choices)
    method = models.CharField(max_length=20, choices=Method.choices)
    jurisdiction = models.CharField(max_length=8, blank=True)
    occurred_at = models.DateTimeField(help_text="When it was given or withdrawn.")
    recorded_at = models.DateTimeField(auto_now_add=True)
    ip = models.GenericIPAddressField(null=True)
    user_agent = models.CharField(max_length=500, blank=True)
    page_url = models.CharField(max_length=2000, blank=True)
    form_id = models.CharField(max_length=200, blank=True)
    text = models.ForeignKey(ConsentText, null=True, on_delete=models.PROTECT, related_name="+")
    privacy_notice_version = models.CharField(max_length=100, blank=True)
    confirmed_at = models.DateTimeField(null=True, help_text="Double opt-in: when confirmed.")
    confirmed_ip = models.GenericIPAddressField(null=True)
    # What caused a withdrawal the service wrote itself (an opt-out's request id, a report).
    cause = models.CharField(max_length=100, blank=True)
    # An import row's identity: the same row imported again is not recorded twice.
    # NULL for records not imported, so the unique key holds only among imported ones.
    import_key = models.CharField(max_length=64, null=True, editable=False)  # noqa: DJ001

    class Meta:
        ordering = ["-occurred_at", "-id"]
        verbose_name = "consent record"
        indexes = [models.Index(fields=["address_hash", "tenant"])]
        constraints = [
            models.UniqueConstraint(fields=["import_key"], name="consent_import_once"),
        ]

    def __str__(self) -> str:
        return f"{self.action} {self.purpose} ({self.method}) at {self.occurred_at:%Y-%m-%d %H:%M}"

    @property
    def purpose(self) -> str:
        return f"{self.stream.slug}/{self.topic.slug}" if self.topic_id else self.stream.slug


class ConsentState(models.Model):
    """The latest record per (tenant, address hash, stream, topic): what a decision reads,
    through the unique key alone (no index on the foreign keys, for the same reason as the
    ledger's)."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+", db_index=False)
    address_hash = models.BinaryField(max_length=32)
    stream = models.ForeignKey(Stream, on_delete=models.CASCADE, related_name="+", db_index=False)
    topic = models.ForeignKey(
        Topic, null=True, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    action = models.CharField(max_length=10, choices=Action.choices)
    basis = models.CharField(max_length=20, choices=Basis.choices)
    since = models.DateTimeField()
    record = models.ForeignKey(
        ConsentRecord, on_delete=models.DO_NOTHING, related_name="+", db_index=False
    )
    topic_key = _key_of("topic")

    class Meta:
        verbose_name = "consent state"
        constraints = [
            models.UniqueConstraint(
                fields=["address_hash", "tenant", "stream", "topic_key"],
                name="consent_state_once",
            )
        ]

    def __str__(self) -> str:
        topic = f"/{self.topic.slug}" if self.topic_id else ""
        return f"{self.action} {self.stream.slug}{topic} since {self.since:%Y-%m-%d}"


class PendingConfirmation(models.Model):
    """A double opt-in sent and not yet confirmed. Only a hash of the link's token is kept."""

    class Status(models.TextChoices):
        PENDING = "pending", "Waiting for the click"
        CONFIRMED = "confirmed", "Confirmed"
        EXPIRED = "expired", "Expired"

    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    stream = models.ForeignKey(Stream, on_delete=models.CASCADE, related_name="+")
    topic = models.ForeignKey(Topic, null=True, on_delete=models.CASCADE, related_name="+")
    address = models.CharField(max_length=320, null=True)  # noqa: DJ001 (NULL once erased)
    address_hash = models.BinaryField(max_length=32)
    basis = models.CharField(max_length=20, choices=Basis.choices)
    jurisdiction = models.CharField(max_length=8, blank=True)
    evidence = models.JSONField(default=dict, help_text="The sign-up's evidence, as posted.")
    text = models.ForeignKey(ConsentText, null=True, on_delete=models.PROTECT, related_name="+")
    language = models.CharField(max_length=10, blank=True)
    requested_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    record = models.ForeignKey(
        ConsentRecord, null=True, on_delete=models.DO_NOTHING, related_name="+"
    )

    class Meta:
        ordering = ["-requested_at"]
        indexes = [models.Index(fields=["address_hash", "requested_at"])]

    def __str__(self) -> str:
        return f"double opt-in {self.status} since {self.requested_at:%Y-%m-%d %H:%M}"
