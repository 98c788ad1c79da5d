"""`python manage.py parse_report FILE... [--json]`: parse complaint and bounce reports and say
what they contain, writing nothing anywhere (DESIGN.md, public contracts).

With --json, one object per file per line, in the `parse_report --json` shape. A file that
cannot be read still gets its line (kind "unknown", the reason in problems); the command then
exits with status 2 after the other files.
"""

from __future__ import annotations

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from fbl.parse import parse
from fbl.report import ParsedReport, to_json

UNREADABLE_EXIT_STATUS = 2


class Command(BaseCommand):
    help = "Parse ARF complaint and DSN bounce messages and print what they say. Writes nothing."

    def add_arguments(self, parser):
        parser.add_argument("files", nargs="+", metavar="FILE", help="raw RFC 5322 messages")
        parser.add_argument(
            "--json", action="store_true", help="one JSON object per file, one per line"
        )
        parser.add_argument(
            "--max-bytes",
            type=int,
            default=None,
            help="parse only the first N bytes of larger messages",
        )

    def handle(self, *args, **options):
        unreadable = 0
        for name in options["files"]:
            try:
                raw = Path(name).read_bytes()
            except OSError as exc:
                unreadable += 1
                report = ParsedReport(
                    kind="unknown", problems=(f"cannot read the file: {exc.strerror or exc}",)
                )
            else:
                report = parse(raw, max_bytes=options["max_bytes"])
            if options["json"]:
                self.stdout.write(json.dumps(to_json(report, name), ensure_ascii=False))
            else:
                self.stdout.write(_summary(name, report))
        if unreadable:
            raise CommandError(
                f"{unreadable} of {len(options['files'])} files could not be read",
                returncode=UNREADABLE_EXIT_STATUS,
            )


def _summary(name: str, report: ParsedReport) -> str:
    head = f"{name}: {report.kind}"
    if report.feedback_type:
        head += f" ({report.feedback_type})"
    count = len(report.recipients)
    head += f", {count} recipient{'' if count == 1 else 's'}"
    lines = [head]
    for r in report.recipients:
        address = r.address or (f"[redacted: {r.original_address}]" if r.redacted else "?")
        facts = [r.status or "-", r.action or "-", "hard" if r.hard else "soft", r.category]
        lines.append(f"  {address}  {' '.join(facts)}  via {r.found_by}")
        if r.diagnostic:
            lines.append(f"    {r.diagnostic[:160]}")
    lines.extend(f"  problem: {problem}" for problem in report.problems)
    return "\n".join(lines)
