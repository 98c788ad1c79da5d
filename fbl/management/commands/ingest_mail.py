"""Inbound mail from an MTA pipe (one message on stdin) or a backfill (mbox, Maildir).

Exit status for the pipe (sysexits.h, as Postfix's pipe(8) reads it): 0 stored, 75
(EX_TEMPFAIL) when it cannot be stored now, so the MTA keeps the message and retries. A message
is never dropped.
"""

import mailbox
import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError
from tqdm import tqdm

from fbl import sources
from fbl.models import InboundMessage
from fbl.provenance import OPERATOR

EX_TEMPFAIL = 75


class Command(BaseCommand):
    help = "Store and process inbound mail: one message from stdin, or an mbox or Maildir."

    def add_arguments(self, parser):
        source = parser.add_mutually_exclusive_group()
        source.add_argument("--mbox", type=Path, help="read every message of this mbox file")
        source.add_argument("--maildir", type=Path, help="read every message of this Maildir")
        parser.add_argument("--sender", default="", help="envelope sender (Postfix: ${sender})")
        parser.add_argument(
            "--recipient", default="", help="envelope recipient (Postfix: ${original_recipient})"
        )

    def handle(self, *args, mbox=None, maildir=None, sender="", recipient="", **options):
        if mbox or maildir:
            return self._backfill(mbox, maildir)
        raw = sys.stdin.buffer.read()
        if not raw:
            raise CommandError("no message on standard input", returncode=2)
        try:
            message, _ = sources.get("mail").take(
                raw,
                provenance=OPERATOR,  # the operator's own MTA
                channel=InboundMessage.Source.PIPE,
                envelope_sender=sender,
                envelope_recipient=recipient,
            )
        except DatabaseError as exc:
            self.stderr.write(
                f"cannot store the message now ({type(exc).__name__}); the MTA will retry"
            )
            sys.exit(EX_TEMPFAIL)
        self.stdout.write(f"stored as inbound message {message.pk} ({message.status})")

    def _backfill(self, mbox, maildir):
        path = mbox or maildir
        if not path.exists():
            raise CommandError(f"no such {'file' if mbox else 'directory'}: {path}", returncode=2)
        box = mailbox.mbox(path, create=False) if mbox else mailbox.Maildir(path, create=False)
        channel = InboundMessage.Source.MBOX if mbox else InboundMessage.Source.MAILDIR
        mail = sources.get("mail")
        stored = 0
        try:
            for key in tqdm(box.keys(), unit="msg", disable=not sys.stderr.isatty()):
                mail.take(box.get_bytes(key), provenance=OPERATOR, channel=channel)
                stored += 1
        except DatabaseError as exc:
            self.stderr.write(
                f"stopped after {stored} messages: {type(exc).__name__}; "
                "run again to continue (stored messages are recognised)"
            )
            sys.exit(EX_TEMPFAIL)
        self.stdout.write(f"stored {stored} messages from {path}")
