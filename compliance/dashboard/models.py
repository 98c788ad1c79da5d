"""Figures the dashboard reads, kept up to date by the `dashboard.roll_up` task.

The page never counts the big tables (suppressions, opt-outs, stored reports, relay events): the
task reads each of them once, by id above a watermark, and adds what it finds here. Complaint
rates need no roll-up of their own: `fbl.DailyCount` already is one, kept by fbl as it counts.
"""

from django.db import models
from django.db.models.functions import Coalesce


class DailyRollup(models.Model):
    """One day's figures for one tenant (None: shared opt-outs, or reports and events no tenant
    sent). Written only by compliance.dashboard.services.

    Opt-outs are counted on the day they were received (UTC); the time to apply on the day the
    clock stopped (`propagated_at`: every downstream system had it), leaving out imports, whose
    received time is another system's. Reports and relay events count on the day they arrived.
    The rows these figures come from name no stream or mailbox provider (an opt-out keeps only
    the address's hash), so the figures are per tenant only; complaint rates per stream and
    provider come from fbl's counts.
    """

    day = models.DateField()
    tenant = models.ForeignKey(
        "compliance.Tenant", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    opt_outs_received = models.PositiveBigIntegerField(default=0)
    opt_outs_applied = models.PositiveBigIntegerField(
        default=0, help_text="Opt-outs whose clock stopped this day, imports left out."
    )
    applied_within_target = models.PositiveBigIntegerField(
        default=0, help_text="Of those, stopped by the mailbox providers' 48-hour target."
    )
    applied_within_can_spam = models.PositiveBigIntegerField(
        default=0, help_text="Of those, stopped by the CAN-SPAM deadline."
    )
    apply_seconds = models.PositiveBigIntegerField(
        default=0, help_text="Their times to apply, added up."
    )
    apply_times = models.JSONField(
        default=dict,
        help_text="Their times to apply per bucket: counts and sums (dashboard.sketch).",
    )
    feedback_reports = models.PositiveBigIntegerField(
        default=0, help_text="Complaint (ARF) reports received by mail."
    )
    bounce_reports = models.PositiveBigIntegerField(
        default=0, help_text="Bounce (DSN) reports received by mail."
    )
    relay_feedback = models.PositiveBigIntegerField(
        default=0, help_text="Feedback events posted by relays and ESPs."
    )
    relay_bounces = models.PositiveBigIntegerField(
        default=0, help_text="Bounce events posted by relays and ESPs."
    )
    # NULLs are distinct in a unique constraint: the key reads 0 for "no tenant" (as fbl does).
    tenant_key = models.GeneratedField(
        expression=Coalesce("tenant", 0),
        output_field=models.BigIntegerField(),
        db_persist=True,
    )

    class Meta:
        ordering = ["-day", "tenant_key"]
        verbose_name = "daily roll-up"
        constraints = [
            models.UniqueConstraint(fields=["day", "tenant_key"], name="daily_rollup_once")
        ]

    def __str__(self) -> str:
        return f"{self.day} tenant {self.tenant_id or '-'}"


class RollupSource(models.Model):
    """How far the roll-up has read one table: the highest id read and the gaps below it
    (dashboard.watermarks). Its row is also the roll-up's lock."""

    name = models.CharField(max_length=40, primary_key=True)
    last_id = models.BigIntegerField(default=0)
    gaps = models.JSONField(default=list, help_text="[first id, last id, found at], ...")
    rolled_up_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.name} up to id {self.last_id}"


class PendingRow(models.Model):
    """A row read before its figures were final (an opt-out still waiting for downstream
    systems, a report not yet parsed): looked at again on each run until they are."""

    source = models.CharField(max_length=40)
    row_id = models.BigIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["source", "row_id"], name="pending_row_once")
        ]

    def __str__(self) -> str:
        return f"{self.source} #{self.row_id}"
