"""What a bounce means for its recipient: status codes and diagnostic texts to a category.

The rules are data: `STATUS_CATEGORIES` (exact RFC 3463 / RFC 5248 codes), `SUBJECT_CATEGORIES`
(class.subject fallbacks) and the ordered text tables below are the whole decision; `classify`
only reads them. Categories are defined in fbl/report.py.

DESIGN.md, "Bounces": permanent only for the "user unknown / no such domain / moved" class;
policy and spam blocks (5.7.x) are reputation signals, not recipient suppressions.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from email.header import decode_header, make_header
from typing import Final

from fbl import pattern_cache
from fbl.report import Category, FoundBy, Recipient

__all__ = [
    "GENERIC_STATUSES",
    "STATUS_CATEGORIES",
    "SUBJECT_CATEGORIES",
    "WORDS_DECIDE",
    "bounced_recipient",
    "choose_status",
    "classify",
    "explained",
    "failure_status",
    "infer_status",
    "block_status",
    "readable",
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
    "5.1.7": "blocked",  # Bad sender's mailbox address syntax: about us, not the recipient
    "5.1.8": "blocked",  # Bad sender's system address: about us
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
    "5.6": "blocked",  # message content or media refused
    "5.7": "blocked",  # security or policy status
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
    # The texts are read lower-cased (see _masked), so the rules are too: a case-sensitive
    # search of lower-cased text is about three times as fast as re.IGNORECASE.
    return tuple((pattern_cache.compile(_lowered(pattern)), value) for pattern, value in pairs)


_ESCAPE: Final = re.compile(r"(\\.)", re.DOTALL)


def _lowered(pattern: str) -> str:
    """`pattern` with its literal letters lower-cased; escapes (\\S, \\W, \\B, ...) kept."""
    # The escapes are the odd pieces of the split: only the text between them is lowered.
    pieces = _ESCAPE.split(pattern)
    pieces[::2] = [piece.lower() for piece in pieces[::2]]
    return "".join(pieces)


# Between a noun and what is said of it, the address that was masked out (see _masked):
# "User <a@example.com> does not exist", "Recipient (a@example.com) not found".
_NAMED: Final = r"(?:\s|\s?[<\[(\"']\s*[>\])\"']\s?|\s{2,3})"

# Answers whose words would read as a policy refusal but that say the recipient does not exist.
# Exchange Online's Directory Based Edge Blocking refuses, at RCPT TO, an address that is not in
# the tenant's directory: "550 5.4.1 Recipient address rejected: Access denied.
# AS(201806281)" (Microsoft, "Fix email delivery issues for error code 5.4.1 in Exchange
# Online"). A Postfix access map says the same words with 5.7.1 and no AS(...) tag ("554 5.7.1
# <a@example.com>: Recipient address rejected: Access denied"): that one stays a policy refusal.
DIRECTORY_REJECTION_TEXTS: Final = _rules(
    (r"\b5\.4\.1\b[^\n]{0,120}recipient address rejected: access denied", "5.4.1"),
    (r"recipient address rejected: access denied\.?[^\n]{0,40}\bAS\(201806281\)", "5.4.1"),
    # NetEase (163.com, 126.com): "550 Mailbox not found or access denied". (Chinese
    # providers' help pages list it and many of the non-native wordings in PERMANENT_TEXTS as
    # their "recipient does not exist" bounces, e.g. Coremail's and DBMail's.)
    # Also with the address between: "550 Mailbox a@example.com unavailable or access denied".
    (r"mailbox(?: |" + _NAMED + r")(?:not found|unavailable) or access denied", "5.1.1"),
    # Orange and La Poste (OFR_426, LPN007_426): "Le compte du destinataire est bloqué. The
    # recipient account is blocked": the recipient's account is suspended, not our mail.
    (r"compte du destinataire est bloqu|recipient account is ?blocked", "5.2.1"),
)

# Refusals for what the mail is or who sent it. They win over every other reading: a "5.1.1
# ... refused due to recipient preferences" is a block, not a dead address.
BLOCK_TEXTS: Final = _rules(
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
    # Our own address, not the recipient's: "553 5.1.8 Sender address <a@example.com> unknown".
    # Also "550 5.1.0 <a@example.com> sender address does not exist E2110" and sender
    # verification's "unroutable sender address": "does not exist" and "unroutable" are read
    # as a dead recipient or domain otherwise.
    (
        r"sender(?: address| domain)?" + _NAMED + r"(?:is )?(?:unknown|invalid|not found|"
        r"(?:does not|doesn'?t) exist)|unroute?able sender",
        "5.1.8",
    ),
    (r"not authori[sz]ed to send|access denied|refused by (?:the )?recipient|filtered", "5.7.1"),
    (
        # "Too many messages" is a rate, unless it is what the mailbox holds (vpopmail's
        # "User has too many messages on the server"): a full mailbox, see MAILBOX_FULL_TEXTS.
        r"mail from .{0,40} (?:rejected|refused)|rate limit|too many connections|"
        r"too many messages(?! (?:on the server|in (?:the |this |his |her |their )?mail ?box))",
        "5.7.1",
    ),
    (r"permission to post|not a member|members only|moderator", "5.7.1"),
    # Our sending, not the recipient: Spectrum's "rejected for having too many invalid
    # recipients" (AUP#O-1560), GoDaddy's "too many invalid recipients" (IB112); QQ Mail's
    # frequency limits, among them its "Mailbox unavailable or access denined" (sic,
    # service.mail.qq.com/detail/122/166), which is not RFC 5321's "mailbox unavailable".
    (
        r"too many (?:invalid|unknown|bad|non-?existent) recipients|"
        r"threshold of invalid recipients|frequency limited|access denined",
        "5.7.1",
    ),
    # The recipient's own filter, not a host without mail service: "550 5.7.1 The recipient
    # does not accept mail from your domain", "does not accept mail from unknown senders".
    (r"(?:(?:does not|doesn'?t|do not) accept|not accepting) (?:e-?)?mail from", "5.7.1"),
    # Our HELO name, not the recipient: Postfix's "Helo command rejected: Host not found".
    (r"(?:helo|ehlo) (?:command |name |hostname )?(?:rejected|invalid)", "5.7.1"),
    # Outlook.com: "550 SC-001 ... Unfortunately, messages from [IP] weren't sent. ... Hotmail
    # does not relay dynamically-assigned IP ranges"; Gmail: "The user or domain that you are
    # sending to (or from) has a policy that prohibited the mail that you sent"; Yahoo: "451
    # VS1-IP Excessive unknown recipients - possible Open Relay (#4.1.8)", about our sending.
    (
        r"messages? from \S+ weren'?t sent|(?:does|do) not relay|policy that prohibited|"
        r"excessive unknown recipients|possible open relay",
        "5.7.1",
    ),
    (r"(?:denied|rejected|refused|blocked) (?:by|due to|for) (?:local |site )?policy", "5.7.1"),
    (r"(?:host|network|ip|sender|domain)(?: network)? (?:is )?not allowed", "5.7.1"),
    (r"mismatches client ip|does not match (?:the )?(?:client|sender|connecting) ip", "5.7.1"),
    (r"without authentication|turn on smtp authentication", "5.7.1"),
    (r"(?:address|identit(?:y|ies)) (?:is |are )?not verified|failed the check", "5.7.1"),
    (r"relay quota|sending (?:limit|quota)|daily (?:relay|sending) (?:limit|quota)", "5.7.1"),
    # The sender's own rate limits: a relay or submission server counting what we send
    # (postfwd's "Number recipients per hour exceeded", "only 5 recipients per 5 minutes
    # allowed", Zoho's "550 5.4.6 mail rate exceeded limit"), whatever code comes with them.
    (
        r"recipients? (?:per|an?|each|/) ?(?:\d+ )?(?:hour|day|minute)|"
        r"per[- ](?:hour|day|minute) (?:recipient|message|sending|mail) (?:limit|quota)|"
        r"(?:hourly|daily) (?:recipient|message|sending|mail) (?:limit|quota)|"
        r"(?:mail|message|sending|send) rate (?:exceeded|limit)|too many recipients|"
        r"recipients? (?:count |rate )?limit|maximum number of recipients",
        "5.7.1",
    ),
    (r"sender(?: address| domain)? has (?:a )?null MX", "5.7.27"),
)

# Conditions that clear by themselves, whatever code comes with them: a DNS lookup that failed
# for now (Postfix says "Host not found, try again" for a DNS TRY_AGAIN), a recipient who gets
# too much mail this hour (Gmail's "5.2.1 ... receiving mail at a rate that prevents
# additional messages"), a temporary lock.
TEMPORARY_TEXTS: Final = _rules(
    (
        r"host not found, try again|malformed or unexpected name server reply|SERVFAIL|"
        r"temporary (?:DNS|lookup|name service) (?:error|failure)|"
        # Exim (routers/dnslookup.c), a DNS lookup that timed out: deferred.
        r"host lookup did not complete",
        "4.4.3",
    ),
    # A recipient who gets too much mail this hour: Gmail's "receiving mail at a rate that
    # prevents additional messages"; Outlook.com's "554 5.2.122 The recipient has exceeded
    # their limit for the number of messages they can receive per hour".
    (
        # Yahoo: "450 User is receiving mail too quickly".
        r"receiving mail at a rate|can receive per (?:hour|day)|receiving mail too quickly|"
        r"(?<!delivery )temporar(?:y|ily) (?:locked|blocked|disabled|suspended)|try again later",
        "4.2.0",
    ),
)

# A full mailbox, in the words MTAs use for it. These words beat a dead-address code that comes
# with them ("550 5.1.1 ... mailbox is full"): the owner can make room (RFC 3463 3.3 calls
# 5.2.2 "a persistent transient failure").
MAILBOX_FULL_TEXTS: Final = _rules(
    (
        r"mail ?box (?:is )?(?:full|over ?quota)|over ?quota|quota (?:exceeded|full)|"
        r"exceed(?:s|ed|ing)? (?:the |their |his |her |its )?(?:storage |mailbox |disk )?quota|"
        r"quota exceed|"
        r"insufficient (?:disk |storage )?(?:space|storage)|mail ?folder is full|"
        # RFC 5321 4.2.2's text for 552.
        r"exceeded storage allocation|"
        # The same, as other MTAs and providers word it: vpopmail's "User has too many messages
        # on the server" and "userdisk quota exceeded", Courier's and Dovecot's "over disk
        # quota" and "quota violation", Postfix local(8)'s "mail file size exceeds the maximum
        # size allowed for mail delivery", Chinese providers' "the user's space has been used
        # up", NTT docomo's "too much mail data", Orange's "boite du destinataire pleine".
        r"mail ?box" + _NAMED + r"(?:is )?full|not (?:have )?enough (?:disk |storage )?space|"
        r"full mail ?box|over (?:the |his |her |their |its )?(?:allowed |disk )+quota|"
        r"quota violation|reached (?:the |its |their )?(?:disk |storage )?quota|"
        r"(?:user|domain)disk quota|would exceed (?:the )?maximum allowed storage|"
        r"too many messages (?:on the server|in (?:the |this |his |her |their )?mail ?box)|"
        r"mail file size exceeds|space has been used up|too much mail data|"
        # GoDaddy: "Account storage limit".
        r"account storage limit|"
        r"exceeding (?:its |the |their )?receiving limits?|"
        r"bo(?:i|î)te (?:du destinataire |aux lettres )?(?:est )?pleine|"
        # Japanese carriers and ISPs: "the mailbox capacity is exceeded" (容量超過 / 容量オーバー)
        # and "the mailbox is full" (メールボックスがいっぱい).
        r"容量(?:を|が)?(?:超過|超え|オーバー)|メールボックス(?:の容量)?(?:が|は)(?:いっぱい|一杯|満杯)|"
        # European and Russian providers' own words: German "Postfach voll", "Speicherplatz
        # überschritten"; French "boîte aux lettres pleine", "quota dépassé"; Spanish "buzón
        # lleno", "cuota excedida"; Italian "casella piena"; Portuguese "caixa postal cheia";
        # Dutch "mailbox vol"; Polish "skrzynka pełna"; Russian "ящик переполнен".
        r"postfach (?:des empf(?:ä|ae)ngers )?(?:ist )?(?:voll|(?:ü|ue)berf(?:ü|ue)llt)|"
        r"speicherplatz (?:des postfachs? )?(?:ist )?(?:(?:ü|ue)berschritten|ersch(?:ö|oe)pft)|"
        r"bo(?:î|i)te(?: aux lettres)?(?: du destinataire)? (?:est )?pleine|"
        r"quota (?:d(?:é|e)pass(?:é|e)|superad[oa]|superata|esaurita)|"
        r"buz(?:ó|o)n (?:del destinatario )?(?:est(?:á|a) )?lleno|cuota (?:excedida|superada)|"
        r"casella (?:di posta )?(?:del destinatario )?(?:(?:è|e') )?piena|"
        r"caixa (?:postal |de correio )?(?:do destinat(?:á|a)rio )?(?:est(?:á|a) )?cheia|"
        r"cota excedida|(?:mailbox|postvak) (?:is )?vol\b|"
        r"skrzynka (?:pocztowa )?(?:jest )?pe(?:ł|l)na|ящик[а-я]{0,3} (?:[а-я]{1,20} )?переполнен",
        "5.2.2",
    ),
)

# The dead-address class (permanent) and its usual wording.
PERMANENT_TEXTS: Final = _rules(
    # Apple iCloud: "550 5.1.6 recipient no longer on server".
    (
        r"has moved|moved permanently|no forwarding address|address has changed|"
        r"no longer on (?:this |the )?server",
        "5.1.6",
    ),
    # RFC 7504: 521 and 556 say the host or domain does not accept mail at all.
    (
        r"null MX|(?:does not accept|not accepting) mail(?! from)|accepts no mail|"
        r"(?:^|\s)5(?:21|56)[ -]|"
        # Exim's words for a null MX (RFC 7505): "an MX or SRV record indicated no SMTP service".
        r"record indicated no SMTP service",
        "5.1.10",
    ),
    (
        r"host (?:or domain name )?not found|domain (?:name )?(?:does not exist|not found)|"
        # The name between: "Domain example.com does not exist", Exchange Online's "550
        # 5.4.310 DNS domain example.com does not exist [Message=InfoDomainNonexistent]".
        r"(?:domain|host)(?: name)? [a-z0-9-]+(?:\.[a-z0-9-]+)+\.? (?:does not exist|not found)|"
        r"InfoDomainNonexistent|"
        r"(?:domain|host)(?: name)? [a-z0-9-]+(?:\.[a-z0-9-]+)+\.? is unknown|"
        # Gmail's "DNS type 'mx' lookup of example.net responded with code NXDOMAIN" (RFC 8020:
        # nothing exists under that name); the resolver library's words for the same
        # (getaddrinfo's EAI_NONAME, as msmtp, nullmailer and smtplib report it); the
        # recipient-domain check of receiving servers, "Recipient domain must exist".
        r"\bnxdomain\b|name or service not known|recipient domain must exist|"
        # hMailServer: "No mail servers appear to exists for the recipients address."
        r"no mail ?servers? (?:appears? to )?exists? for|"
        r"no such domain|unknown (?:mail )?(?:host|domain)|host unknown|unrouteable|unroutable|"
        r"(?:mx|domain) lookup failed|name service error|no mx|"
        r"(?:bad|invalid) destination (?:system|domain)|"
        # Exim (routers/dnslookup.c, transports/smtp.c): a domain whose MX hosts do not exist.
        r"all relevant mx records point to non-existent hosts|"
        r"all host address lookups failed permanently|"
        # Outlook.com's words for a domain without mail servers.
        r"because the domain is not reachable|"
        # Japanese: "the domain does not exist" (ドメインが存在しません,
        # ドメイン名が見つかりません).
        r"ドメイン(?:名)?(?:が|は)?(?:存在しません|存在しない|見つかりません)",
        "5.1.2",
    ),
    (
        r"account (?:has been |is )?(?:disabled|deactivated|suspended|deleted|closed|removed|"
        r"expired|inactive)|mailbox (?:has been |is )?(?:disabled|deactivated|inactive|closed)|"
        r"user (?:account )?(?:is )?(?:disabled|deactivated|suspended)|disabled mailbox|"
        r"mailbox (?:is )?frozen|disabled or discontinued|administratively disabled|"
        # Mail.ru: "550 user is terminated".
        r"(?:user|account|mailbox) (?:is |has been )?terminated|"
        # Suspended and inactive accounts as other providers word them: "a@x is currently
        # suspended", "Mailbox currently suspended", NetEase's "user suspended" and "recipient
        # suspend the service", QQ Mail's "is a deactivated mailbox", eYou's "user is
        # inactive", "invalid/inactive user", "User not active", "This address no longer
        # accepts mail", vpopmail's "account is locked email bounced", Orange's "boite du
        # destinataire archivee" (the mailbox is archived).
        r"is currently suspended|mail ?box (?:is )?currently suspended|suspend the service|"
        r"deactivated mail ?box|(?:user|mailbox|address) (?:is )?(?:not active|inactive)\b|"
        r"inactive (?:user|account|mailbox)|invalid/inactive|no longer accepts mail|"
        r"account is locked email bounced|bo(?:i|î)te du destinataire archiv(?:é|e)e|"
        # Italian, French and Spanish: "account non attivo", "compte désactivé", "cuenta
        # suspendida".
        r"(?:account|casella|utente) (?:non (?:è )?attiv[oa]|disattivat[oa]|sospes[oa])|"
        r"compte (?:d(?:é|e)sactiv(?:é|e)|suspendu|ferm(?:é|e))|"
        r"cuenta (?:desactivada|suspendida|deshabilitada|inactiva)|"
        # "Recipient mailbox was disabled", "Mailbox disabled for this recipient", "Mailbox
        # Locked or Suspended"; Spanish "El usuario esta en estado: inactivo", "Esta casilla ha
        # expirado por falta de uso"; Italian "bloccato per inutilizzo"; Polish "konto ...
        # nieaktywne"; German "Mailbox deaktiviert".
        r"mail ?box (?:was |is )?disabled|mailbox locked or suspended|"
        r"estado: ?inactivo|expirado por falta de uso|bloccato per inutilizzo|\bnieaktywne\b|"
        r"(?:mailbox|postfach|konto) (?:ist |wurde )?deaktiviert|"
        # Yahoo: "554 delivery error: dd a@example.com is no longer valid."
        r"(?:dd|address|mailbox|account)" + _NAMED + r"(?:is )?no longer valid|"
        # i.ua: "Mailbox was not used for more than 3 months".
        r"(?:mailbox|account) (?:was |has )?not (?:been )?used for",
        "5.2.1",
    ),
    (
        r"user unknown|unknown user|no such (?:user|mailbox|recipient|address|account|person)|"
        r"(?:user|mailbox|recipient|address|account|addressee)(?: name)?" + _NAMED + r"(?:does "
        r"not|doesn'?t) exist|"
        r"(?:user|mailbox|recipient|address|account|addressee)" + _NAMED + r"(?:is )?(?:not "
        r"found|unknown|invalid|not known|not listed)|"
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
        # Non-native and terse wordings seen from many MTAs: "User not exist", "user does not
        # exists", "Recipient does not exist here", "no such local user", "Unknown local part".
        r"(?:user|mailbox|recipient|address|account|addressee)(?: name)?" + _NAMED + r"(?:is )?"
        r"not exists?\b|"
        r"(?:user|mailbox|recipient|address|account)" + _NAMED + r"(?:does not|doesn'?t|do not) "
        r"exists?\b|"
        # RFC 5321 4.2.2's text for 550, in the words some servers use: "Requested mailbox is
        # unavailable" (Yahoo: "554 delivery error: dd Requested mailbox is unavailable").
        r"mailbox (?:is )?(?:currently )?unavailable|"
        # As Chinese providers word it: "unavailable mail user", "local server don't exists
        # that user", "not user of this server", "does no exists", "recipient does not have
        # an account".
        r"unavailable mail user|(?:don'?t|doesn'?t|does not|do not) exists? (?:that|this|the) "
        r"(?:user|account|mailbox)|not (?:a )?user of this (?:server|system|domain)|"
        r"does no exists?\b|(?:does not|doesn'?t) have an? .{0,20}account|"
        r"no such (?:local |virtual )?(?:user|mailbox|recipient)|"
        # Exchange and Office 365: RESOLVER.ADR.RecipNotFound / ExRecipNotFound, "The email
        # address you entered couldn't be found", "NAME wasn't found at DOMAIN", "The
        # recipient's e-mail address was not found in the recipient's e-mail system".
        r"recip(?:ient)?notfound|address you entered couldn'?t be found|wasn'?t found at|"
        r"address was not found in the recipient'?s e-?mail system|"
        r"recipient not found by smtp address lookup|"
        # An addressing code and "address rejected": "550 5.1.1 Address rejected".
        r"\b5\.1\.\d{1,3}\b[^\n]{0,40}\b(?:address|recipient) rejected|"
        # Japanese: "address unknown" (宛先不明), "does not exist" (存在しない / 存在しません) after
        # "user" or "address", "no such user" (該当するユーザ(ー)がいません).
        r"宛先不明|(?:ユーザ|ユーザー|アドレス|宛先|アカウント|メールボックス)(?:が|は)?"
        r"(?:存在しない|存在しません|見つかりません)|該当(?:する)?ユーザー?(?:が|は)?(?:い|存在し)ません|"
        # Chinese: "the user / recipient / mailbox / account does not exist" (用户不存在,
        # 收件人不存在, 邮箱不存在, 帐号不存在); Korean: "an account or user that does not
        # exist" (존재하지 않는 계정 / 사용자).
        r"(?:用户|用戶|收件人|邮箱|郵箱|信箱|帐号|账号|帳號|地址)(?:名)?不存在|"
        r"존재하지 않는 (?:계정|사용자|아이디|메일|주소)|"
        # Other languages of European providers: German ("Benutzer unbekannt", "Empfänger
        # existiert nicht"), French ("utilisateur inconnu", "destinataire inconnu"), Spanish
        # and Italian ("usuario desconocido", "destinatario inesistente").
        r"(?:benutzer|empf(?:ä|ae)nger|postfach|mailbox) (?:ist )?(?:unbekannt|existiert nicht)|"
        r"unbekannte[rs]? (?:benutzer|empf(?:ä|ae)nger)|(?:utilisateur|destinataire) inconnu|"
        r"adresse (?:e-?mail )?inexistante|usuario (?:desconocido|no existe)|"
        r"destinatario (?:sconosciuto|inesistente|desconocido)|"
        # The same for the address, the account or the mailbox, in the languages of the
        # European, Russian and Japanese providers' own bounces: German "Adresse ist
        # unbekannt", "Benutzer hat kein Postfach"; French "adresse inconnue", "cette adresse
        # n'existe pas"; Spanish "la dirección no existe"; Portuguese "usuário desconhecido";
        # Italian "utente inesistente", "indirizzo non esiste"; Dutch "gebruiker onbekend";
        # Polish "nie ma takiego użytkownika"; Russian "пользователь не найден", "такого
        # пользователя нет"; Japanese "存在しないメールアドレス" (a non-existent mail address).
        r"(?:e-?mail-?)?(?:adresse|empf(?:ä|ae)ngeradresse) (?:ist |wurde )?(?:unbekannt|"
        r"existiert nicht|nicht gefunden)|\bkein(?:e)? (?:solche[rs]? )?(?:benutzer|postfach)\b|"
        # and in a subordinate clause: "..., da die Adresse nicht existiert".
        r"(?:adresse|empf(?:ä|ae)nger|benutzer|postfach) (?:nicht existiert|unbekannt ist)|"
        r"adresse (?:e-?mail |(?:é|e)lectronique )?(?:inconnue|introuvable|n'existe pas)|"
        r"(?:compte|bo(?:î|i)te aux lettres) (?:inexistante?|inconnue?|n'existe pas)|"
        r"direcci(?:ó|o)n (?:de correo )?(?:electr(?:ó|o)nico )?no existe|"
        r"cuenta (?:de correo )?no existe|usuario inexistente|"
        r"usu(?:á|a)rio (?:desconhecido|inexistente|n(?:ã|a)o existe)|"
        r"(?:conta|endere(?:ç|c)o) (?:de e-?mail )?(?:inexistente|n(?:ã|a)o existe)|"
        r"utente (?:sconosciuto|inesistente|non esiste)|"
        r"(?:indirizzo|casella) (?:e-?mail |di posta )?(?:inesistente|non esiste|sconosciut[oa])|"
        r"gebruiker (?:is )?onbekend|(?:gebruiker|adres|mailbox) bestaat niet|"
        r"onbekende (?:gebruiker|ontvanger)|nie ma takiego (?:u(?:ż|z)ytkownika|adresu|konta)|"
        r"(?:u(?:ż|z)ytkownik|adres|konto) nie istnieje|"
        r"пользовател[ья] (?:нет|не найден|не существует)|нет такого (?:пользователя|адреса|ящика)|"
        r"такого (?:пользователя|адреса|ящика) нет|(?:адрес|ящик|аккаунт)[а-я]{0,4} не существует|"
        r"存在しない(?:メール)?(?:アドレス|ユーザー?|宛先|アカウント)|受信者(?:が|は)?存在しません|"
        # A name between the noun and the verdict, or the address alone after the reply code:
        # "User john was not found", "Recipient john was not found in LDAP", "RCPT <a@x> does
        # not exist", "550 <a@x> not found", "550 a@x does not exist." (the masked address
        # leaves its brackets).
        r"\b(?:user|recipient|mailbox|rcpt) [^\s<>]{1,64} (?:was |is )?not found\b|"
        r"\brcpt" + _NAMED + r"(?:does not|doesn'?t) exists?\b|"
        # (Bounded white space: a run of it must not be tried at every split.)
        r"(?:^|\s)[45]\d\d[ -](?:[45]\.\d{1,3}\.\d{1,3} {1,3})?[<\[(\"']?\s{0,3}[>\])\"']?:?"
        r"\s{1,3}(?:was |is )?(?:not found|(?:does not|doesn'?t) exist)|"
        # Other terse wordings of the same (listed among Sisimai's "userunknown" texts, from
        # many MTAs): "Unknown e-mail address", "Bad destination recipient", "Mailbox not
        # present", "is not an active address at this host", "not a local address", "There is
        # no one at this address", "Email address could not be found", "This email address is
        # wrong or no longer valid", "Destination addresses were unknown", "No mail box
        # available for this user", "Mailbox unavaiable" (sic), "No such person at this
        # address"; Spanish "no existe dicha persona / ese usuario", Italian "nessun utente
        # simile in questo indirizzo".
        r"(?:unknown|invalid|bad) (?:e-?mail address|destination recipient)|"
        r"(?:mailbox|address) not present|not an active address|not a local address|"
        r"no one at this address|address could not be found|wrong or no longer valid|"
        r"addresses? (?:were|was|is) unknown|no mail ?box available|mailbox unavaiable|"
        r"no existe (?:dicha persona|ese usuario)|nessun utente simile|"
        # And as the PHP bounce handlers' tables list them (cfortune's BounceHandler): "No such
        # email address", "No one with that email address here", "Email Address was not
        # found", "unknown or illegal user", "Unknown account", "Invalid account", "Unable to
        # find alias user", "server doesn't handle mail for that user", "No such mail drop
        # defined", Gmail's "ADDRESS_NOT_FOUND"; Italian "destinatario errato" and "destin.
        # sconosciuto", German "Adressat unbekannt".
        r"no such (?:e-?mail address|mail ?drop)|no one with that (?:e-?mail )?address|"
        r"e-?mail address was not found|unknown or illegal user|"
        r"(?:unknown|invalid) account\b(?! (?:or |and )?(?:password|credentials))|"
        r"unable to find alias|doesn'?t handle mail for that user|address_not_found|"
        r"destin(?:atario|\.) (?:errato|sconosciuto)|adressat unbekannt|"
        # qmail's recipient lists (the badrcptto and validrcptto patches): "553 sorry, your
        # envelope recipient is in my badrcptto list (#5.7.1)", "sorry, this recipient is not in
        # my validrcptto list", "sorry, your envelope recipient has been denied"; vpopmail's
        # "vdeliver: Invalid or unknown virtual user" and qmail-local's "user missing home
        # directory".
        r"\bbad ?(?:rcpt|recipient) ?to\b|\bvalid ?rcpt ?to\b|"
        r"envelope recipient has been denied|unknown virtual user|missing home directory|"
        r"name is not recognized|"
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
        # Exim (retry.c, transports/smtp.c): "retry timeout exceeded", "retry time not reached
        # for any host after a long failure period".
        r"retry time(?:out)? (?:exceeded|reached)|retry time not reached|"
        r"could not be delivered for|expired|"
        r"have been failing for a long time|after (?:multiple|repeated) retries|giving up|"
        # qmail-send: "I'm not going to try again; this message has been in the queue too long."
        r"in the queue too long",
        "4.4.7",
    ),
    # Network trouble, after the retries ran out too: the destination may answer tomorrow
    # (RFC 3463 3.5, X.4.1 "No answer from host"). Postfix: "delivery temporarily suspended:
    # connect to HOST[IP]:25: Connection timed out" or "No route to host"; sendmail:
    # "Connection refused by HOST"; the system's "Network is unreachable".
    (
        r"timed? ?out|timeout|connection (?:refused|reset|lost|closed)|could not connect|"
        r"requests to connect|socket error|delivery temporarily suspended|no route to host|"
        r"network is unreachable|"
        # Postfix's "lost connection with HOST while receiving the initial server greeting",
        # Gmail's "Could not initiate SMTP conversation with any hosts", Windows socket errors
        # ("Network error: 10060"), "Remote host closed connection", "Unable to connect to
        # remote host".
        r"lost connection with|closed (?:the )?connection|unable to connect|"
        r"could not initiate smtp conversation|network error",
        "4.4.1",
    ),
    (r"try again later|temporar|deferred|service (?:not )?(?:un)?available|busy", "4.0.0"),
    (r"system (?:full|overloaded)|out of (?:disk|memory)|insufficient system storage", "4.3.1"),
)

_ENHANCED: Final = pattern_cache.compile(r"(?<![\d.])([245])\.(\d{1,3})\.(\d{1,3})(?![\d]|\.\d)")
# An enhanced code right after an SMTP reply code (RFC 3463 section 2 / RFC 2034 section 4):
# "550 5.1.1", "550-5.1.1", "550 #5.1.0". Preferred over a code elsewhere in the text, which
# may be a relay's own summary ("5.1.0 - Unknown address error 550-'5.2.2 ...").
_AFTER_REPLY: Final = pattern_cache.compile(
    r"(?<![\d.])[245]\d\d[ -]+['\"(#]?([245])\.(\d{1,3})\.(\d{1,3})(?![\d]|\.\d)"
)
_REPLY: Final = pattern_cache.compile(r"(?<![\d.-])([245])[0-9]{2}(?:[ -]|$)(?!\d)")


def status_in(text: str | None, *, failure: bool = False) -> str | None:
    """The first RFC 3463 enhanced status code in a diagnostic text, like "550 5.1.1 ...".
    With `failure`, success codes (2.x.x) are passed over: a transcript's "250 2.1.5 Ok"
    before the refusal says nothing about why the delivery failed."""
    if not text:
        return None
    text = text[:_TEXT_LIMIT]
    # The last code after a reply code is the innermost one: a relay quoting the receiver's
    # reply ("554 4.4.7 Message expired ... <421 4.4.2 Connection timed out>") puts it last.
    replies = [m for m in _AFTER_REPLY.finditer(text) if not failure or m.group(1) != "2"]
    if replies:
        match = replies[-1]
    else:
        match = next(
            (m for m in _ENHANCED.finditer(text) if not failure or m.group(1) != "2"), None
        )
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
    # A failure's own code, not a "250 2.0.0 Ok" quoted before it; a success code only when
    # the text has nothing else.
    found = status_in(text, failure=True) or status_in(text)
    if found:
        return found
    replies = list(_REPLY.finditer(text))
    reply = next((m for m in replies if m.group(1) != "2"), replies[0] if replies else None)
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


def failure_status(status: str | None, text: str | None, *, action: str | None) -> str | None:
    """The status of a recipient whose delivery failed or was delayed (RFC 3464 2.3.3). A
    success code (2.x.x) cannot describe a failure, nor can a missing one: both are replaced by
    the status the text gives or suggests ("SMTP error ... 452 4.2.2"), else by 5.0.0 for a
    failure and 4.0.0 for a delay (RFC 3463 3.1: "other undefined status")."""
    action = (action or "").lower()
    if action not in ("failed", "delayed") or (status and status[0] in "45"):
        return status
    klass = "4" if action == "delayed" else "5"
    inferred = infer_status(text, default_class=klass)
    return inferred if inferred and inferred[0] in "45" else f"{klass}.0.0"


def block_status(status: str | None, text: str | None, *, category: str) -> str | None:
    """A block (a refusal for policy or spam) under a catch-all code ("Status: 5.5.0" for "550
    5.7.1 ... blocked"): the security or policy code (RFC 3463 3.8, X.7.XXX) the text itself
    gives, in the same class. Any other status is returned as it is."""
    if category != "blocked" or not status or not text or status[0] not in "45":
        return status
    if status[2:4] == "7." or not (status in GENERIC_STATUSES or status[1:] == ".0.0"):
        return status
    for match in _ENHANCED.finditer(text[:_TEXT_LIMIT]):
        if match.group(1) == status[0] and match.group(2) == "7":
            return f"{match.group(1)}.7.{int(match.group(3))}"
    return status


# Addresses are masked before the wording is read: a mailbox called "blocked@" or
# "userunknown@" says nothing about why mail to it failed.
_ADDRESS_LIKE: Final = pattern_cache.compile(r"[^\s<>()\[\]\"',;:@]+@[^\s<>()\[\]\"',;:@]+")


# Diagnostics are a line or a few; the bound keeps a hostile one from costing more.
_TEXT_LIMIT: Final = 4_000


# RFC 2047 encoded words, and runs of them: the white space between two adjacent encoded words
# is not part of the text (RFC 2047 section 6.2), and long Japanese texts are split across
# several words.
_ENCODED_WORD: Final = r"=\?[^?\s]{1,40}\?[bBqQ]\?[^?\s]{0,1000}\?="
_ENCODED_WORDS: Final = pattern_cache.compile(f"{_ENCODED_WORD}(?:\\s+{_ENCODED_WORD}){{0,30}}")
# ISO-2022-JP (RFC 1468): a run of two-byte JIS X 0208 text between "ESC $ B" (or "ESC $ @")
# and the "ESC ( B" (or "ESC ( J") that goes back to ASCII.
_JIS_RUN: Final = pattern_cache.compile(r"\x1b\$[@B][\x21-\x7e\s]{0,2000}?(?:\x1b\([BJ]|$)")


def readable(text: str) -> str:
    """A diagnostic with its charset undone, so its words can be read: RFC 2047 encoded words
    ("=?ISO-2022-JP?B?...?=", which some MTAs put in a Diagnostic-Code), and ISO-2022-JP
    escape sequences in text that was read as ASCII or UTF-8 (a part without a charset)."""
    if "=?" in text:
        text = _ENCODED_WORDS.sub(_decoded_words, text[:_TEXT_LIMIT])
    if "\x1b" in text:
        text = _JIS_RUN.sub(_decoded_jis, text[:_TEXT_LIMIT])
    return text


def _decoded_words(match: re.Match[str]) -> str:
    try:
        return str(make_header(decode_header(match.group(0))))
    except Exception:  # a broken encoded word stays as it came
        return match.group(0)


def _decoded_jis(match: re.Match[str]) -> str:
    run = match.group(0)
    try:
        return (
            (run if run.endswith(("\x1b(B", "\x1b(J")) else run + "\x1b(B")
            .encode("ascii")
            .decode("iso-2022-jp")
        )
    except (UnicodeError, LookupError):
        return run


def _masked(text: str) -> str:
    """The text as the rules read it: decoded, lower-cased, addresses masked."""
    text = readable(text[:_TEXT_LIMIT])[:_TEXT_LIMIT].lower()
    return _ADDRESS_LIKE.sub(" ", text) if "@" in text else text


_STATUS_TABLES: Final = (
    DIRECTORY_REJECTION_TEXTS,
    BLOCK_TEXTS,
    TEMPORARY_TEXTS,
    MAILBOX_FULL_TEXTS,
    PERMANENT_TEXTS,
    TRANSIENT_TEXTS,
)


def _text_status(text: str) -> str | None:
    return _status_of_masked(_masked(text))


# Bounces come from a few hundred MTA templates, so the same line (its addresses masked) is read
# again and again: the first rule it matches is remembered, per process, for the lines seen
# most recently.
@functools.lru_cache(maxsize=8192)
def _status_of_masked(text: str) -> str | None:
    for table in _STATUS_TABLES:
        for pattern, status in table:
            if pattern.search(text):
                return status
    return None


def forget_lines() -> None:
    """Empty the remembered lines (the parse benchmark measures every message read afresh)."""
    _status_of_masked.cache_clear()


def explained(text: str) -> bool:
    """Whether a text has wording from any of the tables."""
    return _text_status(text) is not None


def _text_category(text: str, table: tuple[tuple[re.Pattern[str], str], ...]) -> bool:
    return any(pattern.search(text) for pattern, _ in table)  # text already masked


# Provider answers whose words say one thing and mean another, by what the answer looks like.
# KDDI's au (ezweb.ne.jp, au.com) answers "550 : User unknown", with no address, when the
# recipient's own domain filter refuses the sender; an address that does not exist gets
# "550 <address>: User unknown". (Yahoo relays it as "550: : User unknown".)
PROVIDER_BLOCK_TEXTS: Final = _rules(
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
        return "blocked"
    # After DATA the recipient was already accepted: what is refused then is the message.
    if phase == "DATA" and category == "unknown" and (status or "5")[0] == "5":
        return "blocked"
    if phase == "DATA" and category == "permanent" and _filtering_host(remote_host):
        return "blocked"
    return category


def _classify(status: str | None, text: str) -> Category:
    # The code may be in the Status field only: read it with the text.
    if text and _text_category(f"{status} {text}", DIRECTORY_REJECTION_TEXTS):
        return "permanent"
    if text and (_text_category(text, BLOCK_TEXTS) or _text_category(text, PROVIDER_BLOCK_TEXTS)):
        return "blocked"
    # Words beat a wrong code for conditions that clear: a "550 5.1.1" that says the mailbox
    # is full, or that the destination could not be reached, is not a dead address.
    if text and (_text_category(text, TEMPORARY_TEXTS) or _text_category(text, MAILBOX_FULL_TEXTS)):
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
                return "blocked"
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
    original_address: str | None = None,
    redacted: bool = False,
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
        original_address=original_address,
        redacted=redacted,
    )
