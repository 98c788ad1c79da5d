"""`python manage.py preflight FILE [--nameserver HOST[:PORT]] [--transactional] [--json]`:
check a message before it is sent, as `POST /api/v1/preflight` does. Writes nothing.

Exits 0 when the message was checked, whatever the checks found; 2, with the reason, for a file
that cannot be read, bytes that are no message or a DNS server that is not an address.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from compliance.preflight.answer import COMMERCIAL, TRANSACTIONAL, preflight
from compliance.preflight.checks import NotAMessage

BAD_INPUT_EXIT_STATUS = 2


class Command(BaseCommand):
    help = (
        "Check a raw message before it is sent: unsubscribe headers, DKIM, DMARC alignment, "
        "unsubscribe link, postal address, subject. Writes nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", metavar="FILE", help="a raw RFC 5322 message; - for stdin")
        parser.add_argument(
            "--nameserver",
            action="append",
            dest="nameservers",
            metavar="HOST[:PORT]",
            help="DNS server asked for DKIM keys (IP address, [IPv6]:PORT for a port); "
            "repeat for more; default: DKIM_NAMESERVERS, else the system's",
        )
        parser.add_argument(
            "--transactional",
            action="store_true",
            help="judge it as transactional mail: no unsubscribe or postal address needed",
        )
        parser.add_argument(
            "--mail-from",
            metavar="ADDRESS",
            help="the envelope sender, for SPF alignment; default: the message's Return-Path",
        )
        parser.add_argument("--json", action="store_true", help="print the answer as JSON")

    def handle(self, *args, file, nameservers=None, transactional=False, mail_from=None, **options):
        raw = _read(file)
        try:
            answer = preflight(
                raw,
                kind=TRANSACTIONAL if transactional else COMMERCIAL,
                nameservers=nameservers,
                mail_from=mail_from,
            )
        except NotAMessage as exc:
            raise CommandError(f"{file}: {exc}", returncode=BAD_INPUT_EXIT_STATUS) from None
        except ValueError as exc:
            raise CommandError(str(exc), returncode=BAD_INPUT_EXIT_STATUS) from None
        if options["json"]:
            self.stdout.write(json.dumps(answer, ensure_ascii=False))
        else:
            self.stdout.write(_table(answer))


def _read(file: str) -> bytes:
    try:
        return sys.stdin.buffer.read() if file == "-" else Path(file).read_bytes()
    except OSError as exc:
        raise CommandError(
            f"cannot read {file}: {exc.strerror or exc}", returncode=BAD_INPUT_EXIT_STATUS
        ) from None


def _table(answer: dict) -> str:
    width = max(len(check["name"]) for check in answer["checks"])
    lines = [f"{answer['verdict'].upper()} (judged as {answer['kind']} mail)"]
    lines += [
        f"  {check['status']:<4}  {check['name']:<{width}}  {check['message']}"
        for check in answer["checks"]
    ]
    return "\n".join(lines)
