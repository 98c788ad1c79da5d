"""Changes below this app become events for the downstream endpoints, written in the same
transaction as the change. Imports are not pushed downstream (suppression.services.entries)."""

from django.dispatch import receiver

from compliance.consent.signals import withdrawn, withdrawn_in_bulk
from compliance.models import OptOutRequest
from compliance.webhooks.services import outbox
from suppression.models import Origin
from suppression.signals import changed, changed_in_bulk, opted_out


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


@receiver(changed_in_bulk, dispatch_uid="webhooks-changed-in-bulk")
def on_changed_in_bulk(sender, *, changes, **kwargs):
    """What on_suppression_changed and on_opted_out do for each change, in one statement."""
    pending = []
    for change in changes:
        if change.origin != Origin.IMPORT:
            added = outbox.suppression_added_of(change)
            if added is not None:
                pending.append(added)
        if change.opt_out is not None and change.opt_out.channel != OptOutRequest.Channel.IMPORT:
            pending.append(outbox.opt_out_created_of(change))
    outbox.record_many(pending)


@receiver(withdrawn_in_bulk, dispatch_uid="webhooks-consent-withdrawn-in-bulk")
def on_consent_withdrawn_in_bulk(sender, *, rows, **kwargs):
    outbox.consent_withdrawn_many(rows)  # never imported: an opt-out's own withdrawals
