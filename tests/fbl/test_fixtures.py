"""The real-world corpus (shared/fixtures/email, from Sisimai's set-of-emails) against
expected.json, which holds Sisimai's reading of each message.

How Sisimai's values map onto ours:
- recipient: the address, compared case-insensitively. Sisimai's placeholder
  "undisclosed-recipient-in-headers@libsisimai.org.invalid" means "no address in the message":
  we must then return no recipient. A redacted address (RFC 6650 3) must come back with
  redacted=True, address None and the text in original_address.
- status: compared exactly when it is an RFC 3463 code. Sisimai's own X.0.9NN codes are labels
  it invents, not RFC 3463 codes: not compared. An X.0.0 ("other or undefined") is compared by
  class only.
- hard: Sisimai's flag, except that its "suspend" reason (a disabled or suspended mailbox)
  counts as hard here: our policy puts 5.2.1 "mailbox disabled" in the permanent class.
- feedback type: compared for complaints; kind: the directory (arf/, dsn/, autoreply/).

Where expected.json is wrong, CORRECTIONS says why and what the message really shows; those
files are checked against the correction instead. `test_agreement_rate` keeps the list
honest: every corrected file must still disagree with expected.json.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

from fbl.addresses import is_redacted
from fbl.parse import parse
from fbl.report import ParsedReport

from .messages import FIXTURES, fixture_files, require_fixtures

PLACEHOLDER = "undisclosed-recipient-in-headers@libsisimai.org.invalid"
SISIMAI_PSEUDO_STATUS = re.compile(r"^\d\.0\.9\d\d$")
KINDS = {"arf": "arf", "dsn": "dsn", "autoreply": "autoreply"}


@dataclass(frozen=True)
class Expect:
    address: str
    status: str | None  # None: not compared
    hard: bool
    feedback_type: str | None = None


@dataclass(frozen=True)
class Correction:
    why: str
    recipients: tuple[Expect, ...]


def _unknown_user(address: str, status: str, quote: str) -> Correction:
    return Correction(
        why=f'Sisimai says "filtered" (hard: false); the message says {quote} and nothing '
        "points to a content filter or to a refusal after DATA by a filtering host",
        recipients=(Expect(address, status, True),),
    )


CORRECTIONS: dict[str, Correction] = {
    "dsn/lhost-amazonses-19.eml": Correction(
        why='Sisimai says "suspend", which this test maps to hard; the diagnostic says "User '
        '... temporary locked. Please try again later!": a temporary lock, not a dead address',
        recipients=(Expect("kijitora@example.com", "5.7.1", False),),
    ),
    "dsn/lhost-apachejames-01.eml": Correction(
        why='the failed recipient is "RCPT TO: 000000000000@vtext.example.com" (twelve zeros); '
        'expected.json drops one. The reply is "550 - Requested action not taken: no such user '
        'here" after "Error: Invalid user address": a dead address, not "filtered"',
        recipients=(Expect("000000000000@vtext.example.com", "5.1.1", True),),
    ),
    "dsn/lhost-domino-03.eml": Correction(
        why="Final-Recipient and the enclosed To: both say kijitora@neko.example.org; Sisimai "
        "took the .com spelling of the human-readable text",
        recipients=(Expect("kijitora@neko.example.org", "5.0.0", False),),
    ),
    "dsn/lhost-exim-31.eml": Correction(
        why='"The account or domain may not exist, they may be blacklisted, or missing the '
        'proper dns entries" names three possible causes without saying which: no evidence of '
        "a dead address (Sisimai: hostunknown, hard)",
        recipients=(Expect("kijitora@example.net", None, False),),
    ),
    "dsn/lhost-mailfoundry-01.eml": _unknown_user(
        "kijitora@example.org", "5.1.1", '"550 <kijitora@example.org> No such user here"'
    ),
    "dsn/lhost-messagingserver-03.eml": Correction(
        why='Sisimai says "filtered"; both recipients got "550 5.7.1 550 User Unknown", a dead '
        "address under a catch-all 5.7.1",
        recipients=(
            Expect("sabineko@example.org", "5.7.1", True),
            Expect("mikeneko@example.org", "5.7.1", True),
        ),
    ),
    "dsn/lhost-messagingserver-06.eml": _unknown_user(
        "kijitora@example.jp", "5.2.1", '"550 5.2.1 <kijitora@example.jp>... User Unknown"'
    ),
    "dsn/lhost-mfilter-01.eml": _unknown_user(
        "kijitora@example.com", "5.1.1", '"550 unknown user <kijitora@example.com>"'
    ),
    "dsn/lhost-mfilter-03.eml": _unknown_user(
        "kijitora@example.org", "5.1.1", '"550 kijitora@example.org... No such user"'
    ),
    "dsn/lhost-mxlogic-03.eml": _unknown_user(
        "kijitora@example.co.jp", "5.1.1", '"<kijitora@example.co.jp>: 550 unknown user"'
    ),
    "dsn/lhost-postfix-03.eml": _unknown_user(
        "kijitora@example.net",
        "5.0.0",
        '"550 Unknown user kijitora@example.net" (after DATA, which Yahoo also answers that '
        "way for dead addresses; see rhost-yahooinc-03)",
    ),
    "dsn/lhost-receivingses-01.eml": _unknown_user(
        "userunknown@neko.example.jp", "5.1.1", '"550 5.1.1 Mailbox does not exist"'
    ),
    "dsn/lhost-sendmail-27.eml": _unknown_user(
        "this-local-part-does-not-exist-on-the-system@mineo.jp",
        "5.0.0",
        '"User unknown", answering the pipelined RCPT TO (the next reply is "503 Need RCPT")',
    ),
    "dsn/lhost-surfcontrol-01.eml": _unknown_user(
        "kijitora@example.com", "5.0.0", '"550 kijitora@example.com... No such user"'
    ),
    "dsn/lhost-x1-01.eml": _unknown_user(
        "kijitora@example.co.jp", "5.1.1", '"kijitora@example.co.jp [User unknown]"'
    ),
    "dsn/lhost-x2-01.eml": _unknown_user(
        "kijitora@example.co.jp",
        "5.1.1",
        '"This user doesn\'t have a example.co.jp account (kijitora@example.co.jp)"',
    ),
    "dsn/lhost-zoho-03.eml": _unknown_user(
        "shironeko@example.org",
        "5.1.1",
        '"Invalid Address, ERROR_CODE :550, ... mailbox unavailable"',
    ),
    "dsn/rfc3464-66.eml": _unknown_user(
        "mikeneko@example.com",
        "5.0.0",
        '"The email account that you tried to reach does not exist."',
    ),
    "dsn/rfc3464-35.eml": Correction(
        why='mikeneko@ got "550 user unknown" (Sisimai: filtered); the other two as expected',
        recipients=(
            Expect("kijitora@nyaan.example.com", "5.0.0", False),
            Expect("sabatora@cat.example.net", "4.0.0", False),
            Expect("mikeneko@neko.example.or.jp", "5.0.0", True),
        ),
    ),
    "dsn/lhost-mimecast-01.eml": Correction(
        why="expected.json found nothing, but the notice names the recipient "
        '("-- sabineko@neko.ef.example.org") and the reason, relayed from Exchange Online '
        '(prod.outlook.com): "5.4.1 Recipient address rejected: Access denied", its Directory '
        "Based Edge Blocking answer for an address not in the tenant's directory (Microsoft, "
        '"Fix email delivery issues for error code 5.4.1 in Exchange Online"); Mimecast\'s own '
        'words: "Recipient email address is possibly incorrect". A dead address',
        recipients=(Expect("sabineko@neko.ef.example.org", "5.4.1", True),),
    ),
    "dsn/lhost-x1-03.eml": Correction(
        why='expected.json found nothing, but the notice says "kijitora@example.org [User '
        'unknown]" under "The following addresses had delivery errors"',
        recipients=(Expect("kijitora@example.org", "5.1.1", True),),
    ),
    "dsn/lhost-postfix-01.eml": Correction(
        why='Status 5.1.1 and the notice\'s "user unknown" ("No such user" from procmail); '
        'Sisimai\'s "mailererror" comes from the x-unix diagnostic type, not from the words',
        recipients=(Expect("r@p351355.pool.example.ne.jp", "5.1.1", True),),
    ),
    "dsn/lhost-v5sendmail-01.eml": Correction(
        why='"kijitora@exampl" is a truncated address; the bounce names no recipient and the '
        "returned original is addressed To: kijitora@example.com",
        recipients=(Expect("kijitora@example.com", None, False),),
    ),
    "dsn/rfc3464-01.eml": Correction(
        why='the recipient\'s DSN fields say "Status: 5.1.1" and "550 5.1.1 ... User Unknown"; '
        'the "Not enough disk space" Sisimai read is about another recipient (<nekochan>)',
        recipients=(Expect("userunknown@bouncehammer.jp", "5.1.1", True),),
    ),
    "dsn/rhost-aol-06.eml": Correction(
        why='"Malformed or unexpected name server reply" is a failing DNS server, the same '
        "words expected.json calls a network error (not hard) in lhost-postfix-17",
        recipients=(Expect("neko@libsisimai.org", "5.4.4", False),),
    ),
    "dsn/rhost-messagelabs-03.eml": Correction(
        why='"542 kijitora@example.com Rejected" says nothing about the mailbox; Sisimai\'s '
        '"userunknown" is a guess',
        recipients=(Expect("kijitora@example.com", "5.0.0", False),),
    ),
}


@cache
def expected() -> dict[str, list[dict]]:
    require_fixtures()
    return json.loads((FIXTURES / "expected.json").read_text())


@cache
def parsed(name: str) -> ParsedReport:
    return parse((FIXTURES / name).read_bytes())


def _name(path: Path) -> str:
    return f"{path.parent.name}/{path.name}"


def _from_expected(name: str) -> tuple[Expect, ...]:
    out = []
    for entry in expected()[name]:
        status = entry["status"] or None
        if status and SISIMAI_PSEUDO_STATUS.match(status):
            status = None
        hard = bool(entry["hard"]) or (
            entry["reason"] == "suspend" and (entry["status"] or "5").startswith("5")
        )
        out.append(Expect(entry["recipient"], status, hard, entry["feedbacktype"] or None))
    return tuple(out)


def disagreements(name: str, wanted: tuple[Expect, ...]) -> list[str]:
    """What differs between our parse of `name` and `wanted`, in words (empty: agreement)."""
    report = parsed(name)
    problems = []
    kind = KINDS[name.split("/")[0]]
    if report.kind != kind:
        problems.append(f"kind {report.kind}, expected {kind}")
    ours = {(r.address or r.original_address or "").lower(): r for r in report.recipients}
    wanted_addresses = {w.address.lower() for w in wanted if w.address != PLACEHOLDER}
    if set(ours) != wanted_addresses:
        problems.append(f"recipients {sorted(ours)}, expected {sorted(wanted_addresses)}")
    for want in wanted:
        if want.feedback_type and report.feedback_type != want.feedback_type:
            problems.append(f"feedback type {report.feedback_type}, expected {want.feedback_type}")
        got = ours.get(want.address.lower())
        if got is None:
            continue
        if is_redacted(want.address) and not (got.redacted and got.address is None):
            problems.append(f"{want.address} should be recognised as redacted")
        if kind != "dsn":
            continue
        if want.status and re.match(r"^\d\.0\.0$", want.status):
            if (got.status or "?")[0] != want.status[0]:
                problems.append(
                    f"{want.address}: status {got.status}, expected class {want.status}"
                )
        elif want.status and got.status != want.status:
            problems.append(f"{want.address}: status {got.status}, expected {want.status}")
        if got.hard != want.hard:
            problems.append(
                f"{want.address}: hard {got.hard} ({got.category}), expected {want.hard}"
            )
    return problems


FILES = [_name(p) for p in fixture_files()] or ["<the shared fixtures are missing>"]


@pytest.mark.parametrize("name", FILES)
def test_fixture_reads_as_a_careful_reader_would(name):
    require_fixtures()
    correction = CORRECTIONS.get(name)
    wanted = correction.recipients if correction else _from_expected(name)
    assert disagreements(name, wanted) == []


def test_agreement_rate():
    require_fixtures()
    names = sorted(expected())
    assert names == sorted(_name(p) for p in fixture_files()), "expected.json and files differ"
    disagreeing = {n for n in names if disagreements(n, _from_expected(n))}
    agreed = len(names) - len(disagreeing)
    print(
        f"\nexpected.json agreement: {agreed}/{len(names)} ({agreed / len(names):.1%}); "
        f"{len(CORRECTIONS)} documented corrections"
    )
    # Every correction must still be needed, and nothing else may disagree.
    assert disagreeing == set(CORRECTIONS)
    assert agreed == len(names) - len(CORRECTIONS)


def test_corrections_name_real_files():
    require_fixtures()
    assert set(CORRECTIONS) <= set(expected())
