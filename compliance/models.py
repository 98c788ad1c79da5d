"""Core domain: tenants, their mail streams and topics, API keys and the audit trail."""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from compliance import deadlines, jurisdictions
from compliance.key_permissions import KeyPermission


def validate_time_zone(value: str) -> None:
    if not deadlines.is_time_zone(value):
        raise ValidationError(
            f"{value!r} is not a time zone; use an IANA name such as America/New_York or UTC",
            code="invalid_time_zone",
        )


class Tenant(models.Model):
    """A sending organisation (or one client of an operator that sends for many)."""

    slug = models.SlugField(unique=True)
    name = models.CharField(max_length=200)
    jurisdiction = models.CharField(
        max_length=8,
        choices=[(code, code) for code in jurisdictions.JURISDICTIONS],
        default=jurisdictions.DEFAULT,
        help_text="Whose law governs its marketing mail unless a send decision names another: "
        "EU/EEA and UK need consent (or soft opt-in), CA express or recent implied consent, US "
        "an opt-out.",
    )
    time_zone = models.CharField(
        max_length=64,
        default="UTC",
        validators=[validate_time_zone],
        help_text="An IANA time zone (America/New_York, Europe/Berlin): opt-out deadlines are "
        "counted in business days of this zone.",
    )
    can_spam_business_days = models.PositiveSmallIntegerField(
        default=deadlines.CAN_SPAM_BUSINESS_DAYS,
        validators=[MinValueValidator(1), MaxValueValidator(10)],
        help_text="Business days an opt-out may take everywhere (CAN-SPAM allows at most 10).",
    )
    provider_target_hours = models.PositiveSmallIntegerField(
        default=48,
        validators=[MinValueValidator(1), MaxValueValidator(48)],
        help_text="Hours an opt-out may take everywhere for Gmail and Yahoo (they ask for 48).",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs):
        # Every deadline of the tenant is counted in this zone: refuse one that does not exist
        # however the tenant is saved, not only through a form.
        validate_time_zone(self.time_zone)
        super().save(*args, **kwargs)

    @property
    def opt_out_policy(self) -> deadlines.OptOutPolicy:
        return deadlines.OptOutPolicy(
            time_zone=self.time_zone,
            business_days=self.can_spam_business_days,
            target_hours=self.provider_target_hours,
        )


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
    permissions = models.JSONField(default=list, help_text="What this key may do.")
    tenant = models.ForeignKey(
        Tenant,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="api_keys",
        help_text="A key bound to a tenant sees only that tenant's data and shared data.",
    )
    operator_level = models.BooleanField(
        default=False,
        help_text="A relay of the operator's own: its hard bounces are shared by every tenant "
        "even though the key is bound to one (README, whose input reaches whom).",
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

    def allows(self, permission: KeyPermission | str) -> bool:
        return str(permission) in self.permissions


class AuditTrailIsAppendOnly(Exception):
    pass


class AppendOnlyQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise AuditTrailIsAppendOnly(f"{self.model._meta.label} rows cannot be changed")

    def delete(self):
        raise AuditTrailIsAppendOnly(f"{self.model._meta.label} rows cannot be deleted")


class AppendOnlyModel(models.Model):
    """A history row: written once, never changed or deleted (the database agrees on PostgreSQL)."""

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise AuditTrailIsAppendOnly(f"{self._meta.label} rows cannot be changed")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AuditTrailIsAppendOnly(f"{self._meta.label} rows cannot be deleted")


class ActorStamped(AppendOnlyModel):
    """A history row that names who acted: a staff user, an API key or a command."""

    # Plain ids rather than constrained keys: deleting a user or key must not rewrite history.
    # Not indexed: history is read per object, and every index slows the bulk paths.
    actor_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,
        related_name="+",
    )
    actor_api_key = models.ForeignKey(
        ApiKey,
        null=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,
        related_name="+",
    )
    actor_label = models.CharField(max_length=200, help_text="Who, as a person would read it.")
    via = models.CharField(max_length=20, help_text="admin, api, command, import or system")

    class Meta:
        abstract = True

    @staticmethod
    def actor_fields(actor) -> dict:
        """Field values naming `actor` (a compliance.audit.Actor)."""
        return {
            "actor_user_id": actor.user_id,
            "actor_api_key_id": actor.api_key_id,
            "actor_label": actor.label[:200],
            "via": actor.via,
        }


class AuditEvent(ActorStamped):
    """One create, change or delete made by staff, an API client or a command; a login, logout or
    failed login; a read of someone's personal data. Append-only."""

    class Action(models.TextChoices):
        CREATE = "create", "Created"
        UPDATE = "update", "Changed"
        DELETE = "delete", "Deleted"
        ADD = "add", "Added to"
        REMOVE = "remove", "Removed from"
        LOGIN = "login", "Logged in"
        LOGOUT = "logout", "Logged out"
        LOGIN_FAILED = "login_failed", "Failed login"
        ACCESS = "access", "Viewed personal data"

    occurred_at = models.DateTimeField(auto_now_add=True, db_index=True)
    remote_addr = models.GenericIPAddressField(null=True)
    action = models.CharField(max_length=20, choices=Action.choices)
    model = models.CharField(max_length=100, db_index=True)
    object_pk = models.CharField(max_length=64)
    object_repr = models.CharField(max_length=300)
    changes = models.JSONField(default=dict, help_text="field: [before, after]")

    class Meta:
        ordering = ["-occurred_at", "-id"]
        indexes = [models.Index(fields=["model", "object_pk"])]

    def __str__(self) -> str:
        return f"{self.actor_label} {self.action} {self.model} {self.object_repr}"


class OptOutRequest(models.Model):
    """One opt-out, whichever way it arrived. Deadline clocks and propagation build on it.

    CAN-SPAM (16 CFR 316.5) gives 10 business days, Gmail and Yahoo 2 days, counted from
    `received_at`.
    """

    class Channel(models.TextChoices):
        ONE_CLICK = "one_click", "One-click (RFC 8058)"
        LANDING_PAGE = "landing_page", "Landing page"
        PREFERENCE_CENTRE = "preference_centre", "Preference centre"
        MAILTO = "mailto", "mailto: unsubscribe"
        COMPLAINT = "complaint", "Provider complaint"
        OBJECTION = "objection", "GDPR objection"
        API = "api", "API"
        STAFF = "staff", "Staff"
        IMPORT = "import", "Import"

    received_at = models.DateTimeField(db_index=True)
    channel = models.CharField(max_length=20, choices=Channel.choices)
    # Kept by Django (PROTECT) without a database-side check, as on unsubscribe requests: every
    # opt-out of an import or an applied batch was written with its entry, whose own key already
    # checks the tenant, and the second check per row cost about a tenth of an import. Indexed
    # for PROTECT's look-up when a tenant is deleted.
    tenant = models.ForeignKey(
        Tenant, null=True, on_delete=models.PROTECT, db_constraint=False, related_name="+"
    )
    scope_key = models.CharField(max_length=64)
    scope_label = models.CharField(max_length=200, help_text="The scope as staff read it.")
    address_hash = models.BinaryField(max_length=32)
    applied_at = models.DateTimeField(null=True, blank=True, help_text="When it took effect here.")
    provider_due_at = models.DateTimeField(
        null=True, blank=True, help_text="Gmail and Yahoo's target: 48 hours by default."
    )
    can_spam_due_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="The end of the last CAN-SPAM business day, in the tenant's time zone.",
    )
    propagated_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When every downstream system had acknowledged it: the clock stops here.",
    )
    alert_state = models.PositiveSmallIntegerField(
        default=0, help_text="The last deadline state staff were told of (deadlines.OptOutState)."
    )

    class Meta:
        ordering = ["-received_at"]
        verbose_name = "opt-out request"
        indexes = [
            # The deadline sweep and the dashboard read only the opt-outs still open.
            models.Index(
                fields=["can_spam_due_at"],
                condition=models.Q(propagated_at__isnull=True),
                name="optout_open_by_due",
            ),
        ]
        permissions = [
            ("receive_deadline_alerts", "Receive mail about opt-outs and requests due or late"),
        ]

    def __str__(self) -> str:
        return f"{self.get_channel_display()} opt-out of {self.scope_label} at {self.received_at}"


class SendingIdentity(models.Model):
    """Which tenant and stream a message belongs to, told from its envelope sender.

    Relays that only see the SMTP envelope (the Postfix policy server) decide with this table.
    `pattern` is a whole address (`news@example.com`), a domain (`example.com`) or every
    subdomain of one (`*.example.com`); the most specific match wins.
    """

    pattern = models.CharField(max_length=254, unique=True)
    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="identities")
    stream = models.ForeignKey(Stream, on_delete=models.PROTECT, related_name="identities")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["pattern"]
        verbose_name = "sending identity"
        verbose_name_plural = "sending identities"

    def __str__(self) -> str:
        return f"{self.pattern} → {self.stream}"

    def clean(self):
        from django.core.exceptions import ValidationError

        self.pattern = self.pattern.strip().lower()
        if self.stream_id and self.tenant_id and self.stream.tenant_id != self.tenant_id:
            raise ValidationError({"stream": "The stream must belong to the tenant."})
        bare = self.pattern.removeprefix("*.")
        if not bare or " " in bare or bare.count("@") > 1 or bare.startswith("@"):
            raise ValidationError({"pattern": "Use an address, a domain or *.domain."})


class StaffTenant(models.Model):
    """A staff user limited to a tenant. A user with one or more of these rows sees and changes
    only those tenants' rows in the admin and the dashboard (compliance.staff_scope); a user with
    none, and every superuser, sees every tenant."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="staff_tenants"
    )
    # PROTECT: deleting a user's last tenant would silently widen them to every tenant.
    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="staff")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["user", "tenant"]
        verbose_name = "tenant of a staff user"
        verbose_name_plural = "tenants of staff users"
        constraints = [
            models.UniqueConstraint(fields=["user", "tenant"], name="staff_tenant_once"),
        ]

    def __str__(self) -> str:
        return f"{self.user} limited to {self.tenant.slug}"
