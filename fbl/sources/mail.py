"""Report mail: one raw RFC 5322 message (an ARF complaint, a DSN, a bounce, an auto-reply), from
`POST /api/v1/reports` or the MTA's pipe to `manage.py ingest_mail`.

The message is stored before it is read (fbl/ingest.py), so nothing is lost; it is then read by
`fbl.parse.parse` and acted on by `fbl.services.process`. A tenant-bound poster's message is
stored as that tenant's, and what it may reach is decided when its recipients are attributed
(`Provenance.attribution`): mail carries no tenant of its own to bind before it is parsed.
"""

from __future__ import annotations

from fbl import ingest
from fbl.models import InboundMessage
from fbl.provenance import Provenance
from fbl.sources.base import Source, register


class MailSource(Source):
    name = "mail"

    def take(
        self,
        body: bytes,
        *,
        provenance: Provenance,
        channel: str = InboundMessage.Source.HTTP,
        envelope_sender: str = "",
        envelope_recipient: str = "",
    ) -> tuple[InboundMessage, bool]:
        """Store, then route the message (`fbl.ingest.receive`): (message, created). Raises
        DatabaseError when it cannot be stored now; the caller asks for a retry."""
        return ingest.receive(
            body,
            source=channel,
            envelope_sender=envelope_sender,
            envelope_recipient=envelope_recipient,
            provenance=provenance,
        )


SOURCE = register(MailSource())
