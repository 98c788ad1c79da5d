"""API key permissions: what a relay or application may do with its key."""

from django.db import models


class KeyPermission(models.TextChoices):
    SUPPRESSION_READ = "suppression:read", "Check and list suppressions"
    SUPPRESSION_WRITE = "suppression:write", "Add, lift and import suppressions"
    REPORTS_WRITE = "reports:write", "Submit complaint and bounce reports and relay events"
    UNSUBSCRIBE_MINT = "unsubscribe:mint", "Mint List-Unsubscribe headers"
    CONSENT_READ = "consent:read", "Read consent state and history"
    CONSENT_WRITE = "consent:write", "Record consent events"
    DSR_READ = "dsr:read", "Read data-subject requests and their exports"
    DSR_WRITE = "dsr:write", "Open data-subject requests"
    PREFLIGHT = "preflight", "Check a message before it is sent"


ALL_PERMISSIONS = frozenset(KeyPermission.values)
