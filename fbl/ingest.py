"""Taking inbound mail in: store first (so nothing is ever lost), then route.

Every way in (the MTA pipe, HTTP, mbox and Maildir backfills) calls `receive`. The message is
stored (`fbl.services.store_inbound_message`) before anything else; a routing failure leaves it
stored as received, and the next delivery of the same bytes routes it again.
"""

from __future__ import annotations

import logging

from django.db import InterfaceError, OperationalError, transaction

from fbl import plugins, services
from fbl.models import InboundMessage
from fbl.provenance import OPERATOR, Provenance

log = logging.getLogger(__name__)


def raw_bytes(message: InboundMessage) -> bytes:
    return message.raw()


def route(message: InboundMessage) -> None:
    """Act on a stored message: mail a registered handler claims (fbl/plugins.py: mail to
    `unsubscribe+TOKEN@...`) goes to it, everything else is read as a report
    (fbl.services.process)."""
    raw = raw_bytes(message)
    handler = plugins.mail_handler_for(raw, message.envelope_recipient)
    if handler is not None:
        outcome = handler.handle(
            raw, envelope_recipient=message.envelope_recipient, tenant_id=message.tenant_id
        )
        services.record_handled_mail(message, kind=handler.kind, outcome=outcome, handler=handler)
        return
    services.act_on_report(message)


def receive(
    raw: bytes,
    *,
    source: str,
    envelope_sender: str = "",
    envelope_recipient: str = "",
    provenance: Provenance = OPERATOR,
) -> tuple[InboundMessage, bool]:
    """Store, then route the message; returns (message, created). A copy already stored but not
    yet processed is routed again, so an MTA's redelivery retries what failed. Raises
    DatabaseError when the database cannot take the message, or is unreachable while routing
    it: the caller answers "try again later". Any other failure to process a stored message
    leaves it unrecognised, for staff review."""
    message, created = services.store_inbound_message(
        raw,
        source=source,
        envelope_sender=envelope_sender,
        envelope_recipient=envelope_recipient,
        provenance=provenance,
    )
    if message.status == InboundMessage.Status.RECEIVED:
        try:
            with transaction.atomic():  # a failure rolls back only the routing
                route(message)
        except (OperationalError, InterfaceError):
            raise  # the database is away: the MTA's redelivery routes the stored copy again
        except Exception as exc:
            # Retrying cannot fix this message: keep it for staff rather than make the MTA
            # retry it until its queue lifetime ends.
            log.exception("inbound message %s could not be processed", message.pk)
            services.mark_unprocessable(message, error=exc)
        message.refresh_from_db()
    return message, created

