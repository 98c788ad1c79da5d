"""End-to-end ingestion of report mail on PostgreSQL: parse, store and act, as the MTA pipe does.

10,000 distinct messages (--reports) are built from the shared fixture corpus: feedback-loop
complaints (ARF, --arf-share of them, 0.1 by default) and bounces (DSN) for the rest, every copy
with its own recipient addresses and Message-ID so that deduplication keeps them all. The ARF
reports are DKIM-signed with a key published by a private dnsmasq on loopback, whose signing
domain is configured as a feedback loop (FBL_SENDER_DOMAINS, DKIM_NAMESERVERS): each one is
trusted and acts (a key lookup and a signature check per report). The messages have the LF line
ends a Postfix pipe hands over.

Measured: `fbl.ingest.receive(raw, source="pipe")` over all of them, one after another in one
process (what `manage.py ingest_mail` does per message, without the process start), after a
quiet wait. For information, --sample more messages of the same mix each through its own
`manage.py ingest_mail` process, as a Postfix pipe transport runs it: the per-process cost.

Verified afterwards (a mismatch fails the run): every message stored once and processed, every
ARF trusted, and exactly the suppressions the parser's action table calls for (one complaint
entry per complained-about recipient, one hard-bounce entry per permanently failed one).

No target in DESIGN.md: the figures are for information. Needs PostgreSQL on 127.0.0.1:5432 and
dnsmasq (`apt-get install dnsmasq-base`). Run from anywhere: `python bench/ingest_reports.py`.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import common

ROOT = common.ROOT
FIXTURES = ROOT.parent / "shared" / "fixtures" / "email"

FBL_DOMAIN = "fbl.isp.bench.example"  # the feedback loop's DKIM signing domain (d=)
FBL_SENDER_DOMAINS = "isp.bench.example"  # configured: it and its subdomains are trusted
SELECTOR = "s1"
ARF_SENDER = f"feedback@{FBL_DOMAIN}"
REPORT_ADDRESS = "fbl@reports.bench.example"
BOUNCE_ADDRESS = "bounces@reports.bench.example"
PROBE_INDEX = 999_999  # the widest copy number: templates are checked with it


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reports", type=common.positive_int, default=10_000,
                        help="messages ingested in-process (default 10,000)")
    parser.add_argument("--arf-share", type=float, default=0.1,
                        help="fraction of them that are ARF complaints, the rest bounces "
                             "(default 0.1)")
    parser.add_argument("--sample", type=int, default=100,
                        help="more messages, each through its own manage.py ingest_mail "
                             "process (default 100; 0: skip)")
    parser.add_argument("--fixtures", type=Path, default=FIXTURES,
                        help="the shared email fixture directory")
    parser.add_argument("--quiet-wait", type=float, default=180,
                        help="seconds to wait for other work on the machine to stop before "
                             "measuring (default 180; 0: do not wait)")
    args = parser.parse_args(argv)
    if not 0 <= args.arf_share <= 1:
        parser.error("--arf-share must be between 0 and 1")
    if args.sample < 0:
        parser.error("--sample must be 0 or more")
    if args.reports + args.sample > PROBE_INDEX:
        parser.error(f"at most {PROBE_INDEX:,} messages in all")
    return args


# --- messages ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Template:
    name: str
    kind: str  # "arf" or "dsn"
    raw: bytes
    addresses: tuple[str, ...]  # the recipients the parser finds, each replaced in every copy
    suppressions: Counter  # reason -> entries one copy makes


@dataclass(frozen=True)
class Report:
    kind: str
    raw: bytes
    sender: str
    recipient: str
    template: str


_MESSAGE_ID = re.compile(rb"(?im)^message-id:[ \t]*[^\n]*\n(?:[ \t][^\n]*\n)*")


def _copy_address(index: int, position: int, address: str) -> str:
    """A recipient no other copy has, in the original's domain (its mailbox provider). Only
    letters and digits in the local part: no provider's normalisation folds two together."""
    return f"bench{index:06d}r{position}@{address.rpartition('@')[2]}"


def make_copy(template: Template, index: int) -> bytes:
    """The template with every recipient address and its top Message-ID made unique."""
    raw = template.raw
    for position, address in enumerate(template.addresses):
        new = _copy_address(index, position, address).encode()
        raw = re.sub(re.escape(address.encode()), new, raw, flags=re.IGNORECASE)
    head, separator, body = raw.partition(b"\n\n")
    message_id = b"Message-ID: <bench-%06d@reports.bench.example>\n" % index
    head, found = _MESSAGE_ID.subn(message_id, head + b"\n", count=1)
    if not found:
        head = message_id + head
    return head[:-1] + separator + body


def _verdicts(report) -> tuple[Counter, Counter]:
    """(verb counts, suppression entries by reason) of a parsed report."""
    from fbl.actions import actions_for
    from suppression import rules

    # The suppression reason each suppressing verb leaves (fbl.services).
    reasons = {"complaint": rules.COMPLAINT, "unsubscribe": rules.UNSUBSCRIBE,
               "hard_bounce": rules.HARD_BOUNCE}
    actions = actions_for(report)
    verbs = Counter(action.verb for action in actions)
    entries = {(action.verb, action.address.lower()) for action in actions if action.suppresses}
    return verbs, Counter(reasons[verb] for verb, _ in entries)


def load_templates(directory: Path) -> list[Template]:
    """Every ARF and DSN fixture whose recipients can be replaced: a copy must read exactly as
    the original does (same kind, same actions), with the new addresses as its recipients.
    Parsed with the service's own recovery hooks, as ingestion parses them."""
    from fbl import ours
    from fbl.parse import parse

    hooks = ours.hooks()
    templates = []
    for kind in ("arf", "dsn"):
        for path in sorted((directory / kind).glob("*.eml")):
            raw = path.read_bytes().replace(b"\r\n", b"\n")
            original = parse(raw, hooks=hooks)
            addresses = tuple(dict.fromkeys(
                r.address.lower() for r in original.recipients if r.address and not r.redacted
            ))
            if original.kind != kind or not addresses or any(
                r.redacted or not r.address for r in original.recipients
            ):
                continue
            template = Template(path.name, kind, raw, addresses, Counter())
            probe = parse(make_copy(template, PROBE_INDEX), hooks=hooks)
            expected = {_copy_address(PROBE_INDEX, i, a) for i, a in enumerate(addresses)}
            found = {(r.address or "").lower() for r in probe.recipients}
            verbs, suppressions = _verdicts(probe)
            if probe.kind != kind or found != expected or verbs != _verdicts(original)[0]:
                continue
            templates.append(Template(path.name, kind, raw, addresses, suppressions))
    return templates


def is_arf(index: int, share: float) -> bool:
    """ARF complaints spread evenly through the sequence, `share` of any stretch of it."""
    return int((index + 1) * share) > int(index * share)


def build_reports(first: int, count: int, share: float, arfs: list[Template],
                  dsns: list[Template], key) -> list[Report]:
    from tests.fbl.signing import dkim_sign

    reports = []
    for index in range(first, first + count):
        if is_arf(index, share):
            template = arfs[int(index * share) % len(arfs)]
            raw = dkim_sign(make_copy(template, index), key, domain=FBL_DOMAIN,
                            selector=SELECTOR)
            # What a Postfix pipe hands over: LF line ends, the signature's folds included.
            reports.append(Report("arf", raw.replace(b"\r\n", b"\n"), ARF_SENDER,
                                  REPORT_ADDRESS, template.name))
        else:
            template = dsns[(index - int(index * share)) % len(dsns)]
            reports.append(Report("dsn", make_copy(template, index), "", BOUNCE_ADDRESS,
                                  template.name))
    return reports


def expected_suppressions(reports: list[Report], templates: list[Template]) -> Counter:
    by_name = {t.name: t for t in templates}
    total = Counter()
    for report in reports:
        total.update(by_name[report.template].suppressions)
    return total


# --- measuring -----------------------------------------------------------------------------------


def ingest_in_process(reports: list[Report]) -> tuple[float, dict[str, float], dict]:
    """(wall seconds, seconds per kind, CPU) of receive() over every report, in order."""
    from fbl import ingest

    per_kind = Counter()
    meter = common.CpuMeter()
    meter.start()
    began = time.perf_counter()
    for n, report in enumerate(reports, 1):
        start = time.perf_counter()
        try:
            message, created = ingest.receive(report.raw, source="pipe",
                                              envelope_sender=report.sender,
                                              envelope_recipient=report.recipient)
        except Exception as exc:
            raise common.BenchError(f"report {n} ({report.template}) could not be ingested: "
                                    f"{type(exc).__name__}: {exc}") from exc
        per_kind[report.kind] += time.perf_counter() - start
        if not created:
            raise common.BenchError(f"report {n} ({report.template}) was taken for a duplicate "
                                    f"of inbound message {message.pk}")
        if n % 2000 == 0:
            common.log(f"{n:,} of {len(reports):,} ingested")
    wall = time.perf_counter() - began
    return wall, dict(per_kind), meter.stop()


def ingest_by_command(reports: list[Report], env: dict[str, str]) -> float:
    """Wall seconds to pipe each report into its own `manage.py ingest_mail` process."""
    began = time.perf_counter()
    for report in reports:
        done = subprocess.run(
            [str(common.PYTHON), str(ROOT / "manage.py"), "ingest_mail",
             "--sender", report.sender, "--recipient", report.recipient],
            cwd=ROOT, env=env, input=report.raw, capture_output=True, timeout=120,
        )
        if done.returncode != 0:
            raise common.BenchError(
                f"manage.py ingest_mail exited {done.returncode} for {report.template}:\n"
                f"{done.stdout.decode(errors='replace')}{done.stderr.decode(errors='replace')}"
            )
    return time.perf_counter() - began


def verify(reports: list[Report], expected: Counter) -> dict[str, Counter]:
    """What the database holds; BenchError unless it is exactly what the reports call for."""
    from django.db.models import Count

    from fbl.models import InboundMessage
    from suppression.models import Suppression

    kinds = Counter(r.kind for r in reports)
    messages = InboundMessage.objects
    found = {
        "stored": Counter(dict(messages.values_list("kind").annotate(n=Count("id")))),
        "status": Counter(dict(messages.values_list("status").annotate(n=Count("id")))),
        "source": Counter(dict(messages.values_list("source").annotate(n=Count("id")))),
        "trusted": Counter(dict(messages.filter(kind="arf").values_list("dkim_domain")
                                .annotate(n=Count("id")))),
        "suppressions": Counter(dict(Suppression.objects.filter(lifted_at__isnull=True)
                                     .values_list("reason").annotate(n=Count("id")))),
    }
    wanted = {
        "stored": kinds,
        "status": Counter({InboundMessage.Status.PROCESSED.value: len(reports)}),
        "source": Counter({InboundMessage.Source.PIPE.value: len(reports)}),
        "trusted": Counter({FBL_DOMAIN: kinds["arf"]}) if kinds["arf"] else Counter(),
        "suppressions": expected,
    }
    wrong = [f"{what}: {dict(found[what])}, expected {dict(wanted[what])}"
             for what in wanted if +found[what] != +wanted[what]]
    if wrong:
        raise common.BenchError("the database does not hold what the reports call for:\n  "
                                + "\n  ".join(wrong))
    return found


# --- the run -------------------------------------------------------------------------------------


def _dnsmasq_available() -> bool:
    return bool(shutil.which("dnsmasq")) or os.path.exists("/usr/sbin/dnsmasq")


def main(args: argparse.Namespace) -> int:
    if not _dnsmasq_available():
        raise common.BenchError("dnsmasq is needed (apt-get install dnsmasq-base)")
    try:
        from tests.dns_server import start_dns_server, stop_dns_server
        from tests.fbl.signing import key_record, new_key
    except ImportError as exc:
        raise common.BenchError(f"the test helpers cannot be imported ({exc}): install the "
                                "development dependencies (pip install -e '.[dev]')") from exc

    common.create_database()
    key = new_key()
    server = start_dns_server({f"{SELECTOR}._domainkey.{FBL_DOMAIN}": key_record(key)})
    try:
        common.log(f"dnsmasq on {server.nameserver} publishes the feedback loop's key")
        feedback_loop = {
            "FBL_SENDER_DOMAINS": FBL_SENDER_DOMAINS,
            "DKIM_NAMESERVERS": server.nameserver,
            "DKIM_DNS_TIMEOUT": "2",
        }
        env = common.bench_env(feedback_loop)
        os.environ.update(env)
        import django

        django.setup()
        return run(args, key, env)
    finally:
        stop_dns_server(server)


def run(args: argparse.Namespace, key, env: dict[str, str]) -> int:
    templates = load_templates(args.fixtures)
    arfs = [t for t in templates if t.kind == "arf"]
    dsns = [t for t in templates if t.kind == "dsn"]
    if (args.arf_share < 1 and not dsns) or (args.arf_share > 0 and not arfs):
        raise common.BenchError(f"too few usable fixtures under {args.fixtures}: "
                                f"{len(arfs)} ARF, {len(dsns)} DSN")
    common.log(f"templates: {len(arfs)} ARF ({', '.join(t.name for t in arfs)}), "
               f"{len(dsns)} DSN")
    began = time.perf_counter()
    reports = build_reports(0, args.reports, args.arf_share, arfs, dsns, key)
    sample = build_reports(args.reports, args.sample, args.arf_share, arfs, dsns, key)
    everything = reports + sample
    if len({r.raw for r in everything}) != len(everything):
        raise common.BenchError("two generated messages are identical")
    kinds = Counter(r.kind for r in reports)
    size = sum(len(r.raw) for r in reports)
    common.log(f"built and signed {len(everything):,} messages in "
               f"{time.perf_counter() - began:.1f}s ({kinds['arf']:,} ARF, {kinds['dsn']:,} DSN "
               f"in the main set; {size / 1e6:.1f} MB)")

    from django.db import connection

    connection.ensure_connection()
    common.wait_quiet(max_wait=args.quiet_wait)
    probes = [common.cpu_probe()]
    common.log(f"ingesting {len(reports):,} reports in-process")
    wall, per_kind, cpu = ingest_in_process(reports)
    probes.append(common.cpu_probe())
    rate = len(reports) / wall
    common.log(f"{len(reports):,} reports in {wall:.1f}s: {rate:,.0f} reports/s")
    after_main = verify(reports, expected_suppressions(reports, templates))

    command_wall = None
    if sample:
        common.wait_quiet(max_wait=args.quiet_wait)
        common.log(f"ingesting {len(sample)} more through manage.py ingest_mail, one process each")
        command_wall = ingest_by_command(sample, env)
    found = verify(everything, expected_suppressions(everything, templates))

    n = len(reports)
    lines = [
        ("reports (in-process)",
         f"{n:,}: {kinds['arf']:,} ARF (DKIM-signed, trusted) from {len(arfs)} fixtures, "
         f"{kinds['dsn']:,} DSN from {len(dsns)} fixtures; {size / n / 1024:.1f} KiB average"),
        ("fbl.ingest.receive, one process",
         f"{wall:.1f} s; {rate:,.0f} reports/s ({wall / n * 1000:.2f} ms each)"),
    ]
    for kind in ("arf", "dsn"):
        if kinds[kind]:
            lines.append((f"  {kind.upper()} reports",
                          f"{per_kind[kind] / kinds[kind] * 1000:.2f} ms each "
                          f"({kinds[kind] / per_kind[kind]:,.0f}/s)"))
    lines += [
        ("CPU per report",
         f"this process {cpu['client'] / n * 1000:.2f} ms, PostgreSQL "
         f"{cpu['postgres'] / n * 1000:.2f} ms; dnsmasq {cpu['workers']:.2f} s in all"),
    ]
    if command_wall is not None:
        per = command_wall / len(sample)
        lines.append(("manage.py ingest_mail, a process each",
                      f"{len(sample)} reports in {command_wall:.1f} s: {per * 1000:.0f} ms each "
                      f"({1 / per:.1f}/s), {per / (wall / n):.0f} x the in-process time "
                      f"(information)"))
    suppressions = found["suppressions"]
    lines += [
        ("verified",
         f"{sum(found['stored'].values()):,} stored and processed, "
         f"{found['trusted'][FBL_DOMAIN]:,} ARF trusted; suppressions "
         + ", ".join(f"{reason} {count:,}" for reason, count in sorted(suppressions.items()))
         + f" (in-process set alone: {sum(after_main['suppressions'].values()):,}) = expected"),
        ("other work on the machine",
         f"{cpu['other_cores']:.2f} cores during the in-process run (of {os.cpu_count()})"),
        ("CPU speed probe", f"{probes[0]:.0f} ms before, {probes[1]:.0f} ms after "
                            f"(common.cpu_probe; higher = slower machine)"),
        ("target", "none in DESIGN.md (information)"),
    ]
    common.print_summary("report ingestion (parse, store, act)", lines)
    return 0


if __name__ == "__main__":
    common.run_main(main, parse_args)
