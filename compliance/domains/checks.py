"""The health of a sending domain, read from DNS and judged against the Gmail and Yahoo
bulk-sender requirements (2024): SPF and DKIM set up and valid, a DMARC policy published (p=none
is enough for them), mail aligned with the From domain. Pure apart from DNS: no Django import;
every lookup goes to the resolver built from the nameservers given (compliance.domains.resolver).

checkdmarc reads the SPF and DMARC records (RFC 7208, RFC 9989: grammar, the 10-lookup limit
through include and redirect, the organisational-domain fallback), dnspython the DKIM keys
(RFC 6376) and MX records, `cryptography` the size of an RSA key.

What each status means, check by check (the bulk-sender rules decide what fails):

| check         | fail                                          | warn                           |
| ------------- | --------------------------------------------- | ------------------------------ |
| spf           | no record, several, bad syntax, include       | +all, checkdmarc's warnings    |
|               | without SPF, a loop                           |                                |
| spf_lookups   | over 10 DNS lookups or 2 void ones (permerror)|                                |
| dkim:SELECTOR | no key, revoked, unreadable, RSA < 1024 bits  | RSA < 2048 bits, t=y (testing) |
| dmarc         | no record, nor at the organisational domain;  | p=none, no rua=,               |
|               | an invalid record                             | checkdmarc's warnings          |
| mx            | no MX and no address; a null MX (RFC 7505)    | no MX but an address           |

A DNS timeout, SERVFAIL or NXDOMAIN is never a pass: the check it stops fails and says so.
When the domain's own MX lookup meets one, no other lookup is made and every check says it.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Sequence

import checkdmarc.utils
import dns.exception
import dns.name
import dns.resolver
from checkdmarc import dmarc as dmarc_records
from checkdmarc import spf as spf_records
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from cryptography.hazmat.primitives.serialization import load_der_public_key
from dkim.util import InvalidTagValueList, parse_tag_value

from compliance.check_results import Check, Status, worst
from compliance.domains.resolver import CheckResolver, DnsFailure, failure_of

__all__ = ["check_domain", "normalise_domain", "normalise_selector"]

# RFC 7208 section 4.6.4: more DNS-querying terms (or void lookups) than this is a permerror.
SPF_LOOKUP_LIMIT = 10
SPF_VOID_LOOKUP_LIMIT = 2
# Gmail and Yahoo: keys under 1024 bits are not accepted; 2048 is what they ask for.
DKIM_RSA_MINIMUM_BITS = 1024
DKIM_RSA_RECOMMENDED_BITS = 2048

_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)\Z")

# checkdmarc warnings that our own messages already say in the bulk-sender rules' words.
_SAID_OURSELVES = (
    "A p tag value of none",
    "An sp tag value of none",
    "rua tag (destination for aggregate reports) not found",
)


def normalise_domain(text: str) -> str:
    """The domain in lower-case ASCII (an IDN as its A-labels), without a final dot. Raises
    ValueError saying what is wrong with anything that is not a domain name of two or more
    labels of letters, digits and hyphens."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError("a domain name is needed")
    raw = text.strip().rstrip(".")
    try:
        ascii_name = dns.name.from_unicode(raw).to_text(omit_final_dot=True).lower()
    except (dns.exception.DNSException, UnicodeError, ValueError) as exc:
        raise ValueError(f"{text!r} is not a domain name: {exc}") from None
    labels = ascii_name.split(".")
    if len(labels) < 2:
        raise ValueError(f"{text!r} is not a domain name: it needs at least two labels")
    bad = next((label for label in labels if not _LABEL.match(label)), None)
    if bad is not None:
        raise ValueError(
            f"{text!r} is not a domain name: the label {bad!r} may hold only letters, digits "
            "and inner hyphens"
        )
    return ascii_name


def normalise_selector(text: str) -> str:
    """A DKIM selector (RFC 6376 section 3.1: dot-separated labels of letters, digits and
    hyphens), lower-cased. Raises ValueError saying what is wrong."""
    selector = (text or "").strip().lower()
    if not selector:
        raise ValueError("a DKIM selector may not be empty")
    bad = next((label for label in selector.split(".") if not _LABEL.match(label)), None)
    if bad is not None:
        raise ValueError(
            f"{text!r} is not a DKIM selector: {bad!r} may hold only letters, digits and inner "
            "hyphens"
        )
    return selector


def check_domain(
    domain: str,
    *,
    selectors: Sequence[str] = (),
    nameservers: Sequence[str] = (),
    timeout: float = 3.0,
) -> list[Check]:
    """The checks of `domain`, in the order spf, spf_lookups, dkim:SELECTOR (one per selector;
    "dkim" when none is given), dmarc, mx. Raises ValueError for a malformed domain, selector,
    nameserver or timeout; DNS trouble is a result, never an exception."""
    domain = normalise_domain(domain)
    selectors = list(dict.fromkeys(normalise_selector(s) for s in selectors))
    resolver = CheckResolver(nameservers, timeout=timeout)
    # checkdmarc keeps answers for half an hour in a process-wide cache keyed by name alone,
    # whichever nameservers gave them: a check reads what DNS says now, from its own servers.
    checkdmarc.utils.DNS_CACHE.clear()
    dkim_names = [f"dkim:{s}" for s in selectors] or ["dkim"]
    names = ["spf", "spf_lookups", *dkim_names, "dmarc", "mx"]

    try:
        mx_answer = resolver.resolve(domain, "MX")
    except dns.resolver.NoAnswer:
        mx_answer = None
    except dns.exception.DNSException as exc:
        failure = failure_of(exc, domain, "MX", resolver)
        # The domain itself gives no answer: nothing below it can be read either.
        return [Check(name, "fail", f"{failure.describe()}; not checked") for name in names]

    return [
        *_spf_checks(domain, resolver),
        *(_dkim_check(domain, s, resolver) for s in selectors),
        *([] if selectors else [_no_selector()]),
        _dmarc_check(domain, resolver),
        _mx_check(domain, mx_answer, resolver),
    ]


def _library_options(resolver: CheckResolver) -> dict:
    # The resolver for every lookup checkdmarc makes through it; the nameservers too, for the
    # few lookups it makes without it (an SPF exp= target), so that none goes elsewhere.
    return {
        "resolver": resolver,
        "nameservers": list(resolver.nameservers) if resolver.configured else None,
        "timeout": resolver.lifetime,
    }


def _with_failure(message: str, failures: list[DnsFailure], what: str) -> str:
    # checkdmarc's own text for a failed lookup only restates the DNS error; say it plainly.
    return f"{failures[0].describe()}; {what} could not be read" if failures else message


def _spf_checks(domain: str, resolver: CheckResolver) -> tuple[Check, Check]:
    options = _library_options(resolver)
    with resolver.watching() as failures:
        try:
            found = spf_records.query_spf_record(domain, **options)
            record = found["record"]
            parsed = spf_records.parse_spf_record(
                record, domain, ignore_too_many_lookups=True, **options
            )
        except spf_records.MultipleSPFRTXTRecords:
            problem = (
                f"{domain} publishes more than one SPF record; receivers answer permerror "
                "(RFC 7208 section 4.5): publish one"
            )
        except spf_records.SPFRecordNotFound as exc:
            problem = str(exc) if "include target" in str(exc) else f"no SPF record: {exc}"
        except spf_records.SPFError as exc:
            problem = f"the SPF record does not work: {exc}"
        else:
            problem = None
    # checkdmarc asks for the obsolete SPF record type first and rightly ignores any failure.
    failures = [f for f in failures if f.rdtype != "SPF"]
    if problem is not None:
        problem = _with_failure(problem, failures, "the SPF record")
        return (
            Check("spf", "fail", problem),
            Check("spf_lookups", "fail", "not counted: there is no usable SPF record"),
        )

    warnings = [*found["warnings"], *parsed["warnings"]]
    status: Status = "pass"
    notes = []
    if parsed["parsed"]["all"] == "pass":
        notes.append("+all lets every host on the internet pass SPF for the domain")
    if failures:
        notes.append(f"a lookup failed along the way: {failures[0].describe()}")
    if notes or warnings:
        status = "warn"
    spf = Check("spf", status, "; ".join([record, *notes, *warnings]))

    lookups, void = parsed["dns_lookups"], parsed["void_dns_lookups"]
    if "error" in parsed:
        counted = Check("spf_lookups", "fail", f"{parsed['error']}: receivers answer permerror")
    else:
        counted = Check(
            "spf_lookups",
            "pass",
            f"{lookups} of at most {SPF_LOOKUP_LIMIT} DNS lookups, {void} of at most "
            f"{SPF_VOID_LOOKUP_LIMIT} void lookups (RFC 7208 section 4.6.4)",
        )
    return spf, counted


def _no_selector() -> Check:
    return Check(
        "dkim",
        "warn",
        "no DKIM selector given, so no key was read: DKIM keys are found only by selector "
        "(the s= of the DKIM-Signature your mail carries)",
    )


def _dkim_check(domain: str, selector: str, resolver: CheckResolver) -> Check:
    name = f"dkim:{selector}"
    where = f"{selector}._domainkey.{domain}"
    try:
        answer = resolver.resolve(where, "TXT")
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return Check(name, "fail", f"no DKIM key published at {where}")
    except dns.exception.DNSException as exc:
        return Check(name, "fail", failure_of(exc, where, "TXT", resolver).describe())
    records = [b"".join(rdata.strings) for rdata in answer]
    if len(records) > 1:
        return Check(
            name,
            "fail",
            f"{len(records)} TXT records at {where}: verifiers may use any one of them "
            "(RFC 6376 section 3.6.2.2); publish one key",
        )
    return _judge_key(name, where, records[0])


def _judge_key(name: str, where: str, record: bytes) -> Check:
    try:
        tags = parse_tag_value(record)
    except InvalidTagValueList as exc:
        return Check(name, "fail", f"the record at {where} is not a DKIM key record: {exc}")
    version = tags.get(b"v", b"DKIM1")
    if version != b"DKIM1":
        return Check(name, "fail", f"the record at {where} has v={version.decode()}, not DKIM1")
    key_type = tags.get(b"k", b"rsa").decode("ascii", "replace").lower()
    if b"p" not in tags:
        return Check(name, "fail", f"the record at {where} has no key (no p= tag)")
    data = re.sub(rb"\s+", b"", tags[b"p"])
    if not data:
        return Check(name, "fail", f"the key at {where} is revoked (empty p=)")
    try:
        key_bytes = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        return Check(name, "fail", f"the key at {where} is not base64")
    testing = b"y" in tags.get(b"t", b"").split(b":")
    status, text = _key_strength(key_type, key_bytes, where)
    if testing and status == "pass":
        status, text = "warn", f"{text}; t=y: receivers may treat its signatures as unsigned"
    return Check(name, status, text)


def _key_strength(key_type: str, key_bytes: bytes, where: str) -> tuple[Status, str]:
    if key_type == "ed25519":
        if len(key_bytes) != 32:
            return "fail", f"the ed25519 key at {where} is {len(key_bytes)} bytes, not 32"
        ed25519.Ed25519PublicKey.from_public_bytes(key_bytes)
        return "pass", (
            f"ed25519 key at {where} (RFC 8463); sign with an RSA key too, since not every "
            "receiver verifies ed25519 signatures"
        )
    if key_type != "rsa":
        return "fail", f"the key at {where} has the unknown key type k={key_type}"
    try:
        key = load_der_public_key(key_bytes)
    except ValueError:
        return "fail", f"the key at {where} is not an RSA public key cryptography can read"
    if not isinstance(key, rsa.RSAPublicKey):
        return "fail", f"the key at {where} says k=rsa but is not an RSA key"
    bits = key.key_size
    if bits < DKIM_RSA_MINIMUM_BITS:
        return "fail", (
            f"RSA {bits}-bit key at {where}: under {DKIM_RSA_MINIMUM_BITS} bits, receivers "
            "ignore its signatures; publish a 2048-bit key"
        )
    if bits < DKIM_RSA_RECOMMENDED_BITS:
        return "warn", (
            f"RSA {bits}-bit key at {where}: Gmail and Yahoo ask for "
            f"{DKIM_RSA_RECOMMENDED_BITS} bits"
        )
    return "pass", f"RSA {bits}-bit key at {where}"


def _dmarc_check(domain: str, resolver: CheckResolver) -> Check:
    options = _library_options(resolver)
    with resolver.watching() as failures:
        try:
            found = dmarc_records.query_dmarc_record(
                domain, ignore_unrelated_records=True, **options
            )
            parsed = dmarc_records.parse_dmarc_record(
                found["record"], found["location"], ignore_unrelated_records=True, **options
            )
        except dmarc_records.DMARCRecordNotFound as exc:
            problem = (
                f"no DMARC record at _dmarc.{domain}, nor at its organisational domain"
                if "does not exist" in str(exc)
                else f"no DMARC record: {exc}"
            )
        except dmarc_records.DMARCError as exc:
            problem = f"the DMARC record does not work: {exc}"
        else:
            problem = None
    if problem is not None:
        return Check("dmarc", "fail", _with_failure(problem, failures, "the DMARC record"))

    tags, location = parsed["tags"], found["location"]
    # A record found at the organisational domain governs the subdomain with its sp= policy
    # (RFC 9989 section 4.10), which is p= when not given.
    policy_tag = "p" if location == domain else "sp"
    policy = tags[policy_tag]["value"]
    parts = [f"{policy_tag}={policy} at _dmarc.{location}"]
    if location != domain:
        parts.append(f"found at the organisational domain {location} (none at _dmarc.{domain})")
    statuses: list[Status] = ["pass"]
    if policy == "none":
        statuses.append("warn")
        parts.append(
            "p=none meets the Gmail and Yahoo rule, but receivers act on no failing mail: move "
            "to quarantine or reject"
        )
    reports = [uri["address"] for uri in tags.get("rua", {}).get("value") or []]
    if reports:
        parts.append(f"aggregate reports to {', '.join(reports)}")
    else:
        statuses.append("warn")
        parts.append("no rua= address: nobody receives the aggregate reports")
    modes = {"r": "relaxed", "s": "strict"}
    parts.append(
        f"alignment: DKIM {modes[tags['adkim']['value']]}, SPF {modes[tags['aspf']['value']]}"
    )
    warnings = [
        w for w in [*found["warnings"], *parsed["warnings"]] if not w.startswith(_SAID_OURSELVES)
    ]
    if failures:
        warnings.append(f"a lookup failed along the way: {failures[0].describe()}")
    if warnings:
        statuses.append("warn")
    return Check("dmarc", worst(statuses), "; ".join([*parts, *warnings]))


def _mx_check(domain: str, answer, resolver: CheckResolver) -> Check:
    if answer is not None:
        if any(rdata.exchange == dns.name.root for rdata in answer):
            return Check(
                "mx",
                "fail",
                f"{domain} publishes a null MX (RFC 7505): it receives no mail, so bounces and "
                "replies are lost and receivers may refuse its mail",
            )
        hosts = sorted((r.preference, r.exchange.to_text(omit_final_dot=True)) for r in answer)
        return Check("mx", "pass", ", ".join(f"{host} ({pref})" for pref, host in hosts))
    addresses = []
    for rdtype in ("A", "AAAA"):
        try:
            addresses += [rdata.to_text() for rdata in resolver.resolve(domain, rdtype)]
        except dns.resolver.NoAnswer:
            continue
        except dns.exception.DNSException as exc:
            failure = failure_of(exc, domain, rdtype, resolver)
            return Check("mx", "fail", f"no MX record, and {failure.describe()}")
    if addresses:
        return Check(
            "mx",
            "warn",
            f"no MX record: mail to {domain} goes to its address {addresses[0]} (RFC 5321 "
            "section 5.1); publish an MX record",
        )
    return Check(
        "mx",
        "fail",
        f"no MX record and no address: {domain} cannot receive bounces or replies, and "
        "receivers may refuse its mail",
    )
