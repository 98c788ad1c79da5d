"""What a bounce means for its recipient: status codes and diagnostic texts to a category.

Policy is data: `STATUS_CATEGORIES` (exact RFC 3463 / RFC 5248 codes), `SUBJECT_CATEGORIES`
(class.subject fallbacks) and the ordered text tables below are the whole decision; `classify`
only reads them. Categories are defined in fbl/report.py.

DESIGN.md, "Bounces": permanent only for the "user unknown / no such domain / moved" class;
policy and spam blocks (5.7.x) are reputation signals, not recipient suppressions.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final

from fbl.report import Category, FoundBy, Recipient

__all__ = [
    "GENERIC_STATUSES",
    "STATUS_CATEGORIES",
    "SUBJECT_CATEGORIES",
    "WORDS_DECIDE",
    "choose_status",
    "classify",
    "explained",
    "infer_status",
    "is_hard",
    "status_in",
]

# Exact codes whose meaning is clear on its own. RFC 3463 section 3 and the IANA "Enumerated
# Status Codes" registry (RFC 5248).
STATUS_CATEGORIES: Final[dict[str, Category]] = {
    "5.1.1": "permanent",  # Bad destination mailbox address
    "5.1.2": "permanent",  # Bad destination system address (no such domain)
    # Bad destination mailbox address syntax: the address can never be delivered as written.
    "5.1.3": "permanent",
    "5.1.6": "permanent",  # Destination mailbox has moved, no forwarding address
    "5.1.10": "permanent",  # Recipient address has null MX (RFC 7505 section 4.1)
    "5.2.1": "permanent",  # Mailbox disabled, not accepting messages
    # Unable to route: no MX or address for the domain (RFC 3463 3.5: "A DNS lookup returning
    # only an SOA record ... is one example"), the "no such domain" class.
    "5.4.4": "permanent",
    # Mailbox full. RFC 3463 3.3: "This code should be used as a persistent transient failure";
    # the owner can make room, so it counts towards the soft-bounce threshold instead.
    "5.2.2": "transient",
    "5.1.4": "unknown",  # Destination mailbox address ambiguous
    "5.1.7": "policy",  # Bad sender's mailbox address syntax: about us, not the recipient
    "5.1.8": "policy",  # Bad sender's system address: about us
    "5.2.3": "unknown",  # Message length exceeds administrative limit: about this message
    "5.3.4": "unknown",  # Message too big for system: about this message
    "5.4.6": "unknown",  # Routing loop detected
    # "User Account Disabled" (RFC 5248 registry). Registered for SMTP AUTH accounts; in a
    # bounce the account is the recipient's.
    "5.7.13": "permanent",
    "5.0.0": "unknown",
}

# Class.subject fallbacks (RFC 3463 section 3.x) for codes not listed above.
SUBJECT_CATEGORIES: Final[dict[str, Category]] = {
    "5.1": "unknown",  # addressing, not one of the dead-address codes above
    "5.2": "unknown",
    "5.3": "transient",  # mail system status: the destination system's trouble
    "5.4": "transient",  # network and routing
    "5.5": "unknown",  # protocol
    "5.6": "policy",  # message content or media refused
    "5.7": "policy",  # security or policy status
}

# Codes whose words decide. 5.7.27 is "sender address has null MX" (RFC 7505 section 4.2),
# but sendmail also gives it, as "550 Host does not accept mail", for a recipient domain with a
# null MX (which RFC 7505 section 4.1 codes 5.1.10).
WORDS_DECIDE: Final[frozenset[str]] = frozenset({"5.7.27"})

# Codes too general to outweigh the diagnostic text: many MTAs say "5.7.1" or "5.0.0" for every
# refusal, including an unknown user.
GENERIC_STATUSES: Final[frozenset[str]] = frozenset(
    {"5.0.0", "5.1.0", "5.2.0", "5.3.0", "5.4.0", "5.5.0", "5.6.0", "5.7.0", "5.7.1", "5.5.1"}
)


def _rules(*pairs: tuple[str, str]) -> tuple[tuple[re.Pattern[str], str], ...]:
    return tuple((re.compile(pattern, re.IGNORECASE), value) for pattern, value in pairs)


# Refusals for what the mail is or who sent it. They win over every other reading: a "5.1.1
# ... refused due to recipient preferences" is a block, not a dead address.
POLICY_TEXTS: Final = _rules(
    (r"\bspam|junk mail|unsolicited|bulk mail", "5.7.1"),
    (r"block ?list|black ?list|deny ?list|\bblocked\b|\bRBL\b|spamhaus|spamcop|barracuda", "5.7.1"),
    (r"(?<!not )\blisted (?:at|on|in|by)\b|reputation|\bpoor (?:sender )?score", "5.7.1"),
    (r"recipient preferences|content (?:filter|rejected|policy)|message content", "5.7.1"),
    (r"policy (?:violation|reasons?|rejection)|(?:local|site|security) policy", "5.7.1"),
    (r"\bvirus|malware|infected|phish", "5.7.1"),
    (
        r"\bDMARC\b|\bDKIM\b|\bSPF\b|unauthenticated|"
        r"authentication (?:checks? )?(?:failed|required|failure)",
        "5.7.1",
    ),
    (r"reverse (?:DNS|lookup)|\bPTR\b|\brDNS\b|client host .{0,40}rejected", "5.7.1"),
    (r"relay(?:ing)? (?:access )?(?:denied|not (?:permitted|allowed))", "5.7.1"),
    (r"not permitted to relay|unable to relay|we do not relay", "5.7.1"),
    (r"sender (?:address )?(?:rejected|denied|blocked|verify failed)|domain of sender", "5.7.1"),
    (r"not authori[sz]ed to send|access denied|refused by (?:the )?recipient|filtered", "5.7.1"),
    (
        r"mail from .{0,40} (?:rejected|refused)|rate limit|too many (?:messages|connections)",
        "5.7.1",
    ),
    (r"permission to post|not a member|members only|moderator", "5.7.1"),
    (r"(?:denied|rejected|refused|blocked) (?:by|due to|for) (?:local |site )?policy", "5.7.1"),
    (r"(?:host|network|ip|sender|domain)(?: network)? (?:is )?not allowed", "5.7.1"),
    (r"mismatches client ip|does not match (?:the )?(?:client|sender|connecting) ip", "5.7.1"),
    (r"without authentication|turn on smtp authentication", "5.7.1"),
    (r"(?:address|identit(?:y|ies)) (?:is |are )?not verified|failed the check", "5.7.1"),
    (r"relay quota|sending (?:limit|quota)|daily (?:relay|sending) (?:limit|quota)", "5.7.1"),
    (r"sender(?: address| domain)? has (?:a )?null MX", "5.7.27"),
)

# Conditions that clear by themselves, whatever code comes with them: a DNS lookup that failed
# for now (Postfix says "Host not found, try again" for a DNS TRY_AGAIN), a recipient who gets
# too much mail this hour (Gmail's "5.2.1 ... receiving mail at a rate that prevents
# additional messages"), a temporary lock.
TEMPORARY_TEXTS: Final = _rules(
    (
        r"host not found, try again|malformed or unexpected name server reply|SERVFAIL|"
        r"temporary (?:DNS|lookup|name service) (?:error|failure)",
        "4.4.3",
    ),
    (
        r"receiving mail at a rate|temporar(?:y|ily) (?:locked|blocked|disabled|suspended)|"
        r"try again later",
        "4.2.0",
    ),
)

# The dead-address class (permanent) and its usual wording.
PERMANENT_TEXTS: Final = _rules(
    (r"has moved|moved permanently|no forwarding address|address has changed", "5.1.6"),
    # RFC 7504: 521 and 556 say the host or domain does not accept mail at all.
    (
        r"null MX|does not accept mail|not accepting mail|accepts no mail|(?:^|\s)5(?:21|56)[ -]",
        "5.1.10",
    ),
    (
        r"host (?:or domain name )?not found|domain (?:name )?(?:does not exist|not found)|"
        r"no such domain|unknown (?:host|domain)|host unknown|unrouteable|unroutable|"
        r"(?:mx|domain) lookup failed|name service error|no mx|"
        r"(?:bad|invalid) destination (?:system|domain)|"
        # Outlook.com's words for a domain without mail servers.
        r"because the domain is not reachable",
        "5.1.2",
    ),
    (
        r"account (?:has been |is )?(?:disabled|deactivated|suspended|deleted|closed|removed|"
        r"expired|inactive)|mailbox (?:has been |is )?(?:disabled|deactivated|inactive|closed)|"
        r"user (?:account )?(?:is )?(?:disabled|deactivated|suspended)|disabled mailbox|"
        r"mailbox (?:is )?frozen|disabled or discontinued",
        "5.2.1",
    ),
    (
        r"user unknown|unknown user|no such (?:user|mailbox|recipient|address|account|person)|"
        r"(?:user|mailbox|recipient|address|account|addressee)(?: name)? (?:does not|doesn'?t)"
        r" exist|"
        r"(?:user|mailbox|recipient|address|account|addressee) (?:is )?(?:not found|unknown|"
        r"invalid|not known|not listed)|"
        r"(?:invalid|unknown|bad|non-?existent) (?:recipient|mailbox|user|address|"
        r"local[- ]?part|destination mailbox)|"
        r"recipient (?:address )?rejected: (?:user unknown|undeliverable|unknown)|"
        r"recipientnotfound|not (?:a )?(?:valid|known) (?:user|recipient|mailbox)|"
        r"no mailbox|mailbox unavailable|mailbox not available|not listed in|"
        r"unknown or illegal alias|no account by that name|not our customer|"
        r"addressee unknown|undeliverable address|no valid recipients|"
        r"user not listed|unknown recipient|doesn't have an? .{0,20}account|"
        r"account that you tried to reach does not exist|"
        r"invalid (?:final delivery )?userid|"
        # A bare "Address rejected." (no reason after it) under a 5.1.x addressing code.
        r"(?:^|[\s#\d.])address rejected\.?\s*$",
        "5.1.1",
    ),
)

# Conditions that may clear.
TRANSIENT_TEXTS: Final = _rules(
    (
        r"mailbox (?:is )?full|over ?quota|quota (?:exceeded|full)|exceed(?:s|ed)? .{0,30}quota|"
        r"insufficient (?:disk |storage )?(?:space|storage)|not enough (?:disk )?space|"
        r"mailbox .{0,30}exceeded|exceeded .{0,30}(?:storage|limit)|storage (?:space )?(?:full|"
        r"exceeded)|too many messages|mail ?box size limit|mail ?folder is full",
        "5.2.2",
    ),
    (
        r"retry time(?:out)? (?:exceeded|reached)|could not be delivered for|expired|"
        r"have been failing for a long time|after (?:multiple|repeated) retries|giving up",
        "4.4.7",
    ),
    (
        r"timed? ?out|timeout|connection (?:refused|reset|lost|closed)|could not connect|"
        r"requests to connect|socket error",
        "4.4.1",
    ),
    (r"try again later|temporar|deferred|service (?:not )?(?:un)?available|busy", "4.0.0"),
    (r"system (?:full|overloaded)|out of (?:disk|memory)|insufficient system storage", "4.3.1"),
)

_ENHANCED: Final = re.compile(r"(?<![\d.])([245])\.(\d{1,3})\.(\d{1,3})(?![\d]|\.\d)")
# An enhanced code right after an SMTP reply code (RFC 3463 section 2 / RFC 2034 section 4):
# "550 5.1.1", "550-5.1.1", "550 #5.1.0". Preferred over a code elsewhere in the text, which
# may be a relay's own summary ("5.1.0 - Unknown address error 550-'5.2.2 ...").
_AFTER_REPLY: Final = re.compile(
    r"(?<![\d.])[245]\d\d[ -]+['\"(#]?([245])\.(\d{1,3})\.(\d{1,3})(?![\d]|\.\d)"
)
_REPLY: Final = re.compile(r"(?<![\d.-])([245])[0-9]{2}(?:[ -]|$)(?!\d)")


def status_in(text: str | None) -> str | None:
    """The first RFC 3463 enhanced status code in a diagnostic text, like "550 5.1.1 ..."."""
    if not text:
        return None
    text = text[:_TEXT_LIMIT]
    # The last code after a reply code is the innermost one: a relay quoting the receiver's
    # reply ("554 4.4.7 Message expired ... <421 4.4.2 Connection timed out>") puts it last.
    replies = list(_AFTER_REPLY.finditer(text))
    match = replies[-1] if replies else _ENHANCED.search(text)
    if not match:
        return None
    return f"{match.group(1)}.{int(match.group(2))}.{int(match.group(3))}"


def choose_status(reported: str | None, diagnostic: str | None) -> str | None:
    """The status of one recipient: the Status field (RFC 3464 2.3.4), unless the remote
    server's own enhanced code in the Diagnostic-Code (2.3.6) says more within the same class
    (a relay's "4.4.7 expired" over the receiver's "4.7.1 access denied"); without a Status
    field, the status the diagnostic gives or suggests."""
    field = status_in(reported)
    remote = status_in(diagnostic)
    if field is None:
        return remote or infer_status(diagnostic)
    if remote and remote[0] == field[0]:
        return remote
    return field


def infer_status(text: str | None, *, default_class: str | None = None) -> str | None:
    """A status for a bounce that gives none in a Status field: the enhanced code in the text,
    else the class of the SMTP reply code (RFC 5321 4.2.1) with the subject and detail the
    wording suggests ("User unknown" is 5.1.1), else None."""
    if not text:
        return None
    text = text[:_TEXT_LIMIT]
    found = status_in(text)
    if found:
        return found
    reply = _REPLY.search(text)
    detail = _text_status(text)
    if reply:
        klass = reply.group(1)
        if klass == "2":
            return "2.0.0"
        return f"{klass}{detail[1:]}" if detail else f"{klass}.0.0"
    if detail:
        # No reply code: the wording's own class ("retry timeout exceeded" is 4.4.7 even in a
        # bounce that calls itself permanent), except that a permanent-sounding text takes the
        # class the bounce gives.
        if default_class and detail[0] == "5":
            return f"{default_class}{detail[1:]}"
        return detail
    return f"{default_class}.0.0" if default_class else None


# Addresses are masked before the wording is read: a mailbox called "blocked@" or
# "userunknown@" says nothing about why mail to it failed.
_ADDRESS_LIKE: Final = re.compile(r"[^\s<>()\[\]\"',;:@]+@[^\s<>()\[\]\"',;:@]+")


# Diagnostics are a line or a few; the bound keeps a hostile one from costing more.
_TEXT_LIMIT: Final = 4_000


def _masked(text: str) -> str:
    text = text[:_TEXT_LIMIT]
    return _ADDRESS_LIKE.sub(" ", text) if "@" in text else text


def _text_status(text: str) -> str | None:
    text = _masked(text)
    for table in (POLICY_TEXTS, TEMPORARY_TEXTS, PERMANENT_TEXTS, TRANSIENT_TEXTS):
        for pattern, status in table:
            if pattern.search(text):
                return status
    return None


def explained(text: str) -> bool:
    """Whether a text has wording from any of the tables."""
    return _text_status(text) is not None


def _text_category(text: str, table: tuple[tuple[re.Pattern[str], str], ...]) -> bool:
    return any(pattern.search(text) for pattern, _ in table)  # text already masked


# Provider answers whose words say one thing and mean another, by what the answer looks like.
# KDDI's au (ezweb.ne.jp, au.com) answers "550 : User unknown", with no address, when the
# recipient's own domain filter refuses the sender; an address that does not exist gets
# "550 <address>: User unknown". (Yahoo relays it as "550: : User unknown".)
PROVIDER_POLICY_TEXTS: Final = _rules(
    (r"(?:^|\s)550:? : User unknown", "5.7.1"),
)


# Mail hosts that answer "unknown user" to the DATA of a message when the recipient's own
# filter refuses the sender, while a mailbox that does not exist is refused at RCPT TO.
DATA_PHASE_FILTER_HOSTS: Final[dict[str, str]] = {
    "docomo.ne.jp": "NTT docomo (domain and address filters of docomo mail)",
}


def _filtering_host(host: str | None) -> bool:
    host = (host or "").lower().rstrip(".")
    return any(host == h or host.endswith("." + h) for h in DATA_PHASE_FILTER_HOSTS)


def classify(
    status: str | None,
    diagnostic: str | None,
    *,
    phase: str | None = None,
    remote_host: str | None = None,
) -> Category:
    """The category of one recipient's bounce. Order, most specific evidence first:
    a refusal for policy or spam in the text (DESIGN.md: reputation, not suppression); a
    4.x.x class (RFC 3463 section 2: persistent transient failure); an exact code from the table;
    the diagnostic wording; the class.subject fallback. `phase` is the SMTP command the
    remote server refused ("RCPT", "DATA", "MAIL", "CONNECT"), when the report says, and
    `remote_host` the server's name."""
    category = _classify(status, _masked(diagnostic or ""))
    # RFC 5321 3.3: recipients are judged at RCPT TO. A server that refused MAIL FROM or the
    # connection never judged the recipient, whatever its text says. A refusal of the DATA
    # stays as worded: Yahoo reports unknown users there ("554 delivery error: dd This user
    # doesn't have a yahoo.com account").
    if phase in ("MAIL", "CONNECT") and category in ("permanent", "unknown"):
        return "policy"
    # After DATA the recipient was already accepted: what is refused then is the message.
    if phase == "DATA" and category == "unknown" and (status or "5")[0] == "5":
        return "policy"
    if phase == "DATA" and category == "permanent" and _filtering_host(remote_host):
        return "policy"
    return category


def _classify(status: str | None, text: str) -> Category:
    if text and (_text_category(text, POLICY_TEXTS) or _text_category(text, PROVIDER_POLICY_TEXTS)):
        return "policy"
    if text and _text_category(text, TEMPORARY_TEXTS):
        return "transient"
    if status:
        klass = status[0]
        if klass == "2":
            return "unknown"
        if klass == "4":
            return "transient"
        if status not in GENERIC_STATUSES:
            if status in STATUS_CATEGORIES:
                return STATUS_CATEGORIES[status]
            # A specific security or content code (5.7.26 DMARC, 5.6.1 media) outranks any
            # "recipient address rejected" wording that comes with it.
            if status[:3] in ("5.6", "5.7") and status not in WORDS_DECIDE:
                return "policy"
    if text:
        if _text_category(text, PERMANENT_TEXTS):
            return "permanent"
        if _text_category(text, TRANSIENT_TEXTS):
            return "transient"
    if status and status[0] == "5":
        if status in STATUS_CATEGORIES:
            return STATUS_CATEGORIES[status]
        return SUBJECT_CATEGORIES.get(status[:3], "unknown")
    return "unknown"


def is_hard(category: Category, status: str | None, action: str | None) -> bool:
    """A hard bounce: a permanent category on a permanent failure (RFC 3464 2.3.3 "failed")."""
    if category != "permanent":
        return False
    if action and action.lower() not in ("failed",):
        return False
    return status is None or status.startswith("5")


def bounced_recipient(
    address: str | None,
    *,
    status: str | None,
    action: str,
    diagnostic: str | None,
    found_by: FoundBy = "dsn_final_recipient",
    phase: str | None = None,
    remote_mta: str | None = None,
    category: Category | None = None,
    instead: Mapping[Category, Category] | None = None,
) -> Recipient:
    """One bounced recipient, classified: the category `classify` gives the status and
    diagnostic (at `phase`, by `remote_mta`), unless the source knows it (`category`); then
    `instead` replaces a category the source's own semantics rule out (a retried failure is at
    worst transient); `hard` follows from the result (`is_hard`)."""
    if category is None:
        category = classify(status, diagnostic, phase=phase, remote_host=remote_mta)
    if instead:
        category = instead.get(category, category)
    return Recipient(
        address=address,
        status=status,
        action=action,
        diagnostic=diagnostic,
        remote_mta=remote_mta,
        hard=is_hard(category, status, action),
        category=category,
        found_by=found_by,
    )
