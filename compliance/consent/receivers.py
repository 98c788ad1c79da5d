"""Every opt-out the suppression list records is also a withdrawal in the ledger (GDPR Art. 7(3)),
written in the opt-out's own transaction."""

from django.dispatch import receiver

from compliance.consent import services
from suppression.signals import changed_in_bulk, opted_out


@receiver(opted_out, dispatch_uid="consent-withdrawal-for-opt-out")
def withdraw(sender, *, request, target, address, reason, **kwargs):
    services.withdraw_for_opt_out(request=request, target=target, address=address, reason=reason)


@receiver(changed_in_bulk, dispatch_uid="consent-withdrawals-for-opt-outs-in-bulk")
def withdraw_in_bulk(sender, *, changes, **kwargs):
    services.withdraw_for_opt_outs(changes)
