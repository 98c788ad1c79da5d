"""Core domain: tenants, their mail streams and topics, API keys and the audit trail."""

from django.conf import settings
from django.db import models

from compliance.scopes import Scope


class Tenant(models.Model):
    """A sending organisation (or one client of an operator that sends for many)."""

    slug = models.SlugField(unique=True)
    name = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.name


class Stream(models.Model):
    """A mail stream of a tenant. Its kind decides which suppressions block it."""

    class Kind(models.TextChoices):
        # Transactional/relationship mail is exempt from the opt-out duty (15 U.S.C. 7702(17)).
        TRANSACTIONAL = "transactional", "Transactional"
        COMMERCIAL = "commercial", "Commercial"

    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="streams")
    slug = models.SlugField()
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["tenant__slug", "slug"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "slug"], name="stream_unique_slug_per_tenant")
        ]

    def __str__(self) -> str:
        return f"{self.tenant.slug}/{self.slug}"

    @property
    def is_commercial(self) -> bool:
        return self.kind == self.Kind.COMMERCIAL


class Topic(models.Model):
    """A subject within a stream that recipients can opt out of on its own (preference centre)."""

    stream = models.ForeignKey(Stream, on_delete=models.PROTECT, related_name="topics")
    slug = models.SlugField()
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    position = models.PositiveIntegerField(default=0, help_text="Order in the preference centre.")
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["stream", "position", "slug"]
        constraints = [
            models.UniqueConstraint(fields=["stream", "slug"], name="topic_unique_slug_per_stream")
        ]

    def __str__(self) -> str:
        return f"{self.stream}/{self.slug}"


class ApiKey(models.Model):
    """A relay's or application's credential. Only a SHA-256 of the key is stored."""

    name = models.CharField(max_length=200)
    prefix = models.CharField(max_length=16, help_text="First characters, to recognise a key.")
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    scopes = models.JSONField(default=list, help_text="Scopes this key grants.")
    tenant = models.ForeignKey(
        Tenant,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="api_keys",
        help_text="A key bound to a tenant sees only that tenant's data and shared data.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    def has_scope(self, scope: Scope | str) -> bool:
        return str(scope) in self.scopes


class AuditTrailIsAppendOnly(Exception):
    pass


class AppendOnlyQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise AuditTrailIsAppendOnly(f"{self.model._meta.label} rows cannot be changed")

    def delete(self):
        raise AuditTrailIsAppendOnly(f"{self.model._meta.label} rows cannot be deleted")


class AuditEvent(models.Model):
    """One create, change or delete made by staff, an API client or a command. Append-only."""

    class Action(models.TextChoices):
        CREATE = "create", "Created"
        UPDATE = "update", "Changed"
        DELETE = "delete", "Deleted"

    occurred_at = models.DateTimeField(auto_now_add=True, db_index=True)
    # Plain ids rather than constrained keys: deleting a user or key must not rewrite history.
    actor_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    actor_api_key = models.ForeignKey(
        ApiKey, null=True, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    actor_label = models.CharField(max_length=200, help_text="Who, as a person would read it.")
    via = models.CharField(max_length=20, help_text="admin, api, command or system")
    remote_addr = models.GenericIPAddressField(null=True)
    action = models.CharField(max_length=10, choices=Action.choices)
    model = models.CharField(max_length=100, db_index=True)
    object_pk = models.CharField(max_length=64)
    object_repr = models.CharField(max_length=300)
    changes = models.JSONField(default=dict, help_text="field: [before, after]")

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        ordering = ["-occurred_at", "-id"]
        indexes = [models.Index(fields=["model", "object_pk"])]

    def __str__(self) -> str:
        return f"{self.actor_label} {self.action} {self.model} {self.object_repr}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise AuditTrailIsAppendOnly("audit events cannot be changed")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AuditTrailIsAppendOnly("audit events cannot be deleted")
