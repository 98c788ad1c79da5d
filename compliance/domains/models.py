"""Sending domains and the history of their DNS health checks (compliance.domains.checks)."""

from django.db import models
from django.utils import timezone

from compliance.models import Tenant


class Verdict(models.TextChoices):
    PASS = "pass", "pass"
    WARN = "warn", "warn"
    FAIL = "fail", "fail"


class SendingDomain(models.Model):
    """A domain mail is sent from (the From domain), watched for SPF, DKIM, DMARC and MX."""

    domain = models.CharField(max_length=253, unique=True)
    dkim_selectors = models.JSONField(
        default=list,
        blank=True,
        verbose_name="DKIM selectors",
        help_text="The DKIM selectors its mail is signed with (the s= of its DKIM-Signature): "
        "keys are found only by selector.",
    )
    tenant = models.ForeignKey(
        Tenant,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="sending_domains",
        help_text="Empty: the operator's own domain.",
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["domain"]

    def __str__(self) -> str:
        return self.domain


class DomainCheck(models.Model):
    """One reading of a domain's DNS: the verdict and every check as {"name", "status",
    "message"} (compliance.check_results). Kept as history, never changed."""

    # Indexed by domaincheck_latest, which leads with it.
    domain = models.ForeignKey(
        SendingDomain, on_delete=models.CASCADE, related_name="checks", db_index=False
    )
    checked_at = models.DateTimeField(default=timezone.now)
    verdict = models.CharField(max_length=4, choices=Verdict.choices)
    checks = models.JSONField(default=list)

    class Meta:
        ordering = ["-checked_at", "-id"]
        indexes = [
            # The latest check of each domain (selectors.latest_checks), one index probe each.
            models.Index(fields=["domain", "-checked_at", "-id"], name="domaincheck_latest"),
        ]

    def __str__(self) -> str:
        return f"{self.domain} {self.verdict} at {self.checked_at:%Y-%m-%d %H:%M}"
