"""Changes below this app become events for the downstream endpoints, written in the same
transaction as the change. Imports are not pushed downstream (suppression.services.entries)."""

from django.dispatch import receiver

from compliance.consent.signals import withdrawn
from compliance.webhooks.services import outbox
from suppression.models import Origin
from suppression.signals import changed, opted_out


@receiver(changed, dispatch_uid="webhooks-suppression-changed")
def on_suppression_changed(sender, *, suppression, action, address, target, opt_out, **kwargs):
    if suppression.origin == Origin.IMPORT and action != "lift":
        return
    outbox.suppression_changed(suppression, action, address, target, opt_out)


@receiver(opted_out, dispatch_uid="webhooks-opted-out")
def on_opted_out(sender, *, request, target, address, reason, **kwargs):
    if request.channel == request.Channel.IMPORT:
        return
    outbox.opt_out_created(request, target, address, reason)


@receiver(withdrawn, dispatch_uid="webhooks-consent-withdrawn")
def on_consent_withdrawn(sender, *, records, **kwargs):
    for row in records:
        if row.import_key is None:
            outbox.consent_withdrawn(row)
