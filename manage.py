#!/usr/bin/env python
"""Django's command-line utility for the compliance service."""

import os
import sys


def main() -> None:
    if sys.argv[1:2] == ["parse_report"]:
        # Parsing needs no app, database or setting: skip Django's start-up (fbl/report_cli.py).
        from fbl.report_cli import exit_now
        from fbl.report_cli import main as parse_report

        status = parse_report(sys.argv[2:])
        if status is not None:
            exit_now(status)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "compliance.settings")
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import execute_from_command_line

    try:
        execute_from_command_line(sys.argv)
    except ImproperlyConfigured as exc:
        # A configuration mistake is the operator's to fix: say which variable, no traceback.
        sys.stderr.write(f"configuration error: {exc}\n")
        sys.exit(2)


if __name__ == "__main__":
    main()
