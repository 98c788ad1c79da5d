"""What `manage.py parse_report` does, without Django: its arguments, its output, and `main`,
the entry point manage.py takes for it.

Parsing a file needs no app, database or setting, yet Django's start-up (every app imported,
settings read, system checks run) took longer than parsing the whole fixture corpus. So
manage.py hands `parse_report` to `main` here, which imports no Django. The Django command
(fbl/management/commands/parse_report.py) prints through the same functions, so both paths
give the same bytes. Over many files `main` parses on every CPU it may use, printing in the
order given (fbl/parallel_reports.py). Anything `main` does not handle itself (help,
--version, --settings, --pythonpath, --traceback, --force-color, any argument error) it leaves
to the Django command, which then answers exactly as it always has.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn

from fbl import pattern_cache
from fbl.parallel_reports import print_in_parallel, worker_count
from fbl.parse import parse
from fbl.report import ParsedReport, to_json

__all__ = [
    "HELP",
    "UNREADABLE_EXIT_STATUS",
    "add_arguments",
    "exit_now",
    "main",
    "print_reports",
    "summary",
    "unreadable_message",
]

HELP = "Parse ARF complaint and DSN bounce messages and print what they say. Writes nothing."
UNREADABLE_EXIT_STATUS = 2

# Django's own options of every command (BaseCommand.create_parser), so that abbreviations and
# errors resolve as they do there. Those that change what Django does send the call to Django.
_TO_DJANGO = ("version", "settings", "pythonpath", "traceback", "force_color")


def add_arguments(parser: argparse.ArgumentParser) -> None:
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


def print_reports(
    files: Sequence[str], *, as_json: bool, max_bytes: int | None, write: Callable[[str], None]
) -> int:
    """Parse each file and `write` its summary (or JSON line); the number of unreadable files."""
    if as_json:
        import json

    unreadable = 0
    for name in files:
        try:
            with open(name, "rb") as file:
                raw = file.read()
        except OSError as exc:
            unreadable += 1
            report = ParsedReport(
                kind="unknown", problems=(f"cannot read the file: {exc.strerror or exc}",)
            )
        else:
            report = parse(raw, max_bytes=max_bytes)
        if as_json:
            write(json.dumps(to_json(report, name), ensure_ascii=False))
        else:
            write(summary(name, report))
    return unreadable


def unreadable_message(unreadable: int, total: int) -> str:
    return f"{unreadable} of {total} files could not be read"


def summary(name: str, report: ParsedReport) -> str:
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


class _LeaveToDjango(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # type: ignore[override]
        raise _LeaveToDjango(message)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(add_help=False)  # -h is Django's to answer
    parser.add_argument("--version", action="store_true")
    parser.add_argument("-v", "--verbosity", default=1, type=int, choices=[0, 1, 2, 3])
    parser.add_argument("--settings")
    parser.add_argument("--pythonpath")
    parser.add_argument("--traceback", action="store_true")
    parser.add_argument("--no-color", action="store_true")
    parser.add_argument("--force-color", action="store_true")
    parser.add_argument("--skip-checks", action="store_true")
    add_arguments(parser)
    return parser


def main(argv: Sequence[str]) -> int | None:
    """Run `parse_report` with the arguments that follow it on the command line: the exit
    status, or None when the call is Django's to answer (nothing has been printed then)."""
    try:
        options = _parser().parse_args(argv)
    except _LeaveToDjango:
        return None
    if any(getattr(options, name) for name in _TO_DJANGO):
        return None

    def run(files: Sequence[str], emit: Callable[[str], None]) -> int:
        def write(text: str) -> None:
            # As Django's OutputWrapper: a line ending unless the text has one.
            emit(text if text.endswith("\n") else text + "\n")

        return print_reports(files, as_json=options.json, max_bytes=options.max_bytes, write=write)

    out = sys.stdout
    workers = worker_count(options.files) if hasattr(out, "buffer") else 1
    if workers > 1:
        unreadable = print_in_parallel(options.files, run, out.write, workers)
    else:
        unreadable = run(options.files, out.write)
    if not unreadable:
        return 0
    message = f"CommandError: {unreadable_message(unreadable, len(options.files))}\n"
    if not options.no_color and sys.stderr.isatty():
        # Django colours its error on a terminal; its colour module is small and needs no setup.
        from django.core.management.color import color_style

        message = color_style().ERROR(message)
    out.flush()
    sys.stderr.write(message)
    return UNREADABLE_EXIT_STATUS


def exit_now(status: int) -> NoReturn:
    """Exit with `status` once what was printed is written out, skipping the interpreter's
    teardown: freeing every module and object a parse leaves behind took about 10 ms, as long
    as parsing a dozen reports. The rules compiled on the way are kept first, as at any exit."""
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BaseException:
        sys.exit(status)  # a reader gone, say: the ordinary exit reports it as it always has
    pattern_cache.CACHE.write()
    os._exit(status)
