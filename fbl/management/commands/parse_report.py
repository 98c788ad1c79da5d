"""`python manage.py parse_report FILE... [--json]`: parse complaint and bounce reports and say
what they contain, writing nothing anywhere (DESIGN.md, public contracts).

With --json, one object per file per line, in the `parse_report --json` shape. A file that
cannot be read still gets its line (kind "unknown", the reason in problems); the command then
exits with status 2 after the other files.

manage.py runs this command through fbl/report_cli.py, without Django's start-up; this class is
what `call_command` and the calls that module leaves to Django run. Both print through
fbl/report_cli.py.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from fbl.report_cli import (
    HELP,
    UNREADABLE_EXIT_STATUS,
    add_arguments,
    print_reports,
    unreadable_message,
)


class Command(BaseCommand):
    help = HELP

    def add_arguments(self, parser):
        add_arguments(parser)

    def handle(self, *args, **options):
        files = options["files"]
        unreadable = print_reports(
            files, as_json=options["json"], max_bytes=options["max_bytes"], write=self.stdout.write
        )
        if unreadable:
            raise CommandError(
                unreadable_message(unreadable, len(files)), returncode=UNREADABLE_EXIT_STATUS
            )
