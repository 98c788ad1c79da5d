"""What a recipient did to opt out: the evidence behind recipient-made suppressions."""

from django.db import models

from compliance.models import Stream, Tenant, Topic


class UnsubscribeRequest(models.Model):
    """One opt-out by a recipient (one-click, landing page, preference centre or mail)."""

    class Channel(models.TextChoices):
        ONE_CLICK = "one_click", "One-click (RFC 8058)"
        LANDING_PAGE = "landing_page", "Landing page"
        PREFERENCE_CENTRE = "preference_centre", "Preference centre"
        MAILTO = "mailto", "mailto: unsubscribe"

    class Breadth(models.TextChoices):
        LINK = "link", "What the link names (its topic, else its stream)"
        COMMERCIAL = "commercial", "All commercial mail of the tenant"

    # Every index and constraint check here is paid on each one-click: only pending requests are
    # indexed, and the references are kept by Django (PROTECT) without database-side checks.
    received_at = models.DateTimeField()
    applied_at = models.DateTimeField(
        null=True, blank=True, help_text="When the suppression was made; empty: pending."
    )
    channel = models.CharField(max_length=20, choices=Channel.choices)
    tenant = models.ForeignKey(
        Tenant, on_delete=models.PROTECT, db_index=False, db_constraint=False, related_name="+"
    )
    stream = models.ForeignKey(
        Stream, on_delete=models.PROTECT, db_index=False, db_constraint=False, related_name="+"
    )
    topic = models.ForeignKey(
        Topic,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        db_index=False,
        db_constraint=False,
        related_name="+",
    )
    # How far the opt-out reaches: what the link names, or all the tenant's commercial mail.
    breadth = models.CharField(max_length=12, choices=Breadth.choices, default=Breadth.LINK)
    campaign = models.CharField(max_length=255, blank=True)
    scope_label = models.CharField(
        max_length=200, blank=True, help_text="What was opted out of, once applied."
    )
    # Needed to make the suppression; cleared by erasure like every stored address.
    address = models.CharField(max_length=320, null=True, blank=True)  # noqa: DJ001
    address_hash = models.BinaryField(max_length=32)
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=500, blank=True)
    token_key_id = models.PositiveSmallIntegerField(null=True, blank=True)
    # Set when the opt-out was first captured to the spool: applying it twice finds this.
    capture_id = models.UUIDField(null=True, blank=True)
    # The same opt-out (tenant, stream, topic, recipient, breadth) within one repeat window: a
    # replayed click inserts nothing (ON CONFLICT DO NOTHING on its unique index). Cleared when
    # the recipient's opt-out is lifted, so a new opt-out after a resubscription is stored.
    repeat_key = models.BinaryField(max_length=32, null=True, blank=True)
    # The key of the entry it becomes (suppression.rules.scope_key), worked out when recorded so
    # checks see a pending opt-out before a worker applies it (suppression/sql.py). Empty only for
    # rows recorded before the column existed and already applied.
    scope_key = models.CharField(max_length=64, null=True, blank=True, editable=False)  # noqa: DJ001

    class Meta:
        ordering = ["-received_at"]
        verbose_name = "unsubscribe request"
        indexes = [
            # An erasure finds the requester's rows by hash: applied ones through this index,
            # which the worker's update writes; the few still pending through the pending index
            # by hash below.
            models.Index(
                fields=["address_hash"],
                condition=models.Q(applied_at__isnull=False),
                name="unsubscribe_address_hash",
            ),
            # The worker's sweep takes the oldest pending first.
            models.Index(
                fields=["received_at"],
                condition=models.Q(applied_at__isnull=True),
                name="unsubscribe_pending",
            ),
            # Every check looks for a pending opt-out of the address (suppression/sql.py): only
            # the rows not yet applied, so the index stays as small as the backlog.
            models.Index(
                fields=["address_hash"],
                condition=models.Q(applied_at__isnull=True),
                name="unsubscribe_pending_by_hash",
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["capture_id"],
                condition=models.Q(capture_id__isnull=False),
                name="unsubscribe_capture_once",
            ),
            models.UniqueConstraint(
                fields=["repeat_key"],
                condition=models.Q(repeat_key__isnull=False),
                name="unsubscribe_repeat_once",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_channel_display()} opt-out of {self.scope_label} at {self.received_at}"
